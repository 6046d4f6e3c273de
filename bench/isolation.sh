#!/usr/bin/env bash
# Benchmark: what isolation costs. Cold starts (Rust provided.al2023; Node.js from a pre-started
# runtime) and warm signed table calls, with and without the per-instance network namespace,
# pasta and SigV4/IAM checks, side by side in one run.
# Usage: bench/isolation.sh [--samples N] [--warm-calls N]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-runtimes
cargo build --release --quiet -p sylph -p sylph-bench -p hello-rust
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" isolation --sylph "$target_dir/release/sylph" --rust-bootstrap "$target_dir/release/bootstrap" "$@"
