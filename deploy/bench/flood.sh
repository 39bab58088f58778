#!/usr/bin/env bash
# Flood benchmark (run by hand as root; not a test): millions of packets from distinct random
# IPv6 sources towards four subscriber addresses, replayed into `burstwatch daemon` with a
# memory budget (limits.memory_budget_mib), then read offline by `burstwatch analyze` with the
# same budget. Prints each run's peak RSS against the budget and the evictions counted.
#
#   deploy/bench/flood.sh                          # 5 M packets, replayed at --topspeed, 512 MiB
#   FLOOD_PACKETS=10000000 FLOOD_MBPS=200 deploy/bench/flood.sh   # fixed rate instead
#   FLOOD_BUDGET_MIB=1024 deploy/bench/flood.sh    # another budget
#   FLOOD_DAEMON=0 deploy/bench/flood.sh           # analyze only (no root, no namespaces)
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/flood.sh   # use a prebuilt binary
#   BENCH_PROFILE=test-release deploy/bench/flood.sh   # another cargo profile (default release)
#   FLOOD_DEFAULT_BUDGET=0 deploy/bench/flood.sh   # skip the analyze run with the default budget
#   FLOOD_WORKERS=2 deploy/bench/flood.sh          # engine workers (the budget is split over them)
#
# The capture is written by deploy/bench/flood_pcap.py (one 62-byte UDP/IPv6 frame per source,
# 2001:db8::/32 with 96 random low bits, to fd00:0:0:{1..4}::1) and reused while it exists.
# Daemon: capture on a veth in a network namespace (snaplen 256, 64 MiB buffer), peak RSS is
# VmHWM from /proc/PID/status, sampled every 0.2 s while it runs (the last sample is the value
# at exit); counters come from /metrics once they stop moving. analyze: GNU time's maximum
# resident set size and the counters of --stats, with the budget and, for comparison, with
# the default budget (3072 MiB). The daemon's budget includes its 64 MiB capture buffer.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
FLOOD_PACKETS=${FLOOD_PACKETS:-5000000}
FLOOD_SEED=${FLOOD_SEED:-1}
FLOOD_MBPS=${FLOOD_MBPS:-}
FLOOD_BUDGET_MIB=${FLOOD_BUDGET_MIB:-512}
FLOOD_WORKERS=${FLOOD_WORKERS:-1}
FLOOD_DAEMON=${FLOOD_DAEMON:-1}
BENCH_PROFILE=${BENCH_PROFILE:-release}
BIN=$TARGET_DIR/$BENCH_PROFILE/burstwatch
FILE=$BENCH_DIR/flood-$FLOOD_PACKETS-$FLOOD_SEED.pcap

# shellcheck source=deploy/bench/netns.sh
. deploy/bench/netns.sh
bench_require python3
bench_need_time
bench_build "$BENCH_PROFILE"
BIN=$(realpath "$BIN")
bench_capture "$FILE" "$FLOOD_PACKETS packets, seed $FLOOD_SEED" \
    python3 deploy/bench/flood_pcap.py "$FILE.tmp" "$FLOOD_PACKETS" "$FLOOD_SEED"
cat "$FILE" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-flood.XXXXXX")
trap 'bench_cleanup; rm -rf "$work"' EXIT

budget="[limits]
memory_budget_mib = $FLOOD_BUDGET_MIB
"
printf '%s' "$budget" >"$work/analyze.toml"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pct() { awk -v k="$1" -v b="$FLOOD_BUDGET_MIB" 'BEGIN { printf "%.1f", 100 * k / 1024 / b }'; }

