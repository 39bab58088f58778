#!/usr/bin/env bash
# The project's test command: unit, property and end-to-end tests of the whole workspace.
# End-to-end tests read the shared capture corpus at ../shared/pcaps.
set -euo pipefail
cd "$(dirname "$0")/.."
# Release mode: the accuracy test simulates and analyzes several GB of traffic.
cargo test --workspace --release --locked "$@"
