# shellcheck shell=bash
# Shared helpers for the live benchmarks (sourced by live.sh and flood.sh; not run directly).
#
# A capture namespace and a sending namespace joined by a veth pair (no addresses, IPv6 off so
# the kernel sends nothing of its own), plus a management veth from the host into the capture
# namespace carrying a link-local /30 for the metrics endpoint. Everything is named after the
# calling script's process id and removed by bench_cleanup (call it from an EXIT trap).

TAG=bwb$$
CAP_NS=${TAG}c
SEND_NS=${TAG}s
CAP_IF=${TAG}c
SEND_IF=${TAG}s
MGMT_IF=${TAG}m
MGMT_INNER=${TAG}n
OCTET=$(($$ % 250))
MGMT_ADDR=169.254.$OCTET.2
PIDS=()

bench_require() {
    [[ $(id -u) == 0 ]] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }
    local t
    for t in ip tcpreplay curl "$@"; do
        command -v "$t" >/dev/null 2>&1 || { echo "$0: $t is needed" >&2; exit 2; }
    done
}

bench_netns_up() {
    ip netns add "$CAP_NS"
    ip netns add "$SEND_NS"
    local ns
    for ns in "$CAP_NS" "$SEND_NS"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    ip link add "$CAP_IF" type veth peer name "$SEND_IF"
    ip link set "$CAP_IF" netns "$CAP_NS"
    ip link set "$SEND_IF" netns "$SEND_NS"
    ip -n "$CAP_NS" link set "$CAP_IF" up
    ip -n "$SEND_NS" link set "$SEND_IF" up
    ip link add "$MGMT_IF" type veth peer name "$MGMT_INNER"
    ip link set "$MGMT_INNER" netns "$CAP_NS"
    ip addr add "169.254.$OCTET.1/30" dev "$MGMT_IF"
    ip link set "$MGMT_IF" up
    ip -n "$CAP_NS" addr add "$MGMT_ADDR/30" dev "$MGMT_INNER"
    ip -n "$CAP_NS" link set "$MGMT_INNER" up
}

bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    ip netns del "$CAP_NS" 2>/dev/null || true
    ip netns del "$SEND_NS" 2>/dev/null || true
    ip link del "$MGMT_IF" 2>/dev/null || true
}

# bench_daemon_config FILE EXTRA [BACKEND]: the daemon's configuration, capturing on the veth
# end with BACKEND (default pcap).
bench_daemon_config() {
    cat >"$1" <<EOF
$2
[daemon]
interfaces = ["$CAP_IF"]
backend = "${3:-pcap}"
snaplen = 256
buffer_mib = ${BENCH_BUFFER_MIB:-64}
metrics_bind = "$MGMT_ADDR:9811"
EOF
}

# bench_daemon_start CONFIG LOG: start the daemon in the capture namespace; sets DAEMON_PID.
bench_daemon_start() {
    ip netns exec "$CAP_NS" "$BIN" daemon --config "$1" 2>"$2" >/dev/null &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    for _ in $(seq 100); do
        if [[ $(bench_metric burstwatch_interface_up) == 1 ]]; then
            return 0
        fi
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$0: the daemon did not start capturing; its log:" >&2
    tail -n 20 "$2" >&2
    exit 1
}

# bench_daemon_stop: SIGTERM and wait for the exit.
bench_daemon_stop() {
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
}

bench_scrape() {
    curl -sf --max-time 2 "http://$MGMT_ADDR:9811/metrics" || true
}

# bench_metric NAME [LABEL_FILTER]: the sum of the samples of NAME whose labels contain FILTER.
bench_metric() {
    bench_scrape | awk -v n="$1" -v f="${2:-}" '
        $1 == n || index($1, n "{") == 1 { if (f == "" || index($1, f)) { s += $2; seen = 1 } }
        END { printf "%.0f\n", seen ? s : 0 }'
}

# bench_cpu_ms PID: CPU time (user + system, all threads) the process has used, in ms.
bench_cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1000 / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}

# bench_settle CMD...: run CMD (prints one number) once a second until it returns the same
# value three times in a row (the daemon publishes its counters once a second); print it.
bench_settle() {
    local last="" same=0 v
    for _ in $(seq 60); do
        v=$("$@")
        if [[ $v == "$last" ]]; then
            same=$((same + 1))
            ((same >= 2)) && break
        else
            same=0
        fi
        last=$v
        sleep 1
    done
    echo "$last"
}

# bench_replay OUT ARGS...: tcpreplay from the sending namespace; output kept in OUT. Sets
# SENT, SENT_BYTES, RATED_MBPS, RATED_PPS (read by the calling script).
# shellcheck disable=SC2034
bench_replay() {
    local out=$1
    shift
    ip netns exec "$SEND_NS" tcpreplay -i "$SEND_IF" "$@" >"$out" 2>&1 || {
        echo "$0: tcpreplay failed:" >&2
        cat "$out" >&2
        exit 1
    }
    SENT=$(awk '/Successful packets:/ { print $3 }' "$out")
    SENT_BYTES=$(awk '/Actual:/ { gsub(/[(]/, ""); print $4 }' "$out")
    RATED_MBPS=$(awk '/Rated:/ { gsub(",", ""); print $4 }' "$out")
    RATED_PPS=$(awk '/Rated:/ { gsub(",", ""); print $6 }' "$out")
}
