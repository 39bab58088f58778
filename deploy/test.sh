#!/usr/bin/env bash
# The project's test command: unit, property and end-to-end tests of the whole workspace.
# End-to-end tests read the shared capture corpus at ../shared/pcaps.
set -euo pipefail
cd "$(dirname "$0")/.."
# Release mode: the accuracy test simulates and analyzes several GB of traffic.
# The forensic report crate (polars) is not part of this run: its tests need
# `cargo test --release -p burstwatch-report` and, end to end,
# `cargo test --release -p burstwatch-tests --features burstwatch/report,burstwatch-tests/report`.
cargo test --workspace --exclude burstwatch-report --release --locked "$@"
