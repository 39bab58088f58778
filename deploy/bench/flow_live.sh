#!/usr/bin/env bash
# Live flow export on loopback (run by hand; not a test): the daemon's flow_listen socket and
# nfdump's nfcapd, each fed the same IPFIX datagrams at rising rates for FLOW_SECONDS (default
# 60) by a small sender that replays the datagrams of a simulator export capture in a loop from
# one socket, paced to the target records/s (`simulate --send` paces by export time but
# generates its traffic as it goes, which caps it near 15 k records/s here). For each rate:
# records/s sent, records taken, kernel drops at the socket, template misses, and the
# collector's CPU seconds per million records (the daemon's includes the engine's work on the
# bins, which reach it 75 s behind the clock: the run waits for them).
#
#   deploy/bench/flow_live.sh                       # BENCH_DIR=target/bench
#   FLOW_RATES="50000 100000 200000" FLOW_SUBSCRIBERS=40000 deploy/bench/flow_live.sh
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/flow_live.sh
#
# The export capture (simulator's default scenarios scaled to FLOW_SUBSCRIBERS subscribers over
# FLOW_DURATION s, IPFIX, 10 s active timeout) is generated once and kept.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
RATES=${FLOW_RATES:-50000 100000 200000 400000}
SECONDS_EACH=${FLOW_SECONDS:-60}
SUBSCRIBERS=${FLOW_SUBSCRIBERS:-20000}
DURATION=${FLOW_DURATION:-1200}
BIN=$TARGET_DIR/release/burstwatch
CAP=$BENCH_DIR/flow-live-ipfix-$SUBSCRIBERS-$DURATION.pcap
PORT=${FLOW_PORT:-24739}
METRICS=${FLOW_METRICS_PORT:-29811}

bench_build release
mkdir -p "$BENCH_DIR"
if [[ ! -f $CAP ]]; then
    echo "== generating $CAP" >&2
    "$BIN" simulate -q --seed 4 --subscribers "$SUBSCRIBERS" --duration "$DURATION" \
        --export ipfix --active-timeout 10 -o "$CAP.tmp"
    mv "$CAP.tmp" "$CAP"
fi
RECORDS=$("$BIN" analyze -q --input-kind flow-export "$CAP" --stats /dev/stdout 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["flow_export"]["records"])')
echo "== $CAP: $RECORDS records over $DURATION s of traffic" >&2

cpu_s() { # utime+stime of a pid, seconds
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
metric() { # value of one series on the daemon's /metrics
    curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v s="$1" 'index($0, s" ") == 1 {print $2}' | tail -1
}

# send RATE: replay the capture's UDP payloads in a loop to 127.0.0.1:PORT at RATE records/s
# (by the capture's mean records per datagram) for at least SECONDS_EACH s, in whole passes;
# prints "records_per_second_sent, records_sent".
send() {
    python3 - "$CAP" "$PORT" "$1" "$SECONDS_EACH" "$RECORDS" <<'PY'
import socket, struct, sys, time
cap, port, rate, secs, records = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
data = open(cap, "rb").read()
le = data[:4] == b"\xd4\xc3\xb2\xa1"
fmt = "<IIII" if le else ">IIII"
off, grams = 24, []
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(fmt, data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    ihl = (frame[14] & 15) * 4          # Ethernet, IPv4, UDP (what simulate writes)
    grams.append(frame[14 + ihl + 8:])
per = records / len(grams)               # records per datagram, on average
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
dst, t0, n, i = ("127.0.0.1", port), time.monotonic(), 0, 0
while True:
    now = time.monotonic() - t0
    if now >= secs and i == 0:           # whole passes over the capture only: exact counts
        break
    due = int(now * rate / per) + 1
    while n < due:
        s.sendto(grams[i], dst)
        i = (i + 1) % len(grams)
        n += 1
        if i == 0 and now >= secs:
            break
    time.sleep(0.001)
el = time.monotonic() - t0
print(f"{n * per / el:.0f}, {n // len(grams) * records}")
PY
}

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "| collector | target records/s | sent records/s | records taken | kernel drops | template misses | CPU s per M records |"
echo "|---|---|---|---|---|---|---|"
for rate in $RATES; do
    # burstwatch
    cat > "$WORK/bw.toml" <<EOF
[daemon]
flow_listen = ["udp://127.0.0.1:$PORT"]
metrics_bind = "127.0.0.1:$METRICS"
EOF
    "$BIN" daemon --config "$WORK/bw.toml" 2> "$WORK/bw.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "daemon started" "$WORK/bw.log" && break; sleep 0.1; done
    c0=$(cpu_s $pid)
    sent=$(send "$rate")
    # The bins reach the engine after the daemon's 75 s hold.
    sleep 80
    c1=$(cpu_s $pid)
    ex='{exporter="127.0.0.1"}'
    got=$(metric "burstwatch_flow_export_records_total$ex")
    drops=$(metric "burstwatch_flow_export_socket_drops_total{listen=\"udp://127.0.0.1:$PORT\"}")
    misses=$(metric "burstwatch_flow_export_template_misses_total$ex")
    kill -TERM $pid; wait $pid || true
    python3 -c "
sent, n = $sent
got = float('${got:-0}' or 0)
cpu = ($c1 - $c0) / max(got, 1) * 1e6
print(f'| burstwatch | {$rate:,} | {sent:,.0f} | {got:,.0f} of {n:,} | ${drops:-?} | ${misses:-?} | {cpu:.2f} |')"
    # nfcapd on the same datagrams
    rm -rf "$WORK/nf"; mkdir -p "$WORK/nf"
    nfcapd -p "$PORT" -b 127.0.0.1 -w "$WORK/nf" -B 33554432 -t 3600 > "$WORK/nf.log" 2>&1 &
    pid=$!
    sleep 1
    c0=$(cpu_s $pid)
    sent=$(send "$rate")
    sleep 2
    c1=$(cpu_s $pid)
    kill -TERM $pid; wait $pid || true
    flows=$(nfdump -q -R "$WORK/nf" -I 2>/dev/null | awk -F': ' '/^Flows:/ {print $2; exit}')
    python3 -c "
sent, n = $sent
got = float('${flows:-0}' or 0)
cpu = ($c1 - $c0) / max(got, 1) * 1e6
print(f'| nfcapd | {$rate:,} | {sent:,.0f} | {got:,.0f} of {n:,} | – | – | {cpu:.2f} |')"
done
echo "cores: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
