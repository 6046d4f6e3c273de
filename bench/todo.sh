#!/usr/bin/env bash
# Benchmark: the Todo service (GET /dev/todos/{id}, POST /dev/todos) under sylph dev, Node.js and
# Rust examples, side by side with serverless-offline (--useInProcess) + dynalite serving the
# Node.js example, in one run.
# Usage: bench/todo.sh [--seconds N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
./scripts/install-runtimes
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" todo --sylph "$target_dir/release/sylph" --repo "$PWD" "$@"
