#!/usr/bin/env bash
# Benchmark: DescribeTable's latency as a table grows from 1,000 to 1,000,000 items, on
# `sylph tables` (statistics kept with each write) and Dynoxide (the crate dynoxide-rs: Rust +
# SQLite) in the same run, beside the full Scan COUNT that the old DescribeTable did.
# Dynoxide is installed once into ~/.cache/sylph-bench-tools (about 11 minutes on 2 cores).
# Filling a million items takes a few minutes per server.
# Usage: bench/describe-table.sh [--sizes 1000,10000,100000,1000000] [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$HOME/.cache/sylph-bench-tools"
if [ ! -x "$tools/bin/dynoxide" ]; then
  CARGO_TARGET_DIR="$tools/target" cargo install --quiet dynoxide-rs --version 3.2.0 --root "$tools"
fi
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" describe-table --sylph "$target_dir/release/sylph" --dynoxide "$tools/bin/dynoxide" "$@"