if [[ $FLOOD_DAEMON == 1 ]]; then
    bench_netns_up
    bench_daemon_config "$work/burstwatch.toml" "$budget"
    echo "workers = $FLOOD_WORKERS" >>"$work/burstwatch.toml" # the [daemon] section is last

    echo "== daemon" >&2
    bench_daemon_start "$work/burstwatch.toml" "$work/daemon.log"
    hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
    (
        while [[ -e /proc/$DAEMON_PID ]]; do
            v=$(hwm_kib "$DAEMON_PID")
            [[ -z $v ]] || echo "$v" >>"$work/hwm"
            sleep 0.2
        done
    ) &
    PIDS+=("$!")
    sampler=$!
    start_kib=$(hwm_kib "$DAEMON_PID")

    rate=(--topspeed)
    [[ -z $FLOOD_MBPS ]] || rate=(--mbps="$FLOOD_MBPS")
    echo "== tcpreplay ${rate[*]} $FILE" >&2
    bench_replay "$work/replay.out" "${rate[@]}" "$FILE"
    received=$(bench_settle bench_metric burstwatch_interface_packets_total)
    dropped=$(bench_settle bench_metric burstwatch_capture_drops_total)
    m=$(bench_scrape)
    metric() { awk -v n="$1" -v f="${2:-}" '$1 == n || index($1, n "{") == 1 {
        if (f == "" || index($1, f)) s += $2 } END { printf "%.0f\n", s }' <<<"$m"; }
    flows_evicted=$(metric burstwatch_flows_ended_total 'reason="evicted"')
    flows_active=$(metric burstwatch_flows_active)
    ev_hosts=$(metric burstwatch_detector_evictions_total 'table="hosts"')
    ev_pairs=$(metric burstwatch_detector_evictions_total 'table="pairs"')
    ev_endpoints=$(metric burstwatch_detector_evictions_total 'table="endpoints"')
    n_pairs=$(metric burstwatch_detector_entries 'table="pairs"')
    n_endpoints=$(metric burstwatch_detector_entries 'table="endpoints"')
    run_kib=$(hwm_kib "$DAEMON_PID")
    bench_daemon_stop
    wait "$sampler" 2>/dev/null || true
    peak_kib=$(sort -n "$work/hwm" | tail -n 1)
    exit_kib=$(tail -n 1 "$work/hwm")
fi

echo "== analyze under GNU time" >&2
"$TIME" -v -o "$work/analyze.time" "$BIN" analyze --quiet --config "$work/analyze.toml" \
    --workers "$FLOOD_WORKERS" --stats "$work/stats.json" --flows /dev/null "$FILE" >/dev/null
a_kib=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$work/analyze.time")
a_wall=$(awk '/Elapsed \(wall clock\)/ { print $NF }' "$work/analyze.time")
read -r a_packets a_flows_evicted a_ev_hosts a_ev_pairs a_ev_endpoints < <(python3 - "$work/stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = s["detect"]
print(s["packets"], s["flows_ended"]["evicted"], d["evicted_hosts"], d["evicted_pairs"],
      d["evicted_endpoints"])
PY
)

# The same file with the default budget (config/burstwatch.toml: 3072 MiB).
if [[ ${FLOOD_DEFAULT_BUDGET:-1} == 1 ]]; then
    echo "== analyze with the default budget under GNU time" >&2
    "$TIME" -v -o "$work/default.time" "$BIN" analyze --quiet --stats "$work/default.json" \
        --workers "$FLOOD_WORKERS" --flows /dev/null "$FILE" >/dev/null
    d_kib=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$work/default.time")
    read -r d_packets d_flows_evicted d_ev_hosts d_ev_pairs d_ev_endpoints < <(python3 - "$work/default.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = s["detect"]
print(s["packets"], s["flows_ended"]["evicted"], d["evicted_hosts"], d["evicted_pairs"],
      d["evicted_endpoints"])
PY
)
fi

echo
printf 'capture: %s (%s bytes, %s packets); memory budget %s MiB, %s worker(s)\n' \
    "$FILE" "$(stat -c %s "$FILE")" "${SENT:-$a_packets}" "$FLOOD_BUDGET_MIB" "$FLOOD_WORKERS"
printf '%s cores, load average %s\n\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
[[ $FLOOD_DAEMON != 1 ]] ||
    printf 'daemon: tcpreplay %s: %s Mbit/s, %s pps achieved\n' "${rate[*]}" "$RATED_MBPS" "$RATED_PPS"
{
    echo "run|packets sent|received|dropped|peak RSS MiB|% of budget|RSS at exit MiB|flows evicted|hosts ev.|pairs ev.|endpoints ev."
    [[ $FLOOD_DAEMON != 1 ]] ||
        echo "daemon|$SENT|$received|$dropped|$(mib "$peak_kib")|$(pct "$peak_kib")|$(mib "$exit_kib")|$flows_evicted|$ev_hosts|$ev_pairs|$ev_endpoints"
    echo "analyze|-|$a_packets|-|$(mib "$a_kib")|$(pct "$a_kib")|-|$a_flows_evicted|$a_ev_hosts|$a_ev_pairs|$a_ev_endpoints"
    [[ -z ${d_kib:-} ]] ||
        echo "analyze, default budget (3072 MiB)|-|$d_packets|-|$(mib "$d_kib")|-|-|$d_flows_evicted|$d_ev_hosts|$d_ev_pairs|$d_ev_endpoints"
} | column -t -s '|'
echo
[[ $FLOOD_DAEMON != 1 ]] ||
    printf 'daemon: VmHWM %s MiB at start (idle), %s MiB after the replay; %s flows open, %s pairs and %s endpoints held\n' \
        "$(mib "$start_kib")" "$(mib "$run_kib")" "$flows_active" "$n_pairs" "$n_endpoints"
printf 'analyze: %s wall\n' "$a_wall"
