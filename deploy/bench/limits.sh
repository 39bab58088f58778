#!/usr/bin/env bash
# Detection limits (run by hand; not a test): regenerates the tables of the README's
# "Detection limits" section. On several seeds it simulates the randomised scenarios with the
# adversarial ones (`burstwatch simulate --adversarial`, default population and duration),
# analyses each capture with the default configuration, and prints `burstwatch eval --sweep`
# over all of them (markdown on standard output; each seed's own `eval` table is kept beside).
#
#   deploy/bench/limits.sh                              # seeds 1-4 and 11 -> target/limits/
#   LIMITS_SEEDS="1 2 3 4 5 6 7 8" LIMITS_LONG_SEEDS="" deploy/bench/limits.sh
#   LIMITS_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere LIMITS_PROFILE=test-release deploy/bench/limits.sh
#
# Each LIMITS_SEEDS capture is about 7 GB (2,000 subscribers, 20 minutes); each
# LIMITS_LONG_SEEDS capture (200 subscribers, 8 hours, 1 activity per 1,000 s each) about
# 5.6 GB, long enough for beacons with periods up to 600 s. Captures are deleted once analysed;
# a run takes one to four minutes on two cores.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIR=${LIMITS_DIR:-target/limits}
SEEDS=${LIMITS_SEEDS:-1 2 3 4}
LONG_SEEDS=${LIMITS_LONG_SEEDS-11}
SUBSCRIBERS=${LIMITS_SUBSCRIBERS:-2000}
DURATION=${LIMITS_DURATION:-1200}
PROFILE=${LIMITS_PROFILE:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/$PROFILE/burstwatch

if [[ ${LIMITS_NO_BUILD:-0} != 1 ]]; then
    echo "== building $PROFILE binary" >&2
    cargo build --profile "$PROFILE" -p burstwatch >&2
fi

mkdir -p "$DIR"
pairs=()
# run SEED SIMULATE-ARGS...: simulate, analyze, eval one capture.
run() {
    local seed=$1 base=$DIR/s$1
    shift
    echo "== seed $seed: simulate, analyze, eval" >&2
    "$BIN" simulate -q --adversarial --seed "$seed" "$@" -o "$base.pcap"
    "$BIN" analyze -q "$base.pcap" --flows /dev/null --alerts "$base.alerts.jsonl"
    rm -f "$base.pcap"
    "$BIN" eval --truth "$base.truth.json" --alerts "$base.alerts.jsonl" >"$base.eval.txt" || true
    pairs+=(--truth "$base.truth.json" --alerts "$base.alerts.jsonl")
}
for seed in $SEEDS; do
    run "$seed" --subscribers "$SUBSCRIBERS" --duration "$DURATION"
done
for seed in $LONG_SEEDS; do
    run "$seed" --subscribers 200 --duration 28800 --activity-rate 0.001
done
"$BIN" eval --sweep "${pairs[@]}"
