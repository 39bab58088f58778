#!/usr/bin/env bash
# Flow-extraction benchmark (run by hand; not a test): burstwatch against tshark, nfpcapd
# (nfdump) and argus on one large synthetic capture.
#
#   deploy/bench/flows.sh            # BENCH_DIR=target/bench, 1 GiB capture
#   BENCH_DIR=/fast/disk BENCH_SIZE=4G BENCH_SEED=2 deploy/bench/flows.sh
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/flows.sh   # use a prebuilt binary
#   BENCH_REPS=9 deploy/bench/flows.sh   # more interleaved runs per tool (default 5)
#
# The capture is generated once by `burstwatch simulate` and reused while it exists (delete it
# to regenerate). Each tool runs BENCH_REPS times under GNU time, interleaved, after the file has
# been read into the page cache, so the numbers compare CPU work rather than disk speed. Columns
# (of the run with the median wall time): wall seconds, packets/s and MB/s (file bytes / wall),
# packets/s of the fastest run, CPU seconds (user + sys), peak RSS in MiB.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
BENCH_SIZE=${BENCH_SIZE:-1G}
BENCH_SEED=${BENCH_SEED:-1}
BENCH_REPS=${BENCH_REPS:-5}
BIN=$TARGET_DIR/release/burstwatch
FILE=$BENCH_DIR/bench.pcap

bench_need_time
bench_build release
bench_capture "$FILE" "$BENCH_SIZE, seed $BENCH_SEED" \
    "$BIN" simulate --no-scenarios --seed "$BENCH_SEED" --size "$BENCH_SIZE" -o "$FILE.tmp"

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

# What read() costs depends on how the page cache holds the file: a file read from disk with a
# large readahead window lands in large folios (up to 2 MiB), one just written by the simulator
# in small ones, and the kernel's copy of small folios costs every tool here roughly a third
# more. The capture is dropped from the cache and read back once, as a capture read from disk
# is; every tool then reads the same cached pages.
echo "== dropping the capture from the page cache and reading it back" >&2
sync "$FILE"
dd if="$FILE" iflag=nocache count=0 status=none 2>/dev/null || true
cat "$FILE" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

names=()
declare -A cmds status
# tool NAME CMD...: a tool to time (skipped if not installed).
tool() {
    local name=$1
    shift
    names+=("$name")
    if ! command -v "$1" >/dev/null 2>&1; then
        status[$name]="not installed ($1), skipped"
        return
    fi
    status[$name]=ok
    cmds[$name]=$(printf '%q ' "$@")
}
# once NAME REP: run the tool under GNU time (stdout discarded, stderr kept in $work/NAME.log).
once() {
    local name=$1 rep=$2 rc=0
    [[ ${status[$name]} == ok ]] || return 0
    # nfpcapd writes its files here: every run starts from an empty directory.
    rm -rf "$work/nfcapd" && mkdir -p "$work/nfcapd"
    eval "\"$TIME\" -f '%e %U %S %M' -o \"$work/$name.time.$rep\" ${cmds[$name]}" \
        >/dev/null 2>"$work/$name.log" || rc=$?
    if ((rc != 0)); then
        status[$name]="failed: exit $rc (stderr above)"
        echo "-- $name failed; last lines of its stderr:" >&2
        tail -n 5 "$work/$name.log" >&2 || true
    fi
}

# Default: reading and decoding on a second thread; --threads 1: everything on one core.
tool burstwatch "$BIN" analyze --quiet --flows /dev/null "$FILE"
tool burstwatch-1-thread "$BIN" analyze --quiet --threads 1 --flows /dev/null "$FILE"
tool tshark tshark -q -n -r "$FILE" -z conv,tcp -z conv,udp
tool nfpcapd nfpcapd -r "$FILE" -w "$work/nfcapd"
# argus lingers about a second after the end of a file, which is part of its wall time.
tool argus argus -r "$FILE" -w /dev/null

# Interleaved repetitions, so that a slow spell of a shared machine touches every tool alike.
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    echo "== round $rep of $BENCH_REPS" >&2
    for name in "${names[@]}"; do
        once "$name" "$rep"
    done
done

rows=()
for name in "${names[@]}"; do
    if [[ ${status[$name]} != ok ]]; then
        rows+=("$name|-|-|-|-|-|-|${status[$name]}")
        continue
    fi
    # The run with the median wall time gives the row; the best wall time is shown beside it.
    read -r median best < <(for ((rep = 1; rep <= BENCH_REPS; rep++)); do
        echo "$(tail -n 1 "$work/$name.time.$rep" | cut -d ' ' -f 1) $rep"
    done | sort -n | awk -v n="$BENCH_REPS" 'NR == 1 { b = $1 } NR == int((n + 1) / 2) { m = $2 }
        END { print m, b }')
    read -r wall user sys rss < <(tail -n 1 "$work/$name.time.$median")
    rows+=("$(awk -v n="$name" -v w="$wall" -v bw="$best" -v u="$user" -v s="$sys" -v m="$rss" \
        -v p="$packets" -v b="$bytes" 'BEGIN {
            w1 = (w > 0) ? w : 0.001
            b1 = (bw > 0) ? bw : 0.001
            printf "%s|%.2f|%.0f|%.1f|%.0f|%.2f|%.1f|ok", n, w, p / w1, b / 1e6 / w1, p / b1, u + s, m / 1024
        }')")
done

echo
printf 'capture: %s (%s bytes, %s packets), median of %s interleaved runs\n\n' "$FILE" "$bytes" \
    "$packets" "$BENCH_REPS"
{
    echo "tool|wall s|packets/s|MB/s|best packets/s|CPU s|peak RSS MiB|status"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
