#!/usr/bin/env bash
# Benchmark: WebAssembly functions (runtime: wasi-http) under sylph dev, side by side in one run
# with `wasmtime serve` on the same component file and a bare axum hello server: the first
# request to functions never instantiated and the instantiation alone, then warm requests/s
# with p50/p99; and the Todo GET as a component (examples/todo-wasm) against serverless-offline
# (--useInProcess) + dynalite serving the Node.js example.
# Usage: bench/wasm.sh [--seconds N] [--concurrency 1,8,64] [--functions 40] [--skip-offline]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
rustup target add wasm32-wasip2 > /dev/null
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
CARGO_TARGET_DIR="$target_dir/wasm-guests" \
  cargo build --release --quiet --target wasm32-wasip2 --manifest-path wasm/test-component/Cargo.toml
# Built where the benchmark points sylph dev, so that its start finds it up to date.
CARGO_TARGET_DIR="$target_dir/todo-wasm" \
  cargo build --release --quiet --target wasm32-wasip2 --manifest-path examples/todo-wasm/Cargo.toml
CARGO_TARGET_DIR="$target_dir/axum-hello" cargo build --release --quiet --manifest-path bench/axum-hello/Cargo.toml
wasmtime="$(./scripts/install-wasmtime)"
"$target_dir/release/sylph-bench" wasm --sylph "$target_dir/release/sylph" --repo "$PWD" \
  --wasmtime "$wasmtime" --axum "$target_dir/axum-hello/release/axum-hello" \
  --component "$target_dir/wasm-guests/wasm32-wasip2/release/sylph_test_component.wasm" "$@"
