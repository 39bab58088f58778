#!/usr/bin/env bash
# Flow-extraction benchmark (run by hand; not a test): burstwatch against tshark, nfpcapd
# (nfdump) and argus on one large synthetic capture.
#
#   deploy/bench/flows.sh            # BENCH_DIR=target/bench, 1 GiB capture
#   BENCH_DIR=/fast/disk BENCH_SIZE=4G BENCH_SEED=2 deploy/bench/flows.sh
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/flows.sh   # use a prebuilt binary
#
# The capture is generated once by `burstwatch simulate` and reused while it exists (delete it
# to regenerate). Each tool runs once under GNU time, after the file has been read into the page
# cache, so the numbers compare CPU work rather than disk speed. Columns: wall seconds,
# packets/s and MB/s (file bytes / wall), CPU seconds (user + sys), peak RSS in MiB.
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_DIR=${BENCH_DIR:-target/bench}
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_SEED=${BENCH_SEED:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release/burstwatch
TIME=/usr/bin/time
FILE=$BENCH_DIR/bench.pcap

[[ -x $TIME ]] || { echo "flows.sh: GNU time is needed at $TIME" >&2; exit 2; }

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
    echo "== building release binary" >&2
    cargo build --release -p burstwatch
fi

mkdir -p "$BENCH_DIR"
if [[ ! -s $FILE ]]; then
    echo "== generating $FILE ($BENCH_SIZE, seed $BENCH_SEED)" >&2
    "$BIN" simulate --no-scenarios --seed "$BENCH_SEED" --size "$BENCH_SIZE" -o "$FILE.tmp"
    mv "$FILE.tmp" "$FILE"
else
    echo "== reusing $FILE" >&2
fi

bytes=$(stat -c %s "$FILE")
packets=""
if command -v capinfos >/dev/null 2>&1; then
    packets=$(capinfos -c -M "$FILE" | awk -F: '/Number of packets/ { gsub(/[^0-9]/, "", $2); print $2 }')
fi
if [[ -z $packets ]]; then
    # Count records directly: 24-byte header, then 16-byte record headers with incl_len at +8.
    packets=$(python3 - "$FILE" <<'PY'
import struct, sys
n = 0
with open(sys.argv[1], "rb") as f:
    f.read(24)
    while (h := f.read(16)) and len(h) == 16:
        f.seek(struct.unpack("<I", h[8:12])[0], 1)
        n += 1
print(n)
PY
)
fi
echo "== $FILE: $bytes bytes, $packets packets" >&2

echo "== warming the page cache" >&2
cat "$FILE" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

rows=()
# bench NAME CMD...: run CMD under GNU time (stdout discarded, stderr kept in $work/NAME.log).
bench() {
    local name=$1
    shift
    if ! command -v "$1" >/dev/null 2>&1; then
        rows+=("$name|-|-|-|-|-|not installed ($1), skipped")
        return
    fi
    echo "== $name: $*" >&2
    local status=ok rc=0
    "$TIME" -f '%e %U %S %M' -o "$work/$name.time" "$@" >/dev/null 2>"$work/$name.log" || rc=$?
    if ((rc != 0)); then
        status="failed: exit $rc (stderr above)"
        echo "-- $name failed; last lines of its stderr:" >&2
        tail -n 5 "$work/$name.log" >&2 || true
    fi
    # GNU time writes "Command exited with non-zero status N" before the numbers on failure.
    local wall user sys rss
    read -r wall user sys rss < <(tail -n 1 "$work/$name.time")
    rows+=("$(awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" \
        -v p="$packets" -v b="$bytes" -v st="$status" 'BEGIN {
            w1 = (w > 0) ? w : 0.001
            if (st != "ok") { printf "%s|%.2f|-|-|%.2f|%.1f|%s", n, w, u + s, m / 1024, st; exit }
            printf "%s|%.2f|%.0f|%.1f|%.2f|%.1f|%s", n, w, p / w1, b / 1e6 / w1, u + s, m / 1024, st
        }')")
}

# Default: reading and decoding on a second thread; --threads 1: everything on one core.
bench burstwatch "$BIN" analyze --quiet --flows /dev/null "$FILE"
bench burstwatch-1-thread "$BIN" analyze --quiet --threads 1 --flows /dev/null "$FILE"
bench tshark tshark -q -n -r "$FILE" -z conv,tcp -z conv,udp
mkdir -p "$work/nfcapd"
bench nfpcapd nfpcapd -r "$FILE" -w "$work/nfcapd"
# argus lingers about a second after the end of a file, which is part of its wall time.
bench argus argus -r "$FILE" -w /dev/null

echo
printf 'capture: %s (%s bytes, %s packets)\n\n' "$FILE" "$bytes" "$packets"
{
    echo "tool|wall s|packets/s|MB/s|CPU s|peak RSS MiB|status"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
