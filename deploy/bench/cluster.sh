#!/usr/bin/env bash
# Usage: deploy/bench/cluster.sh [CONTACTS_PER_SENSOR] [ENDPOINTS]
#
# The shared prevalence store (`[cluster]`): a fresh redis-server on a unix socket (no
# persistence), then the benchmark example of burstwatch-cluster with 1 and with 3 sensors
# writing at once: set updates and contacts per second per sensor, MEMORY USAGE per endpoint
# set, and the time a batch of questions takes while another sensor streams contacts (what the
# store adds to an alert decision). The store's own cost is given per CPU-second of
# redis-server (INFO cpu), which a busy machine does not skew. Then the same on a Redis Cluster
# of CLUSTER_NODES primaries (default 3; 0: skip) on loopback, joined by
# `redis-cli --cluster create`. Needs redis-server, redis-cli and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
contacts="${1:-600000}"
endpoints="${2:-300000}"
nodes="${CLUSTER_NODES:-3}"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p burstwatch-cluster --example bench
fi
bench="${CARGO_TARGET_DIR:-target}/release/examples/bench"
dir="$(mktemp -d)"
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() { stop; rm -rf "$dir"; }
trap cleanup EXIT
echo "cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f1-3)"
for sensors in 1 3; do
  redis-server --port 0 --unixsocket "$dir/r.sock" --save '' --appendonly no >/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/r.sock" ] && break; sleep 0.05; done
  echo "== one server: $sensors sensor(s), $contacts contacts each over $endpoints endpoints"
  "$bench" "unix://$dir/r.sock" "$sensors" "$contacts" "$endpoints"
  stop
  rm -f "$dir/r.sock"
done
[ "$nodes" -gt 0 ] || exit 0
# A free loopback port: the kernel picks one for a listener that is closed at once.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for sensors in 1 3; do
  rm -f "$dir"/nodes-*.conf
  ports=()
  for _ in $(seq "$nodes"); do
    port="$(free_port)"; bus="$(free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-port "$bus" \
      --cluster-config-file "$dir/nodes-$port.conf" --dir "$dir" --save '' --appendonly no >/dev/null &
    pids+=($!)
    ports+=("$port")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 \
    --cluster-yes >/dev/null
  for p in "${ports[@]}"; do
    for _ in $(seq 300); do
      redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
    done
  done
  urls="$(printf 'redis://127.0.0.1:%s,' "${ports[@]}")"
  echo "== Redis Cluster of $nodes primaries: $sensors sensor(s), $contacts contacts each over $endpoints endpoints"
  "$bench" "cluster:${urls%,}" "$sensors" "$contacts" "$endpoints"
  stop
done
