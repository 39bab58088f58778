#!/usr/bin/env bash
# The project's test command: unit, property and end-to-end tests of the whole workspace,
# the forensic report (polars) included. End-to-end tests read the shared capture corpus at
# ../shared/pcaps; the report's browser test needs chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
# Optimised code (the accuracy test simulates and analyzes several GB of traffic), built with
# the test-release profile: release without LTO, so polars is compiled once and the three
# binaries linking it build in under a minute each (see Cargo.toml). The features turn on
# `analyze --report` in the binary and the end-to-end report tests.
cargo test --workspace --profile test-release --locked \
  --features burstwatch/report,burstwatch-tests/report "$@"
