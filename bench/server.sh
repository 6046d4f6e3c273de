#!/usr/bin/env bash
# Benchmark: sylph server + sylph deploy on the Todo example, in one run: deploy time (first,
# after a one-file change, nothing changed), the failed-request count of a load running while
# three versions are deployed, and requests/s through the server beside sylph dev on the same
# service. Usage: bench/server.sh [--seconds N] [--clients N]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-runtimes
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" server --sylph "$target_dir/release/sylph" --repo "$PWD" "$@"
