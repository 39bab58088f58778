#!/usr/bin/env bash
# Live-capture benchmark (run by hand as root; not a test): the highest tcpreplay rate into a
# veth at which `burstwatch daemon` loses no packet, and the same replays against FastNetMon.
#
#   deploy/bench/live.sh                       # BENCH_DIR=target/bench, 256 MiB capture
#   RATES="100 250 500" deploy/bench/live.sh   # Mbit/s steps (a --topspeed run always follows)
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/live.sh   # use a prebuilt binary
#   FASTNETMON=0 deploy/bench/live.sh          # skip FastNetMon
#   BENCH_BUFFER_MIB=4 deploy/bench/live.sh    # kernel buffer / ring per interface (default 64)
#   WORKERS="1 2 4" deploy/bench/live.sh       # engine workers (daemon.workers) to run
#   BACKENDS="pcap afpacket" deploy/bench/live.sh   # capture backends (daemon.backend) to run
#   BENCH_FILE=target/bench/flood-5000000-1.pcap deploy/bench/live.sh   # replay another capture
#   FNM_NETWORKS=10.0.0.0/12 deploy/bench/live.sh   # FastNetMon's monitored networks
#
# The daemon (release build; once per BACKENDS and WORKERS count, default "pcap afpacket" and
# "1 2") captures on one end of a veth pair in its own network namespace with snaplen 256 and a
# 64 MiB kernel buffer (afpacket: 64 blocks of 1 MiB); tcpreplay sends the capture
# from the other end at each rate, then once at --topspeed. After each replay the counters are
# read from /metrics over a management veth once they stop moving: a run passes when no packet
# was dropped (kernel + interface) and the daemon received exactly what tcpreplay sent.
# "achieved" is tcpreplay's own figure.
#
# FastNetMon (Debian package fastnetmon) gets the same replays in AF_PACKET mode on the same
# veth end. Its Prometheus endpoint exposes the packets it parsed but no drop counter (its
# AF_PACKET socket statistics are only pushed to InfluxDB), so its "dropped" column is derived:
# sent - received, marked with "*". It allocates ~700 bytes per monitored address up front, so
# it is given FNM_NETWORKS (default 10.0.0.0/14, a part of the simulated subscribers) rather
# than all home networks; traffic outside them is still counted as "other".
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_DIR=${BENCH_DIR:-target/bench}
BENCH_SIZE=${BENCH_SIZE:-256M}
BENCH_SEED=${BENCH_SEED:-1}
RATES=${RATES:-250 500 1000 2000 4000}
WORKERS=${WORKERS:-1 2}
BACKENDS=${BACKENDS:-pcap afpacket}
FASTNETMON=${FASTNETMON:-1}
FNM_NETWORKS=${FNM_NETWORKS:-10.0.0.0/14}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release/burstwatch
FILE=${BENCH_FILE:-$BENCH_DIR/live-$BENCH_SIZE-$BENCH_SEED.pcap}

# shellcheck source=deploy/bench/netns.sh
. deploy/bench/netns.sh
bench_require column

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    echo "== building release binary" >&2
    cargo build --release -p burstwatch
fi
BIN=$(realpath "$BIN")

mkdir -p "$BENCH_DIR"
if [[ -n ${BENCH_FILE:-} && ! -s $FILE ]]; then
    echo "live.sh: BENCH_FILE $FILE does not exist" >&2
    exit 2
elif [[ ! -s $FILE ]]; then
    echo "== generating $FILE ($BENCH_SIZE, seed $BENCH_SEED)" >&2
    "$BIN" simulate --no-scenarios --seed "$BENCH_SEED" --size "$BENCH_SIZE" -o "$FILE.tmp" -q
    mv "$FILE.tmp" "$FILE"
else
    echo "== reusing $FILE" >&2
fi
cat "$FILE" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-live.XXXXXX")
trap 'bench_cleanup; rm -rf "$work"' EXIT
bench_netns_up

steps=()
for r in $RATES; do steps+=("--mbps=$r"); done
steps+=("--topspeed")

