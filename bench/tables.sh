#!/usr/bin/env bash
# Benchmark: PutItem, GetItem and Query over HTTP at 16 clients against `sylph tables` (durable),
# Dynoxide (the crate dynoxide-rs: Rust + SQLite, file-backed, durable) and dynalite
# (in-memory) in the same run, then the kill -9 durability count.
# Dynoxide is installed once into ~/.cache/sylph-bench-tools (about 11 minutes on 2 cores).
# Usage: bench/tables.sh [--seconds N] [--concurrency N]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
tools="$HOME/.cache/sylph-bench-tools"
if [ ! -x "$tools/bin/dynoxide" ]; then
  CARGO_TARGET_DIR="$tools/target" cargo install --quiet dynoxide-rs --version 3.2.0 --root "$tools"
fi
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" tables --sylph "$target_dir/release/sylph" \
  --dynalite "$PWD/bench/hello/node_modules/dynalite/cli.js" --dynoxide "$tools/bin/dynoxide" "$@"
