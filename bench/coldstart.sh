#!/usr/bin/env bash
# Benchmark: cold starts (Node.js with aws-sdk v2, Python with boto3, Rust, Java 17 with the AWS
# SDK for Java v2's DynamoDB client), with and without pre-started runtimes, next to `node -e 0`,
# `python3 -c 0` and `java -version`, and the warm invocation latency.
# Then the sequences a user lives through (after 10 s and 60 s quiet, a second function, after a
# reload, bursts of 8), with how many cold starts pre-started runtimes served. The 60 s sequence
# costs a minute per sample (--long-samples, default 20).
# Usage: bench/coldstart.sh [--samples N] [--long-samples N] [--java-only]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-runtimes
cargo build --release --quiet -p sylph -p sylph-bench -p hello-rust
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
# The Java rows need the benchmark's Java function, built with Maven (bench/java).
java=()
if command -v mvn > /dev/null; then
  (cd bench/java && mvn -q -B package -DskipTests)
  java=(--java-package bench/java/target/bench-java.zip)
fi
"$target_dir/release/sylph-bench" coldstart --sylph "$target_dir/release/sylph" --rust-bootstrap "$target_dir/release/bootstrap" "${java[@]}" "$@"
