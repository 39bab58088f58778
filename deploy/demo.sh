#!/usr/bin/env bash
# The README's demo: generate a labelled synthetic capture, analyze it, show the top alerts,
# and score the alerts against the simulator's ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p burstwatch
bin="${CARGO_TARGET_DIR:-target}/release/burstwatch"
mkdir -p target/demo
"$bin" simulate -o target/demo/demo.pcap --seed 1 --subscribers 2000 --duration 1200
"$bin" analyze target/demo/demo.pcap --alerts demo.alerts.jsonl --flows /dev/null
"$bin" eval --truth target/demo/demo.truth.json --alerts demo.alerts.jsonl
