#!/usr/bin/env bash
# The project's test command: unit, property and end-to-end tests of the whole workspace.
# End-to-end tests read the shared capture corpus at ../shared/pcaps.
set -euo pipefail
cd "$(dirname "$0")/.."
# Release mode: the accuracy test simulates and analyzes several GB of traffic.
# The report feature (polars) and its end-to-end tests are included: crates/report is built in
# any case as a workspace member, so this only adds the feature's tests and a bigger binary.
cargo test --workspace --release --locked \
    --features "${BURSTWATCH_FEATURES:-burstwatch/report,burstwatch-tests/report}" "$@"
