#!/usr/bin/env bash
# Benchmark: OTLP/HTTP protobuf ingest → batch → file exporter (OTLP JSON lines), release build.
#   1. peak spans/s with the collector pinned to one core (wrk on the other core);
#   2. CPU % of one core and RSS at a steady 10k spans/s (100 requests/s × 100 spans, as the
#      OpenTelemetry Collector's load tests send).
# Usage: bench/otlp_http_ingest.sh [seconds]   (results go to stdout; copy them into BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-15}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || true
scripts/python-env.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
bin="${SEXTANT_BIN:-$(bench/release-build.sh)}"

tmp="$(mktemp -d)"
collector_pid=""
cleanup() { [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$py" bench/gen_payload.py "$tmp/p1000.binpb" 1000
"$py" bench/gen_payload.py "$tmp/p100.binpb" 100

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_collector() {  # [format]
  format="${1:-json}"
  port="$(free_port)"; tport="$(free_port)"
  rm -rf "$tmp/out"
  cat > "$tmp/c.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:$port}
processors:
  batch: {}
exporters:
  file:
    path: $tmp/out/traces.$format
    format: $format
    rotation: {max_megabytes: 200, max_backups: 1}
service:
  telemetry: {metrics: {address: 127.0.0.1:$tport}}
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [file]}
YAML
  taskset -c 0 "$bin" collector --config "$tmp/c.yaml" --log-level warning &
  collector_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$tport/readyz" >/dev/null && return; sleep 0.1; done
  echo "collector did not become ready" >&2; exit 1
}

sent() { curl -s "http://127.0.0.1:$tport/metrics" | awk '/^sextant_exporter_sent_items_total\{exporter="file",signal="traces"\}/ {print $2}'; }
stop_collector() { kill -TERM "$collector_pid"; wait "$collector_pid" || true; collector_pid=""; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "cpu: $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //')"

echo "== 1. peak: 1000-span requests, wrk -t1 -c4 -d${secs}s, collector on core 0"
start_collector
PAYLOAD="$tmp/p1000.binpb" taskset -c 1 wrk -t1 -c4 -d2s -s bench/post.lua "http://127.0.0.1:$port/v1/traces" >/dev/null
before="$(sent)"; t0="$(date +%s.%N)"
PAYLOAD="$tmp/p1000.binpb" taskset -c 1 wrk -t1 -c4 -d"${secs}s" -s bench/post.lua "http://127.0.0.1:$port/v1/traces" | tee "$tmp/wrk.txt" | grep -E "Requests/sec|Non-2xx|Latency" || true
sleep 1; after="$(sent)"; t1="$(date +%s.%N)"
awk -v a="$after" -v b="$before" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "exported spans/s (file exporter sent counter): %.0f\n", (a-b)/(t1-t0) }'
grep -E "VmHWM" "/proc/$collector_pid/status" | awk '{printf "peak RSS: %.1f MiB\n", $2/1024}'
stop_collector

for format in json proto; do
  echo "== 2. steady 10k spans/s (100 req/s × 100 spans) for ${secs}s, file format $format"
  start_collector "$format"
  "$py" bench/steady.py "http://127.0.0.1:$port/v1/traces" "$tmp/p100.binpb" 100 "$secs" "$collector_pid"
  stop_collector
done
echo "== 3. steady 10k spans/s as 10 req/s × 1000 spans, file format json"
start_collector json
"$py" bench/steady.py "http://127.0.0.1:$port/v1/traces" "$tmp/p1000.binpb" 10 "$secs" "$collector_pid"
stop_collector
echo "== 4. baseline: an empty request to an unknown path at 100 req/s (per-request HTTP cost), vs nginx"
start_collector json
printf '' > "$tmp/empty"
"$py" bench/steady.py "http://127.0.0.1:$port/v1/unknown" "$tmp/empty" 100 "$secs" "$collector_pid" || true
stop_collector
if command -v nginx >/dev/null; then
  nport="$(free_port)"
  printf 'worker_processes 1;\ndaemon off;\npid %s/nginx.pid;\nerror_log %s/nginx.err;\nevents { worker_connections 64; }\nhttp { access_log off; server { listen 127.0.0.1:%s; location / { return 404; } } }\n' "$tmp" "$tmp" "$nport" > "$tmp/nginx.conf"
  taskset -c 0 nginx -c "$tmp/nginx.conf" & sleep 1
  "$py" bench/steady.py "http://127.0.0.1:$nport/v1/unknown" "$tmp/empty" 100 "$secs" "$(pgrep -f 'nginx: worker' | head -1)" || true
  kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
fi