rows=()
# run_steps TOOL RECEIVED_FN DROPPED_FN: replay every step, reading counters with the two
# functions (each prints one number); DROPPED_FN "-" derives drops as sent - received.
run_steps() {
    local tool=$1 recv_fn=$2 drop_fn=$3 s r0 d0 r1="" d1=0 recv drop target verdict mark
    for s in "${steps[@]}"; do
        # The counters after the previous step are this step's baseline.
        r0=${r1:-$(bench_settle "$recv_fn")}
        d0=$d1
        [[ $drop_fn == - || -n $r1 ]] || d0=$(bench_settle "$drop_fn")
        echo "== $tool: tcpreplay $s" >&2
        bench_replay "$work/replay.out" "$s" "$FILE"
        r1=$(bench_settle "$recv_fn")
        recv=$((r1 - r0))
        mark=""
        if [[ $drop_fn == - ]]; then
            drop=$((SENT - recv))
            mark="*"
        else
            d1=$(bench_settle "$drop_fn")
            drop=$((d1 - d0))
        fi
        verdict=fail
        ((drop == 0 && recv == SENT)) && verdict=pass
        target=${s#--mbps=}
        [[ $s == --topspeed ]] && target=topspeed
        # tcpreplay could not reach the target: the sender, not the capture, set the rate.
        if [[ $target != topspeed ]] &&
            awk -v a="$RATED_MBPS" -v t="$target" 'BEGIN { exit !(a < 0.95 * t) }'; then
            verdict="$verdict (sender-limited)"
        fi
        rows+=("$tool|$target|$RATED_MBPS|$RATED_PPS|$SENT|$recv|$drop$mark|$verdict")
    done
}

bw_received() { bench_metric burstwatch_interface_packets_total; }
bw_dropped() { bench_metric burstwatch_capture_drops_total; }

for b in $BACKENDS; do
    for w in $WORKERS; do
        echo "== burstwatch daemon (backend: $b, workers: $w)" >&2
        bench_daemon_config "$work/burstwatch.toml" "" "$b"
        echo "workers = $w" >>"$work/burstwatch.toml" # the [daemon] section is last
        bench_daemon_start "$work/burstwatch.toml" "$work/daemon.log"
        run_steps "burstwatch-$b-$w-worker" bw_received bw_dropped
        bench_daemon_stop
    done
done

fnm_note=""
fnm_scrape() {
    ip netns exec "$CAP_NS" curl -sf --max-time 2 http://127.0.0.1:9209/metrics || true
}
fnm_received() {
    fnm_scrape | awk '$1 == "fastnetmon_total_simple_packets_processed" ||
        $1 == "fastnetmon_total_unparsed_packets" ||
        $1 == "fastnetmon_unknown_ip_version_packets" { s += $2 } END { printf "%.0f\n", s }'
}
if [[ $FASTNETMON == 0 ]]; then
    fnm_note="FastNetMon: skipped (FASTNETMON=0)"
elif ! command -v fastnetmon >/dev/null 2>&1; then
    fnm_note="FastNetMon: not installed (apt-get install fastnetmon), skipped"
else
    echo "== FastNetMon (AF_PACKET, networks $FNM_NETWORKS)" >&2
    read -ra nets <<<"${FNM_NETWORKS//,/ }"
    printf '%s\n' "${nets[@]}" >"$work/fnm-networks"
    : >"$work/fnm-whitelist"
    cat >"$work/fastnetmon.conf" <<EOF
logging_level = info
disable_usage_report = on
networks_list_path = $work/fnm-networks
white_list_path = $work/fnm-whitelist
mirror_afpacket = on
mirror_af_packet_custom_sampling_rate = 1
mirror_af_packet_fanout_mode = cpu
pcap = off
netflow = off
sflow = off
interfaces = $CAP_IF
process_incoming_traffic = on
process_outgoing_traffic = on
enable_ban = off
enable_api = off
influxdb = off
graphite = off
redis_enabled = off
mongodb_enabled = off
prometheus = on
prometheus_host = 127.0.0.1
prometheus_port = 9209
pid_path = $work/fastnetmon.pid
cli_stats_file_path = $work/fastnetmon.dat
cli_stats_ipv6_file_path = $work/fastnetmon_ipv6.dat
EOF
    ip netns exec "$CAP_NS" fastnetmon --configuration_file "$work/fastnetmon.conf" \
        --log_file "$work/fastnetmon.log" --disable_pid_logic >"$work/fastnetmon.out" 2>&1 &
    fnm_pid=$!
    PIDS+=("$fnm_pid")
    up=0
    for _ in $(seq 300); do
        if fnm_scrape | grep -q '^fastnetmon_total_simple_packets_processed'; then
            up=1
            break
        fi
        kill -0 "$fnm_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ((up)) && grep -q "AF_PACKET plugin started" "$work/fastnetmon.log"; then
        run_steps "fastnetmon" fnm_received -
        fnm_note="FastNetMon: dropped* = sent - received (it exports no drop counter)"
    else
        fnm_note="FastNetMon: did not start capturing in the namespace; its log ends: $(tail -n 3 \
            "$work/fastnetmon.log" "$work/fastnetmon.out" 2>/dev/null | tr '\n' ' ')"
    fi
    kill -TERM "$fnm_pid" 2>/dev/null || true
    wait "$fnm_pid" 2>/dev/null || true
fi

echo
packets=$(awk '/Successful packets:/ { print $3 }' "$work/replay.out" 2>/dev/null || echo "?")
printf 'capture: %s (%s bytes, %s packets); %s cores, load average %s\n\n' "$FILE" \
    "$(stat -c %s "$FILE")" "$packets" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo "tool|target Mbit/s|achieved Mbit/s|achieved pps|sent|received|dropped|result"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo
for tool in $(printf '%s\n' "${rows[@]}" | cut -d'|' -f1 | uniq); do
    best=$(printf '%s\n' "${rows[@]}" | awk -F'|' -v t="$tool" '
        $1 == t && $8 ~ /^pass/ && $2 != "topspeed" && $2 + 0 > b { b = $2 + 0 }
        $1 == t && $8 ~ /^pass/ && $2 == "topspeed" { ts = $3 }
        END { if (ts != "") print "topspeed (" ts " Mbit/s achieved)"; else if (b) print b " Mbit/s"; else print "none" }')
    if printf '%s\n' "${rows[@]}" | grep -q "^$tool|"; then
        echo "$tool: highest passing rate: $best"
    fi
done
[[ -z $fnm_note ]] || echo "$fnm_note"
