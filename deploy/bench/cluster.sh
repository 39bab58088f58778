#!/usr/bin/env bash
# Usage: deploy/bench/cluster.sh [CONTACTS_PER_SENSOR] [ENDPOINTS]
#
# The shared prevalence store (`[cluster]`): a fresh redis-server on a unix socket (no
# persistence), then the benchmark example of burstwatch-cluster with 1 and with 3 sensors
# writing at once: set updates and contacts per second per sensor, MEMORY USAGE per endpoint
# set, and the time a batch of questions takes while another sensor streams contacts (what the
# store adds to an alert decision). The store's own cost is given per CPU-second of
# redis-server (INFO cpu), which a busy machine does not skew. Needs redis-server and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
contacts="${1:-600000}"
endpoints="${2:-300000}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p burstwatch-cluster --example bench
fi
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench"
dir="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
echo "cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f1-3)"
for sensors in 1 3; do
  redis-server --port 0 --unixsocket "$dir/r.sock" --save '' --appendonly no >/dev/null &
  pid=$!
  for _ in $(seq 100); do [ -S "$dir/r.sock" ] && break; sleep 0.05; done
  echo "== $sensors sensor(s), $contacts contacts each over $endpoints endpoints"
  "$bench" "unix://$dir/r.sock" "$sensors" "$contacts" "$endpoints"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -f "$dir/r.sock"
done
