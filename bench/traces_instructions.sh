#!/usr/bin/env bash
# Benchmark: user-space instructions per request of a trace pipeline, counted by valgrind's callgrind, and
# system calls per request counted by strace — figures the noisy 2-core VM cannot blur, where the CPU % of
# bench/traces_pipelines.sh moves by ±15 % between runs of one binary. The pipeline is that script's steady
# case: SCENARIO (otlp-grpc: OTLP/gRPC → batch → otlp exporter, compression none; zipkin-json: Zipkin JSON →
# batch → zipkin exporter) into a sink collector, 100-span requests from bench/load.py at RATE per second.
# After a warm-up, N requests are counted: every thread of the collector under test (receiver, batching,
# export). Kernel time is not included in the instructions. Under valgrind the collector runs ~50× slower,
# so its 200 ms batches hold fewer spans than at full speed; the export's per-span cost is the same, its
# per-call cost is spread over fewer spans.
# Usage: bench/traces_instructions.sh SCENARIO [N] [BINARY...]   (default N=200, the deployment build)
#        RATE=requests/s (default 20); several binaries are measured in turn, for an A/B;
#        CALLGRIND_OUT=DIR keeps the callgrind profile(s) there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scenario="$1"; shift
n="${1:-200}"; shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$(bench/release-build.sh)")
rate="${RATE:-20}"
scripts/python-env.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
command -v valgrind >/dev/null && command -v strace >/dev/null || {
  echo "needs valgrind and strace (apt-get install valgrind strace)" >&2; exit 1; }
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/p100"
"$py" bench/gen_payloads.py "$tmp/p100" 100
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.2; done; echo "not ready" >&2; exit 1; }
secs=$(( (n + rate - 1) / rate ))

for bin in "${bins[@]}"; do
  sink_port=$(free_port); in_port=$(free_port); t1=$(free_port); t2=$(free_port)
  case "$scenario" in
    otlp-grpc)
      sink_recv="otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$sink_port}}}"; rid=otlp
      recv="otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$in_port}}}"
      exp="otlp: {endpoint: 127.0.0.1:$sink_port, tls: {insecure: true}, compression: none}"; eid=otlp
      mode=grpc; target="127.0.0.1:$in_port"; file=otlp.binpb ;;
    zipkin-json)
      sink_recv="zipkin: {endpoint: 127.0.0.1:$sink_port}"; rid=zipkin
      recv="zipkin: {endpoint: 127.0.0.1:$in_port}"
      exp="zipkin: {endpoint: http://127.0.0.1:$sink_port/api/v2/spans, format: json}"; eid=zipkin
      mode=http; target="http://127.0.0.1:$in_port/api/v2/spans"; file=zipkin.json ;;
    *) echo "unknown scenario $scenario" >&2; exit 1 ;;
  esac
  printf 'receivers:\n  %s\nexporters:\n  nop:\nservice:\n  telemetry: {metrics: {address: 127.0.0.1:%s}}\n  pipelines:\n    traces: {receivers: [%s], exporters: [nop]}\n' \
    "$sink_recv" "$t2" "$rid" > "$tmp/sink.yaml"
  printf 'receivers:\n  %s\nprocessors:\n  batch: {}\nexporters:\n  %s\nservice:\n  telemetry: {metrics: {address: 127.0.0.1:%s}}\n  pipelines:\n    traces: {receivers: [%s], processors: [batch], exporters: [%s]}\n' \
    "$recv" "$exp" "$t1" "$rid" "$eid" > "$tmp/a.yaml"
  "$bin" collector --config "$tmp/sink.yaml" --log-level error & sink_pid=$!; pids+=("$sink_pid")
  wait_ready "$t2"

  # Instructions: valgrind 3.19 cannot read the DWARF 5 that Swift emits, so measure a copy without debug info.
  strip --strip-debug -o "$tmp/sextant" "$bin"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" "$tmp/sextant" collector \
    --config "$tmp/a.yaml" --log-level error 2>"$tmp/valgrind.err" & vg=$!; pids+=("$vg")
  wait_ready "$t1"
  "$py" bench/load.py "$mode" "$target" "$tmp/p100/$file" --rate "$rate" --threads 2 --duration 3 >/dev/null
  callgrind_control -i on "$vg" >/dev/null
  out=$("$py" bench/load.py "$mode" "$target" "$tmp/p100/$file" --rate "$rate" --threads 2 --duration "$secs")
  sleep 1  # the last batch leaves within the batch timeout
  callgrind_control -i off "$vg" >/dev/null
  callgrind_control -d "$vg" >/dev/null
  sleep 1
  kill "$vg"; wait "$vg" 2>/dev/null || true
  requests=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  total="$(cat "$tmp"/cg.out* | awk '/^(summary|totals):/ {s += $2} END {printf "%.0f\n", s}')"
  # CALLGRIND_OUT=DIR keeps the profile for callgrind_annotate.
  if [ -n "${CALLGRIND_OUT:-}" ]; then mkdir -p "$CALLGRIND_OUT"; cp "$tmp"/cg.out* "$CALLGRIND_OUT"/; fi
  rm -f "$tmp"/cg.out*

  # System calls: the same pipeline at full speed and the steady 100 requests/s, strace -c over 5 s.
  "$bin" collector --config "$tmp/a.yaml" --log-level error & a_pid=$!; pids+=("$a_pid")
  wait_ready "$t1"
  "$py" bench/load.py "$mode" "$target" "$tmp/p100/$file" --rate 100 --threads 2 --duration 8 > "$tmp/load.out" & load=$!
  sleep 2
  timeout 5 strace -c -f -p "$a_pid" -o "$tmp/strace.out" 2>/dev/null || true
  wait "$load"
  calls=$(awk '$NF == "total" {print $4}' "$tmp/strace.out")
  per_syscall=$(awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {printf "%s %s, ", $NF, $4}' "$tmp/strace.out")
  kill "$a_pid" "$sink_pid"; wait "$a_pid" "$sink_pid" 2>/dev/null || true

  echo "$bin $scenario: instructions/request $((total / requests)) over $requests requests; system calls/request $(awk -v c="$calls" 'BEGIN {printf "%.2f", c / 500}') ($per_syscall over 5 s at 100 requests/s)"
done
