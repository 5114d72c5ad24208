#!/usr/bin/env bash
# Benchmark: enqueue throughput of the persistent sending queue (issue 8), release build.
#   OTLP/HTTP protobuf (100- and 1000-span requests, wrk on core 1) → otlphttp exporter whose backend
#   is down, so every accepted request stays in the queue; the collector is pinned to core 0. Each
#   request is acknowledged only after its batch is written (and fsynced with fsync: true).
#   Reports accepted spans/s (the receiver's accepted counter), queue bytes and peak RSS, with
#   fsync on and off.
# Usage: bench/persistent_queue.sh [seconds]   (results go to stdout; copy them into BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-10}"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
scripts/python-env.sh >/dev/null
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
bin="${SEXTANT_BIN:-$(bench/release-build.sh)}"

tmp="$(mktemp -d)"
collector_pid=""
cleanup() { [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$py" bench/gen_payload.py "$tmp/p1000.binpb" 1000
"$py" bench/gen_payload.py "$tmp/p100.binpb" 100

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_collector() {  # fsync
  port="$(free_port)"; tport="$(free_port)"; dead="$(free_port)"
  rm -rf "$tmp/queue"
  cat > "$tmp/c.yaml" <<YAML
extensions:
  file_storage/q: {directory: $tmp/queue, fsync: $1, max_size: 8GiB}
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:$port}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:$dead
    retry_on_failure: {initial_interval: 10m, max_interval: 10m, max_elapsed_time: 0s}
    sending_queue: {storage: file_storage/q}
service:
  extensions: [file_storage/q]
  telemetry: {metrics: {address: 127.0.0.1:$tport}}
  pipelines:
    traces: {receivers: [otlp], exporters: [otlphttp]}
YAML
  taskset -c 0 "$bin" collector --config "$tmp/c.yaml" --log-level error &
  collector_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$tport/readyz" >/dev/null && return; sleep 0.1; done
  echo "collector did not become ready" >&2; exit 1
}

metric() { curl -s "http://127.0.0.1:$tport/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $2} END {printf "%.0f", s}'; }
stop_collector() { kill -TERM "$collector_pid"; wait "$collector_pid" || true; collector_pid=""; }

echo "machine: $(nproc) cores, $(uname -r); disk: $(df -h "$tmp" | awk 'NR==2 {print $1}')"
for fsync in true false; do
  for spans in 100 1000; do
    for conns in 4 16; do
      start_collector "$fsync"
      t0="$(date +%s.%N)"
      PAYLOAD="$tmp/p$spans.binpb" taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -s bench/post.lua "http://127.0.0.1:$port/v1/traces" > "$tmp/wrk.txt"
      t1="$(date +%s.%N)"
      accepted="$(metric 'sextant_receiver_accepted_items_total{receiver="otlp"')"
      refused="$(metric 'sextant_receiver_refused_items_total{receiver="otlp"')"
      bytes="$(metric 'sextant_exporter_queue_size{exporter="otlphttp"')"
      p99="$(awk '/Latency/ {print $2}' "$tmp/wrk.txt")"
      hwm="$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$collector_pid/status")"
      awk -v f="$fsync" -v s="$spans" -v c="$conns" -v a="$accepted" -v r="$refused" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v l="$p99" -v m="$hwm" \
        'BEGIN { printf "fsync %-5s %4d-span requests, %2d conns: %8.0f spans/s accepted (%.0f req/s), refused %d, queue %.0f MiB, mean latency %s, peak RSS %d MiB\n", f, s, c, a/(t1-t0), a/s/(t1-t0), r, b/1048576, l, m }'
      stop_collector
    done
  done
done
