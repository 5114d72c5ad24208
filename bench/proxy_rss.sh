#!/usr/bin/env bash
# Benchmark: the resident memory of `sextant proxy` builds, side by side, each started from a cold page cache
# (as on a fresh node; with the binary already cached, the kernel's fault-around maps more of it and RSS
# reads 2–4 MiB higher). For each round and each binary: drop the page cache (needs root; otherwise says so
# and goes on warm), start the proxy with Istio metrics (the bench mesh of bench/proxy_setup.sh, upstream
# nginx on core 1), then print
#   idle      RSS, anonymous and file-backed (from /proc/PID/status) once it answers /ready;
#   1000 rps  peak RSS (VmHWM) and vCPU over N s at a constant 1000 req/s (bench/latency.py, open loop);
#   max       peak RSS after N s of wrk -t1 -c16 (what it reaches under full load).
# TELEMETRY=1 adds Istio's JSON access log and 100 % tracing over OTLP/gRPC to a sink collector.
# Usage: bench/proxy_rss.sh SECONDS ROUNDS BINARY...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:?seconds}"; rounds="${2:?rounds}"; shift 2
[ $# -gt 0 ] || { echo "usage: bench/proxy_rss.sh SECONDS ROUNDS BINARY..." >&2; exit 2; }
. bench/proxy_setup.sh
proxy_bench_deps wrk:wrk nginx:nginx-light
up="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"
proxy_bench_files
taskset -c 1 nginx -c "$tmp/upstream.conf" -p "$tmp" & pids+=($!)
extra=()
if [ "${TELEMETRY:-0}" = 1 ]; then
  taskset -c 1 "$1" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
  extra=(--config "$tmp/telemetry.yaml")
fi
mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "# MiB; telemetry: ${TELEMETRY:-0}; ${secs}s per phase"
for round in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    sync
    echo 3 2>/dev/null > /proc/sys/vm/drop_caches || echo "# (page cache not dropped: not root)"
    port="$(free_port)"; admin="$(free_port)"
    taskset -c 0 "$bin" proxy --config "$tmp/mesh.yaml" "${extra[@]}" --listen "127.0.0.1:$port" \
      --admin "127.0.0.1:$admin" --workload bench --concurrency 1 --log-level warning & pid=$!; pids+=($pid)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null && break; sleep 0.1; done
    sleep 1
    idle="$(mib $pid VmRSS) (anon $(mib $pid RssAnon), file $(mib $pid RssFile))"
    lat="$(taskset -c 1 "$py" bench/latency.py --port "$port" --host upstream:80 --rate 1000 --seconds "$secs" \
      --pid "$pid" | "$py" -c 'import json, sys; r = json.load(sys.stdin); print("vcpu %s, p99 %s ms" % (r["vcpu"], r["p99_ms"]))')"
    hwm1="$(mib $pid VmHWM) (then anon $(mib $pid RssAnon), file $(mib $pid RssFile))"
    rps="$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" -H 'Host: upstream:80' "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')"
    echo "round $round $(basename "$bin"): idle $idle; 1000 rps: peak $hwm1, $lat; max: $rps req/s, peak $(mib $pid VmHWM)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
