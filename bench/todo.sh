#!/usr/bin/env bash
# Benchmark: the Todo service (GET /dev/todos/{id}, POST /dev/todos) under sylph dev, Node.js and
# Rust examples, side by side with serverless-offline (--useInProcess) + dynalite serving the
# Node.js example, in one run, at 1, 8 and 64 clients; where the CPU went per request; the
# ceiling (the same handlers in one plain Node.js process); one core against two (taskset).
# Usage: bench/todo.sh [--seconds N] [--warmup SECONDS] [--concurrency 1,8,64] [--skip-taskset]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
./scripts/install-runtimes
cargo build --release --quiet -p sylph -p sylph-bench
# The Rust example, where `sylph dev` looks for it (it would build it at start otherwise, which
# can take minutes on a fresh machine).
cargo build --release --quiet --manifest-path examples/todo-rust/Cargo.toml
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" todo --sylph "$target_dir/release/sylph" --repo "$PWD" "$@"
