#!/usr/bin/env bash
# Benchmark: trace pipelines of the traces issue, release build, collector under test pinned to core 0
# (the sink collector and the Python load driver share core 1):
#   otlp-grpc:   OTLP/gRPC → batch → otlp exporter (gRPC)      → sink (otlp → nop)
#   jaeger-udp:  Jaeger UDP compact → batch → jaeger_thrift      → sink (jaeger thrift_http → nop)
#   zipkin-json: Zipkin JSON → batch → zipkin exporter (JSON)    → sink (zipkin → nop)
# For each: peak spans/s (exporter sent counter of the collector under test), then CPU % of one
# core and RSS at a steady 10k spans/s (100 requests/s × 100 spans).
# Usage: bench/traces_pipelines.sh [seconds] [scenario...]     PHASES="steady" runs one phase only; SEXTANT_BIN=path skips the build;
#        PERF=DIR records a perf profile of the steady phase
#        OTLP_COMPRESSION=none|gzip: the otlp exporter's compression (default none, as the OpenTelemetry
#        Collector's load-test bed configures its OTLP exporter, so the 10k spans/s figures compare with its
#        published ones; gzip, the exporter's own default, adds zlib's deflate of every batch)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-15}"; shift || true
scenarios=("${@:-otlp-grpc jaeger-udp zipkin-json}")
scenarios=(${scenarios[@]})

scripts/python-env.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
if [ -z "${SEXTANT_BIN:-}" ]; then
  SEXTANT_BIN="$(bench/release-build.sh)"
fi
bin="$SEXTANT_BIN"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

mkdir -p "$tmp/p1000" "$tmp/p200" "$tmp/p100"
"$py" bench/gen_payloads.py "$tmp/p1000" 1000
"$py" bench/gen_payloads.py "$tmp/p200" 200
"$py" bench/gen_payloads.py "$tmp/p100" 100
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_collector() {  # core config-file → sets last_pid
  taskset -c "$1" "$bin" collector --config "$2" --log-level error &
  last_pid=$!; pids+=("$last_pid")
}
wait_ready() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done; echo "not ready" >&2; exit 1; }
accepted() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^sextant_receiver_accepted_items_total/ && /signal="traces"/ {s += $2} END {print s+0}'; }
sent() { curl -s "http://127.0.0.1:$1/metrics" | awk -v e="$2" '$1 ~ "^sextant_exporter_sent_items_total\\{exporter=\""e"\",signal=\"traces\"\\}" {print $2}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //')"
for scenario in "${scenarios[@]}"; do
  for phase in ${PHASES:-peak steady}; do
    sink_port=$(free_port); in_port=$(free_port); t1=$(free_port); t2=$(free_port)
    case "$scenario" in
      otlp-grpc)
        sink_recv="otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$sink_port, max_recv_msg_size_mib: 64}}}"
        recv="otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$in_port, max_recv_msg_size_mib: 64}}}"; rid=otlp
        exp="otlp: {endpoint: 127.0.0.1:$sink_port, tls: {insecure: true}, compression: ${OTLP_COMPRESSION:-none}}"; eid=otlp
        mode=grpc; target="127.0.0.1:$in_port"; file=otlp.binpb; big=p1000 ;;
      jaeger-udp)
        sink_recv="jaeger: {protocols: {thrift_http: {endpoint: 127.0.0.1:$sink_port}}}"
        recv="jaeger: {protocols: {thrift_compact: {endpoint: 127.0.0.1:$in_port}}}"; rid=jaeger
        exp="jaeger_thrift: {endpoint: http://127.0.0.1:$sink_port/api/traces}"; eid=jaeger_thrift
        mode=udp; target="127.0.0.1:$in_port"; file=jaeger-compact.bin; big=p200 ;;
      zipkin-json)
        sink_recv="zipkin: {endpoint: 127.0.0.1:$sink_port}"
        recv="zipkin: {endpoint: 127.0.0.1:$in_port}"; rid=zipkin
        exp="zipkin: {endpoint: http://127.0.0.1:$sink_port/api/v2/spans, format: json}"; eid=zipkin
        mode=http; target="http://127.0.0.1:$in_port/api/v2/spans"; file=zipkin.json; big=p1000 ;;
    esac
    printf 'receivers:\n  %s\nexporters:\n  nop:\nservice:\n  telemetry: {metrics: {address: 127.0.0.1:%s}}\n  pipelines:\n    traces: {receivers: [%s], exporters: [nop]}\n' \
      "$sink_recv" "$t2" "$rid" > "$tmp/sink.yaml"
    printf 'receivers:\n  %s\nprocessors:\n  batch: {}\nexporters:\n  %s\nservice:\n  telemetry: {metrics: {address: 127.0.0.1:%s}}\n  pipelines:\n    traces: {receivers: [%s], processors: [batch], exporters: [%s]}\n' \
      "$recv" "$exp" "$t1" "$rid" "$eid" > "$tmp/a.yaml"
    run_collector 1 "$tmp/sink.yaml"; sink_pid=$last_pid; wait_ready "$t2"
    run_collector 0 "$tmp/a.yaml"; a_pid=$last_pid; wait_ready "$t1"
    if [ "$phase" = peak ]; then
      # UDP has no flow control: an unpaced blaster makes the kernel drop datagrams and its softirq
      # work starves both collectors, so UDP's "peak" is a paced 120k spans/s offered (600 × 200).
      threads=4; pace=(--max); [ "$mode" = udp ] && { threads=1; pace=(--rate 600); }
      taskset -c 1 nice -n 10 "$py" bench/load.py "$mode" "$target" "$tmp/$big/$file" "${pace[@]}" --threads "$threads" --duration 2 >/dev/null
      before=$(sent "$t1" "$eid"); acc0=$(accepted "$t1"); s0=$(date +%s.%N)
      # The driver runs niced so the sink collector on the same core keeps up.
      out=$(taskset -c 1 nice -n 10 "$py" bench/load.py "$mode" "$target" "$tmp/$big/$file" "${pace[@]}" --threads "$threads" --duration "$secs" --pid "$a_pid")
      sleep 1; after=$(sent "$t1" "$eid"); acc1=$(accepted "$t1"); s1=$(date +%s.%N)
      echo "$scenario peak: $out"
      awk -v a="$after" -v b="$before" -v c="$acc1" -v d="$acc0" -v t0="$s0" -v t1="$s1" -v s="$scenario" \
        'BEGIN { printf "%s peak: accepted spans/s = %.0f, exported spans/s = %.0f\n", s, (c-d)/(t1-t0), (a-b)/(t1-t0) }'
    else
      # PERF=DIR also records a call-graph profile of the collector under test (DIR/perf-SCENARIO.data).
      perf_pid=
      if [ -n "${PERF:-}" ]; then
        perf record -F 2000 -g -o "$PERF/perf-$scenario.data" -p "$a_pid" -- sleep $((secs - 2)) 2>/dev/null &
        perf_pid=$!
      fi
      out=$(taskset -c 1 "$py" bench/load.py "$mode" "$target" "$tmp/p100/$file" --rate 100 --threads 2 --duration "$secs" --pid "$a_pid")
      [ -n "$perf_pid" ] && wait "$perf_pid"
      label="$scenario"; [ "$scenario" = otlp-grpc ] && label="$scenario (exporter compression ${OTLP_COMPRESSION:-none})"
      echo "$label steady 10k spans/s: $out"
    fi
    kill -TERM "$a_pid" "$sink_pid"; wait "$a_pid" "$sink_pid" 2>/dev/null || true
  done
done
