# shellcheck shell=bash
# Steps the benchmarks share (sourced by archive.sh, flows.sh, flood.sh and live.sh; not run
# directly, after `cd` to the checkout): where captures go and binaries are, building the
# binary, generating the capture once, and the GNU time check.

BENCH_DIR=${BENCH_DIR:-target/bench}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
TIME=/usr/bin/time

# bench_build PROFILE [CARGO-ARGS...]: build burstwatch with the cargo profile PROFILE, unless
# BENCH_NO_BUILD=1 (a prebuilt binary under CARGO_TARGET_DIR).
bench_build() {
    local profile=$1
    shift
    [[ ${BENCH_NO_BUILD:-0} == 1 ]] && return 0
    echo "== building the $profile binary" >&2
    cargo build --profile "$profile" -p burstwatch "$@"
}

# bench_need_time: GNU time at $TIME, or exit 2.
bench_need_time() {
    [[ -x $TIME ]] || { echo "$(basename "$0"): GNU time is needed at $TIME" >&2; exit 2; }
}

# bench_capture FILE WHAT COMMAND...: unless FILE exists, generate it with COMMAND, which writes
# FILE.tmp (WHAT says what it holds); a capture that exists is reused (delete it to regenerate).
bench_capture() {
    local file=$1 what=$2
    shift 2
    mkdir -p "$(dirname "$file")"
    if [[ ! -s $file ]]; then
        echo "== generating $file ($what)" >&2
        "$@"
        mv "$file.tmp" "$file"
    else
        echo "== reusing $file" >&2
    fi
}
