#!/usr/bin/env bash
# Benchmark: user-space instructions per proxied request, counted by valgrind's callgrind — a figure the
# noisy 2-core VM cannot blur (wall-clock throughput moves ±20 % between runs; instruction counts repeat to
# within 0.1 %). Sextant's proxy (Istio metrics on, access log and tracing off) forwards GET / to an nginx
# upstream serving 1 KiB; after 300 warm-up requests, N requests on one keep-alive connection are counted.
# Kernel time is not included (callgrind sees user space only). With TELEMETRY=1 the proxy also writes Istio's
# JSON access log to a file and traces 100 % of requests, exported over OTLP/gRPC to a sink `sextant collector`
# (not counted): the instructions of every proxy thread are counted, so span encoding, the gRPC client and the
# access-log writer are in the figure. TELEMETRY=file (Istio's JSON access log to a file, no tracing) and
# TELEMETRY=fluentd (the same record sent by `envoyFluentdAccessLog` to the sink's Fluentd forward input, no
# tracing) and TELEMETRY=otel (Istio's text line as an OTLP log record, `envoyOtelAls`, to the sink) measure
# the access-log sinks alone.
# Usage: [TELEMETRY=1|file|fluentd|otel] bench/proxy_instructions.sh [N] [BINARY...]   (default: N=2000 and the deployment build)
#   Several binaries are measured in turn, for an A/B: bench/proxy_instructions.sh 2000 /tmp/old /tmp/new
#   CALLGRIND_OUT=DIR keeps the callgrind profile(s) there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-2000}"; shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$(bench/release-build.sh)")
. bench/proxy_setup.sh
proxy_bench_deps valgrind:valgrind nginx:nginx-light
up="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"; sinkff="$(free_port)"
proxy_bench_files
nginx -c "$tmp/upstream.conf" -p "$tmp" >/dev/null 2>&1 & pids+=($!)
configs=(--config "$tmp/mesh.yaml")
case "${TELEMETRY:-0}" in
  0) ;;
  1) configs+=(--config "$tmp/telemetry.yaml") ;;
  file) configs+=(--config "$tmp/log-file.yaml") ;;
  fluentd) configs+=(--config "$tmp/log-fluentd.yaml") ;;
  otel) configs+=(--config "$tmp/log-otel.yaml") ;;
  *) echo "TELEMETRY must be 0, 1, file, fluentd or otel" >&2; exit 2 ;;
esac
if [ "${TELEMETRY:-0}" != 0 ]; then
  "${bins[0]}" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
fi

for bin in "${bins[@]}"; do
  # Valgrind 3.19 cannot read the DWARF 5 that Swift emits: measure a copy without debug info.
  strip --strip-debug -o "$tmp/sextant" "$bin"
  sx="$(free_port)"; admin="$(free_port)"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" "$tmp/sextant" proxy \
    "${configs[@]}" --listen "127.0.0.1:$sx" --admin "127.0.0.1:$admin" --workload bench --concurrency 1 \
    --log-level warning 2>"$tmp/valgrind.err" & vg=$!
  for _ in $(seq 240); do curl -sf -o /dev/null "http://127.0.0.1:$admin/ready" && break; sleep 0.5; done
  "$py" "$tmp/client.py" "$sx" 300
  # The warm-up's spans and log records leave (within a second) before counting starts: the first export
  # opens the connection and pays one-time costs (type metadata, HPACK tables) that are not per request.
  [ "${TELEMETRY:-0}" != 0 ] && sleep 2.5
  callgrind_control -i on "$vg" >/dev/null
  "$py" "$tmp/client.py" "$sx" "$n"
  # Let the last spans and log lines leave (the batcher flushes within a second).
  [ "${TELEMETRY:-0}" != 0 ] && sleep 3
  callgrind_control -i off "$vg" >/dev/null
  callgrind_control -d "$vg" >/dev/null
  sleep 1
  kill "$vg"; wait "$vg" 2>/dev/null || true
  total="$(cat "$tmp"/cg.out* | awk '/^(summary|totals):/ {s += $2} END {printf "%.0f\n", s}')"
  echo "$bin instructions/request $((total / n))"
  # CALLGRIND_OUT=DIR keeps the profile for callgrind_annotate.
  if [ -n "${CALLGRIND_OUT:-}" ]; then mkdir -p "$CALLGRIND_OUT"; cp "$tmp"/cg.out* "$CALLGRIND_OUT"/; fi
  rm -f "$tmp"/cg.out*
done
