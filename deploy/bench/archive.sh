#!/usr/bin/env bash
# Archive benchmark (run by hand; not a test): one multi-GB simulator capture, the same packets
# split into rotated files, `burstwatch analyze` over the archive with 1 and 2 threads.
#
#   deploy/bench/archive.sh                      # BENCH_DIR=target/bench, 2 GiB, 8 files
#   BENCH_SIZE=4G BENCH_FILES=16 deploy/bench/archive.sh
#   BENCH_NO_BUILD=1 CARGO_TARGET_DIR=/elsewhere deploy/bench/archive.sh
#   REPORT=1 deploy/bench/archive.sh             # also --report (needs the `report` feature)
#   BENCH_REPS=5 deploy/bench/archive.sh         # runs per case (default 3)
#   BENCH_PROFILE=test-release deploy/bench/archive.sh  # another cargo profile (default release)
#
# Prints wall time, packets/s, CPU time and peak RSS per case (of its run with the median wall
# time; the cases' runs interleave, against a shared machine's noise), the 2-thread/1-thread
# wall-time ratio, and checks that the archive gives byte-identical alerts to the single file (with
# REPORT=1 also identical alerts and timeline tables in the reports).
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=deploy/bench/lib.sh
. deploy/bench/lib.sh
BENCH_SIZE=${BENCH_SIZE:-2G}
BENCH_FILES=${BENCH_FILES:-8}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_PROFILE=${BENCH_PROFILE:-release}
BIN=$TARGET_DIR/$BENCH_PROFILE/burstwatch
ONE=$BENCH_DIR/archive-one.pcap
PARTS=$BENCH_DIR/archive-parts

bench_need_time
command -v editcap >/dev/null || { echo "archive.sh: editcap (wireshark-common) is needed" >&2; exit 2; }
command -v jq >/dev/null || { echo "archive.sh: jq is needed" >&2; exit 2; }

features=()
[[ ${REPORT:-0} == 1 ]] && features=(--features report)
bench_build "$BENCH_PROFILE" "${features[@]}"

# A new capture is split anew.
[[ -s $ONE ]] || rm -rf "$PARTS"
# Scenarios at their natural size in a population sized so the capture holds a few GB.
bench_capture "$ONE" "$BENCH_SIZE, with scenarios" \
    "$BIN" simulate --seed 4 --subscribers 3000 --size "$BENCH_SIZE" -o "$ONE.tmp" -q
if [[ ! -d $PARTS ]]; then
    packets=$(capinfos -c -M "$ONE" | awk -F: '/Number of packets/ { gsub(/[^0-9]/, "", $2); print $2 }')
    per=$(((packets + BENCH_FILES - 1) / BENCH_FILES))
    echo "== splitting into $BENCH_FILES files of $per packets" >&2
    mkdir -p "$PARTS.tmp"
    editcap -F pcap -c "$per" "$ONE" "$PARTS.tmp/part.pcap"
    mv "$PARTS.tmp" "$PARTS"
fi
echo "== warming the page cache" >&2
cat "$ONE" "$PARTS"/* >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/burstwatch-archive.XXXXXX")
trap 'rm -rf "$work"' EXIT
rows=()
once() { # NAME REP THREADS INPUT...: one timed run
    local name=$1 rep=$2 threads=$3
    shift 3
    local report=()
    [[ ${REPORT:-0} == 1 ]] && report=(--report "$work/report-$name")
    "$TIME" -f '%e %U %S %M' -o "$work/$name.time.$rep" "$BIN" analyze -q --threads "$threads" \
        --flows /dev/null --alerts "$work/$name.alerts" --stats "$work/$name.stats" \
        "${report[@]}" "$@"
}
row() { # NAME THREADS: the table row of the run with the median wall time
    local name=$1 threads=$2 rep median wall user sys rss packets
    median=$(for ((rep = 1; rep <= BENCH_REPS; rep++)); do
        echo "$(tail -n 1 "$work/$name.time.$rep" | cut -d ' ' -f 1) $rep"
    done | sort -n | awk -v n="$BENCH_REPS" 'NR == int((n + 1) / 2) { print $2 }')
    read -r wall user sys rss < <(tail -n 1 "$work/$name.time.$median")
    packets=$(jq .packets "$work/$name.stats")
    rows+=("$name|$threads|$wall|$(awk -v p="$packets" -v w="$wall" 'BEGIN { printf "%.0f", p / w }')|$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')|$(awk -v m="$rss" 'BEGIN { printf "%.1f", m / 1024 }')|$(wc -l <"$work/$name.alerts")")
    echo "$wall" >"$work/$name.wall"
}
# Interleaved, so that a slow spell of a shared machine touches every case alike.
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    once single-file "$rep" 2 "$ONE"
    once archive-1-thread "$rep" 1 "$PARTS"
    once archive-2-threads "$rep" 2 "$PARTS"
done
row single-file 2
row archive-1-thread 1
row archive-2-threads 2

echo
printf 'single file: %s (%s bytes); archive: %s files in %s\n\n' "$ONE" "$(stat -c %s "$ONE")" \
    "$(find "$PARTS" -type f | wc -l)" "$PARTS"
{
    echo "run|threads|wall s|packets/s|CPU s|peak RSS MiB|alerts"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo
if cmp -s "$work/single-file.alerts" "$work/archive-2-threads.alerts" &&
    cmp -s "$work/single-file.alerts" "$work/archive-1-thread.alerts"; then
    echo "alerts: identical for the single file and the archive (1 and 2 threads)"
else
    echo "alerts: DIFFER between the single file and the archive" >&2
    exit 1
fi
if [[ ${REPORT:-0} == 1 ]]; then
    for table in alerts timeline; do
        for name in archive-1-thread archive-2-threads; do
            if ! cmp -s "$work/report-single-file/$table.parquet" "$work/report-$name/$table.parquet"; then
                echo "report: $table.parquet of $name DIFFERS from the single file's" >&2
                exit 1
            fi
        done
    done
    echo "report: alerts and timeline tables identical for the single file and the archive"
fi
awk -v a="$(cat "$work/archive-2-threads.wall")" -v b="$(cat "$work/archive-1-thread.wall")" \
    'BEGIN { printf "2 threads / 1 thread wall time: %.2f\n", a / b }'
