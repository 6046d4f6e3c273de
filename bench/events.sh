#!/usr/bin/env bash
# Benchmark: messages/s through SendMessageBatch → sqs event → handler under sylph dev, side by
# side with serverless-offline + serverless-offline-sqs polling moto (PyPI moto[server]) and
# ElasticMQ (Maven Central), in one run; and the latency from a table write to its stream
# handler (p50/p99).
# Usage: bench/events.sh [--messages N] [--senders N] [--writes N] [--skip-peer]
set -euo pipefail
cd "$(dirname "$0")/.."
(cd bench/hello && npm ci --no-audit --no-fund --loglevel=error)
ln -sfn ../hello/node_modules bench/events/node_modules
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "moto[server]>=5"
(cd bench/events/elasticmq && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib)
cargo build --release --quiet -p sylph -p sylph-bench
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
"$target_dir/release/sylph-bench" events --sylph "$target_dir/release/sylph" --dir "$PWD/bench/events" \
  --elasticmq-lib "$PWD/bench/events/elasticmq/lib" "$@"
