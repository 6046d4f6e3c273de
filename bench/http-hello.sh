#!/usr/bin/env bash
# Benchmark: a trivial Node.js handler behind an `http` event under `sylph dev`, side by side
# with serverless-offline (`--useInProcess`) serving the same handler, in one run.
# Usage: bench/http-hello.sh [--seconds N] [--concurrency 1,8,64] [--skip-offline]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" http-hello --sylph "$target_dir/release/sylph" --dir "$PWD/bench/hello" "$@"
