#!/usr/bin/env bash
# Benchmark: PutItem, GetItem and Query over HTTP against `sylph tables` (durable) and dynalite
# (in-memory) in the same run, then the kill -9 durability count.
# Usage: bench/tables.sh [--seconds N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" tables --sylph "$target_dir/release/sylph" --dynalite "$PWD/bench/hello/node_modules/dynalite/cli.js" "$@"
