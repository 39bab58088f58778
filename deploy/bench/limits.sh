#!/usr/bin/env bash
# Detection limits (run by hand; not a test): regenerates the tables of the README's
# "Detection limits" section. On several seeds it simulates the randomised scenarios with the
# adversarial ones (`burstwatch simulate --adversarial`, default population and duration),
# analyses each capture with the default configuration, and prints `burstwatch eval --sweep`
# over all of them (markdown on standard output; each seed's own `eval` table is kept beside).
#
#   deploy/bench/limits.sh                              # seeds 1-4 -> target/limits/
#   LIMITS_SEEDS="1 2 3 4 5 6 7 8" deploy/bench/limits.sh
#   LIMITS_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere LIMITS_PROFILE=test-release deploy/bench/limits.sh
#
# Each capture is about 4.7 GB (2,000 subscribers, 20 minutes) and is deleted once analysed;
# a seed takes about a minute on two cores.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIR=${LIMITS_DIR:-target/limits}
SEEDS=${LIMITS_SEEDS:-1 2 3 4}
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
for seed in $SEEDS; do
    base=$DIR/s$seed
    echo "== seed $seed: simulate, analyze, eval" >&2
    "$BIN" simulate -q --adversarial --seed "$seed" --subscribers "$SUBSCRIBERS" \
        --duration "$DURATION" -o "$base.pcap"
    "$BIN" analyze -q "$base.pcap" --flows /dev/null --alerts "$base.alerts.jsonl"
    rm -f "$base.pcap"
    "$BIN" eval --truth "$base.truth.json" --alerts "$base.alerts.jsonl" >"$base.eval.txt" || true
    pairs+=(--truth "$base.truth.json" --alerts "$base.alerts.jsonl")
done
"$BIN" eval --sweep "${pairs[@]}"
