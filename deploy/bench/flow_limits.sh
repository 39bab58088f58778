#!/usr/bin/env bash
# Detection limits of sampled flow export (run by hand; not a test): regenerates the table of
# the README's "Feeding burstwatch from routers" section. For every seed and burst shape
# (rate × duration) it simulates the default scenarios with every plain burst forced to that
# shape (`simulate --burst-rate --burst-duration`), once as packets and once per export
# protocol, sampling rate and active timeout (`simulate --export`), analyses each with the
# default configuration and scores it with `burstwatch eval`. It prints one markdown row per
# (rate, duration, export, sampling, active timeout) over all seeds: burst events in scope
# found, and false burst alerts next to packet mode's on the same traffic.
#
#   deploy/bench/flow_limits.sh                               # -> target/flow-limits/
#   FLOW_SEEDS="1 2 3 4 5" FLOW_RATES="10 20 50" FLOW_DURATIONS="2 5 10" deploy/bench/flow_limits.sh
#   FLOW_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere FLOW_PROFILE=test-release deploy/bench/flow_limits.sh
#
# Each packet capture (1,000 subscribers, 600 s) is about 1.5 GB and deleted once analysed;
# the exports are small. One seed and shape takes about a minute per simulation on two cores.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIR=${FLOW_DIR:-target/flow-limits}
SEEDS=${FLOW_SEEDS:-1 2 3}
RATES=${FLOW_RATES:-20 50}
DURATIONS=${FLOW_DURATIONS:-5}
SAMPLING=${FLOW_SAMPLING:-1000}
TIMEOUTS=${FLOW_TIMEOUTS:-60 10}
EXPORTS=${FLOW_EXPORTS:-ipfix sflow}
SUBSCRIBERS=${FLOW_SUBSCRIBERS:-1000}
DURATION=${FLOW_DURATION:-600}
PROFILE=${FLOW_PROFILE:-release}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/$PROFILE/burstwatch

if [[ ${FLOW_NO_BUILD:-0} != 1 ]]; then
    echo "== building $PROFILE binary" >&2
    cargo build --profile "$PROFILE" -p burstwatch >&2
fi
mkdir -p "$DIR"

# one NAME SIM-ARGS... -- ANALYZE-ARGS...: simulate, analyze and eval one run into $DIR/NAME.*
one() {
    local name=$1 base=$DIR/$1 sim=() an=()
    shift
    while [[ $# -gt 0 && $1 != -- ]]; do sim+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    an=("$@")
    echo "== $name" >&2
    "$BIN" simulate -q --subscribers "$SUBSCRIBERS" --duration "$DURATION" "${sim[@]}" \
        -o "$base.pcap" --truth "$base.truth.json"
    "$BIN" analyze -q "$base.pcap" "${an[@]}" --alerts "$base.alerts.jsonl"
    rm -f "$base.pcap"
    "$BIN" eval --truth "$base.truth.json" --alerts "$base.alerts.jsonl" \
        --json "$base.eval.json" >/dev/null || true
}

runs=()
for seed in $SEEDS; do
    for rate in $RATES; do
        for dur in $DURATIONS; do
            shape=(--seed "$seed" --burst-rate "$rate" --burst-duration "$dur")
            tag="r${rate}-d${dur}-s${seed}"
            one "$tag-packets" "${shape[@]}"
            runs+=("$rate $dur packets - - $tag-packets $tag-packets")
            for exp in $EXPORTS; do
                for n in $SAMPLING; do
                    # sFlow samples packets: it has no active timeout.
                    timeouts=$TIMEOUTS
                    [[ $exp == sflow ]] && timeouts=-
                    for t in $timeouts; do
                        name="$tag-$exp-n$n-t$t"
                        args=("${shape[@]}" --export "$exp" --sampling "$n")
                        [[ $t != - ]] && args+=(--active-timeout "$t")
                        one "$name" "${args[@]}" -- --input-kind flow-export
                        runs+=("$rate $dur $exp $n $t $name $tag-packets")
                    done
                done
            done
        done
    done
done

# Sum per (rate, duration, export, sampling, timeout) over the seeds.
printf '%s\n' "${runs[@]}" | python3 -c '
import json, sys
from collections import OrderedDict
rows = OrderedDict()
def burst(path):
    r = json.load(open(path))
    units = sum(k["units"] for k in r["rows"] if k.get("expect") == "burst")
    found = sum(k["detected"] for k in r["rows"] if k.get("expect") == "burst")
    return units, found, r["burst_alerts"]["fp"]
for line in sys.stdin:
    rate, dur, exp, n, t, name, pk = line.split()
    u, f, fp = burst(sys.argv[1] + "/" + name + ".eval.json")
    _, _, pfp = burst(sys.argv[1] + "/" + pk + ".eval.json")
    key = (rate, dur, exp, n, t)
    a = rows.setdefault(key, [0, 0, 0, 0, 0])
    for i, v in enumerate((u, f, fp, pfp, 1)):
        a[i] += v
names = {"packets": "packets", "ipfix": "IPFIX", "sflow": "sFlow", "netflow9": "NetFlow v9", "netflow5": "NetFlow v5"}
print("| burst rate | duration | input | sampling | active timeout | bursts found | false burst alerts (packet mode) |")
print("|---|---|---|---|---|---|---|")
for (rate, dur, exp, n, t), (u, f, fp, pfp, seeds) in rows.items():
    share = f"{100 * f / u:.0f} %" if u else "·"
    samp = "–" if n == "-" else f"1:{n}"
    to = "–" if t == "-" else f"{t} s"
    fa = f"{fp}" if exp == "packets" else f"{fp} ({pfp})"
    print(f"| {rate} Mbit/s | {dur} s | {names.get(exp, exp)} | {samp} | {to} | {f}/{u} ({share}) | {fa} |")
' "$DIR"
