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
#   CAPTURE_THREADS="1 2" deploy/bench/live.sh      # afpacket rings per interface to run
#   PEERS="fastnetmon argus softflowd nfpcapd" deploy/bench/live.sh   # live peers to run
#   BENCH_FILE=target/bench/flood-5000000-1.pcap deploy/bench/live.sh   # replay another capture
#   FNM_NETWORKS=10.0.0.0/12 deploy/bench/live.sh   # FastNetMon's monitored networks
#
# The daemon (release build; once per BACKENDS, WORKERS count and, with afpacket, CAPTURE_THREADS
# count; default "pcap afpacket", "1 2" and "1 2"; threads above the worker count are skipped)
# captures on one end of a veth pair in its own network namespace with snaplen 256 and a
# 64 MiB kernel buffer (afpacket: 64 blocks of 1 MiB); tcpreplay sends the capture
# from the other end at each rate, then once at --topspeed. After each replay the counters are
# read from /metrics over a management veth once they stop moving: a run passes when no packet
# was dropped (kernel + interface) and the daemon received exactly what tcpreplay sent.
# "achieved" is tcpreplay's own figure. "CPU ms/Gbit" is the capturing process's user + system
# time (all threads, from /proc/PID/stat) over the step, per Gbit that tcpreplay sent; it
# includes the few seconds of idle waiting for the counters to settle (10 ms clock ticks).
#
# The flow-export peers run live on the same veth end with the same snaplen, restarted for every
# step (their counters are read when they stop): argus (received: the packets in its flow
# records, `racount`; dropped* = sent - received), softflowd (libpcap's received and dropped
# counts from `softflowctl statistics`, read while it runs) and nfpcapd (its exit line's
# libpcap received and dropped counts).
#
# FastNetMon (Debian package fastnetmon) gets the same replays in AF_PACKET mode on the same
# veth end. Its Prometheus endpoint exposes the packets it parsed but no drop counter (its
# AF_PACKET socket statistics are only pushed to InfluxDB), so its "dropped" column is derived:
# sent - received, marked with "*". It allocates ~700 bytes per monitored address up front, so
# it is given FNM_NETWORKS (default 10.0.0.0/14, a part of the simulated subscribers) rather
# than all home networks; traffic outside them is still counted as "other".
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
BENCH_SIZE=${BENCH_SIZE:-256M}
BENCH_SEED=${BENCH_SEED:-1}
RATES=${RATES:-250 500 1000 2000 4000}
WORKERS=${WORKERS:-1 2}
BACKENDS=${BACKENDS:-pcap afpacket}
FASTNETMON=${FASTNETMON:-1}
CAPTURE_THREADS=${CAPTURE_THREADS:-1 2}
PEERS=${PEERS:-fastnetmon argus softflowd nfpcapd}
[[ $FASTNETMON == 0 ]] && PEERS=${PEERS//fastnetmon/}
FNM_NETWORKS=${FNM_NETWORKS:-10.0.0.0/14}
BIN=$TARGET_DIR/release/burstwatch
FILE=${BENCH_FILE:-$BENCH_DIR/live-$BENCH_SIZE-$BENCH_SEED.pcap}

# shellcheck source=deploy/bench/netns.sh
. deploy/bench/netns.sh
bench_require column

bench_build release
BIN=$(realpath "$BIN")

if [[ -n ${BENCH_FILE:-} && ! -s $FILE ]]; then
    echo "live.sh: BENCH_FILE $FILE does not exist" >&2
    exit 2
fi
bench_capture "$FILE" "$BENCH_SIZE, seed $BENCH_SEED" \
    "$BIN" simulate --no-scenarios --seed "$BENCH_SEED" --size "$BENCH_SIZE" -o "$FILE.tmp" -q
cat "$FILE" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-live.XXXXXX")
trap 'bench_cleanup; rm -rf "$work"' EXIT
bench_netns_up

steps=()
for r in $RATES; do steps+=("--mbps=$r"); done
steps+=("--topspeed")

rows=()
notes=()
# cpu_per_gbit MS BYTES: CPU milliseconds per Gbit sent.
cpu_per_gbit() {
    awk -v ms="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", ms / (b * 8 / 1e9); else print "?" }'
}
# verdict_row TOOL STEP RECV DROP MARK CPU_MS: append one table row.
verdict_row() {
    local tool=$1 s=$2 recv=$3 drop=$4 mark=$5 cpu=$6 target verdict
    verdict=fail
    ((drop == 0 && recv == SENT)) && verdict=pass
    target=${s#--mbps=}
    [[ $s == --topspeed ]] && target=topspeed
    # tcpreplay could not reach the target: the sender, not the capture, set the rate.
    if [[ $target != topspeed ]] &&
        awk -v a="$RATED_MBPS" -v t="$target" 'BEGIN { exit !(a < 0.95 * t) }'; then
        verdict="$verdict (sender-limited)"
    fi
    rows+=("$tool|$target|$RATED_MBPS|$RATED_PPS|$SENT|$recv|$drop$mark|$(cpu_per_gbit "$cpu" "$SENT_BYTES")|$verdict")
}

# run_steps TOOL PID RECEIVED_FN DROPPED_FN: replay every step into the running process PID,
# reading counters with the two functions (each prints one number); DROPPED_FN "-" derives
# drops as sent - received.
run_steps() {
    local tool=$1 pid=$2 recv_fn=$3 drop_fn=$4 s r0 d0 r1="" d1=0 c0 c1 recv drop mark
    for s in "${steps[@]}"; do
        # The counters after the previous step are this step's baseline.
        r0=${r1:-$(bench_settle "$recv_fn")}
        d0=$d1
        [[ $drop_fn == - || -n $r1 ]] || d0=$(bench_settle "$drop_fn")
        c0=$(bench_cpu_ms "$pid")
        echo "== $tool: tcpreplay $s" >&2
        bench_replay "$work/replay.out" "$s" "$FILE"
        r1=$(bench_settle "$recv_fn")
        c1=$(bench_cpu_ms "$pid")
        recv=$((r1 - r0))
        mark=""
        if [[ $drop_fn == - ]]; then
            drop=$((SENT - recv))
            mark="*"
        else
            d1=$(bench_settle "$drop_fn")
            drop=$((d1 - d0))
        fi
        verdict_row "$tool" "$s" "$recv" "$drop" "$mark" $((c1 - c0))
    done
}

bw_received() { bench_metric burstwatch_interface_packets_total; }
bw_dropped() { bench_metric burstwatch_capture_drops_total; }

for b in $BACKENDS; do
    for w in $WORKERS; do
        threads=1
        [[ $b == afpacket ]] && threads=$CAPTURE_THREADS
        for t in $threads; do
            ((t <= w)) || continue
            echo "== burstwatch daemon (backend: $b, workers: $w, capture threads: $t)" >&2
            bench_daemon_config "$work/burstwatch.toml" "" "$b"
            # The [daemon] section is last.
            printf 'workers = %s\ncapture_threads = %s\n' "$w" "$t" >>"$work/burstwatch.toml"
            bench_daemon_start "$work/burstwatch.toml" "$work/daemon.log"
            run_steps "burstwatch-$b-${w}w-${t}t" "$DAEMON_PID" bw_received bw_dropped
            bench_daemon_stop
        done
    done
done

# Peers that count only when they stop: started afresh for every step.
# peer_start TOOL: start it in the capture namespace; sets PEER_PID.
peer_start() {
    local d=$work/$1
    rm -rf "$d"
    mkdir -p "$d/out"
    case $1 in
    argus)
        ip netns exec "$CAP_NS" argus -i "$CAP_IF" -s 256 -w "$d/out/flows.argus" \
            >"$d/log" 2>&1 &
        ;;
    softflowd)
        ip netns exec "$CAP_NS" softflowd -i "$CAP_IF" -d -C 256 -m 200000 -c "$d/ctl" \
            -p "$d/pid" -n 127.0.0.1:9995 -v 9 >"$d/log" 2>&1 &
        ;;
    nfpcapd)
        ip netns exec "$CAP_NS" nfpcapd -i "$CAP_IF" -s 256 -w "$d/out" >"$d/log" 2>&1 &
        ;;
    esac
    PEER_PID=$!
    PIDS+=("$PEER_PID")
    sleep 2
    kill -0 "$PEER_PID" 2>/dev/null
}
softflowd_stat() {
    ip netns exec "$CAP_NS" softflowctl -c "$work/softflowd/ctl" statistics 2>/dev/null |
        awk -v k="$1" 'index($0, k) == 1 { print $NF; f = 1 } END { if (!f) print 0 }'
}
# peer_stop TOOL: stop it and set PEER_RECV, PEER_DROP and PEER_MARK ("*": derived).
peer_stop() {
    local d=$work/$1
    PEER_MARK=""
    if [[ $1 == softflowd ]]; then
        PEER_RECV=$(softflowd_stat "Packets received by libpcap:")
        PEER_DROP=$(($(softflowd_stat "Packets dropped by libpcap:") + \
            $(softflowd_stat "Packets dropped by interface:")))
    fi
    kill -TERM "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
    case $1 in
    argus)
        PEER_RECV=$(racount -r "$d/out/flows.argus" 2>/dev/null |
            awk '$1 == "sum" { print $3; f = 1 } END { if (!f) print 0 }')
        PEER_DROP=$((SENT - PEER_RECV))
        PEER_MARK="*"
        ;;
    nfpcapd)
        PEER_RECV=$(awk '/^Stat: received:/ { gsub(",", ""); print $3; f = 1 }
            END { if (!f) print 0 }' "$d/log")
        PEER_DROP=$(awk '/^Stat: received:/ { gsub(",", ""); print $7; f = 1 }
            END { if (!f) print 0 }' "$d/log")
        ;;
    esac
}
run_restarting() {
    local tool=$1 s c
    for s in "${steps[@]}"; do
        if ! peer_start "$tool"; then
            notes+=("$tool: did not start: $(tail -n 2 "$work/$tool/log" | tr '\n' ' ')")
            return
        fi
        echo "== $tool: tcpreplay $s" >&2
        bench_replay "$work/replay.out" "$s" "$FILE"
        sleep 3
        c=$(bench_cpu_ms "$PEER_PID")
        peer_stop "$tool"
        verdict_row "$tool" "$s" "$PEER_RECV" "$PEER_DROP" "$PEER_MARK" "$c"
    done
}
for p in $PEERS; do
    [[ $p == fastnetmon ]] && continue
    if ! command -v "$p" >/dev/null 2>&1; then
        notes+=("$p: not installed, skipped")
        continue
    fi
    echo "== $p (live on the veth, snaplen 256)" >&2
    run_restarting "$p"
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
if [[ " $PEERS " != *" fastnetmon "* ]]; then
    fnm_note="FastNetMon: skipped (not in PEERS, or FASTNETMON=0)"
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
        run_steps "fastnetmon" "$fnm_pid" fnm_received -
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
    echo "tool|target Mbit/s|achieved Mbit/s|achieved pps|sent|received|dropped|CPU ms/Gbit|result"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo
for tool in $(printf '%s\n' "${rows[@]}" | cut -d'|' -f1 | uniq); do
    best=$(printf '%s\n' "${rows[@]}" | awk -F'|' -v t="$tool" '
        $1 == t && $9 ~ /^pass/ && $2 != "topspeed" && $2 + 0 > b { b = $2 + 0 }
        $1 == t && $9 ~ /^pass/ && $2 == "topspeed" { ts = $3 }
        END { if (ts != "") print "topspeed (" ts " Mbit/s achieved)"; else if (b) print b " Mbit/s"; else print "none" }')
    if printf '%s\n' "${rows[@]}" | grep -q "^$tool|"; then
        echo "$tool: highest passing rate: $best"
    fi
done
[[ -z $fnm_note ]] || echo "$fnm_note"
[[ ${#notes[@]} == 0 ]] || printf '%s\n' "${notes[@]}"
