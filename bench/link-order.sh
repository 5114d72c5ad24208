#!/usr/bin/env bash
# Regenerates bench/link-order.txt, the function order bench/release-build.sh gives lld
# (`--symbol-ordering-file`), from runs under valgrind's callgrind:
#  1. the functions a proxied request runs once the proxy is warm (Istio metrics, JSON access log, spans
#     exported over OTLP/gRPC; GETs and POSTs), in the order they first ran: the code every request touches;
#  2. then every other function `sextant proxy` ran: start-up, config load, the warm-up, the admin endpoints;
#  3. then every function the collector's trace pipelines run.
# Linked first and together, most of the request path's code fills ~0.6 MB instead of being spread over the 33 MB
# `.text` (BENCHMARKS.md, "Link order" and "Function sections"). That needs every function in its own section
# (release-build.sh compiles with `-function-sections`): lld orders sections.
# Names defined more than once in the binary (local helpers such as `$sSqwxx` or `objectdestroyTm`, which
# many objects carry) are left out: lld would move every section holding one, and the Swift runtime's static
# libraries are not compiled with function sections, so one such name pulled whole 0.4-1.6 MB blocks
# (`_RegexParser`, `_StringProcessing`, `JSONDecoder`) in among the hot code.
# Names that no longer exist after a code change are skipped by the linker, so a stale list only orders less;
# rerun this after changes to the proxy's request path or the trace codecs.
# Usage: bench/link-order.sh [BINARY]   (default: the deployment build, bench/release-build.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-$(bench/release-build.sh)}"
. bench/proxy_setup.sh
proxy_bench_deps valgrind:valgrind nginx:nginx-light
up="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"
proxy_bench_files
nginx -c "$tmp/upstream.conf" -p "$tmp" >/dev/null 2>&1 & pids+=($!)
"$bin" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
# Valgrind 3.19 cannot read the DWARF 5 that Swift emits: run a copy without debug info.
strip --strip-debug -o "$tmp/sextant" "$bin"
sx="$(free_port)"; admin="$(free_port)"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$tmp/cg.out" "$tmp/sextant" proxy \
  --config "$tmp/mesh.yaml" --config "$tmp/telemetry.yaml" --listen "127.0.0.1:$sx" --admin "127.0.0.1:$admin" \
  --workload bench --concurrency 1 --log-level warning 2>"$tmp/valgrind.err" & vg=$!
for _ in $(seq 240); do curl -sf -o /dev/null "http://127.0.0.1:$admin/ready" && break; sleep 0.5; done
"$py" "$tmp/client.py" "$sx" 300 10
sleep 2.5  # the warm-up's spans leave: the first export opens the connection
# Each dump holds the calls since the last one: cg.out.1 start-up and warm-up, cg.out.2 the warm request path.
callgrind_control -d "$vg" >/dev/null
"$py" "$tmp/client.py" "$sx" 1500 10
sleep 3  # the batcher's flushes and the access log's writes are part of every request's cost
callgrind_control -d "$vg" >/dev/null
curl -sf -o /dev/null "http://127.0.0.1:$admin/stats/prometheus"
curl -sf -o /dev/null "http://127.0.0.1:$admin/config_dump"
sleep 3  # the last spans and log lines leave
kill -INT "$vg"; wait "$vg" 2>/dev/null || true

# Then the collector's trace pipelines as bench/traces_pipelines.sh runs them (OTLP/gRPC, Zipkin JSON and
# Jaeger UDP compact in, batch, out over OTLP/gRPC, Zipkin JSON and Jaeger thrift to a sink collector), so
# their code is packed too, after the proxy's.
mkdir -p "$tmp/payload"
"$py" bench/gen_payloads.py "$tmp/payload" 100
otlp_sink="$(free_port)"; zipkin_sink="$(free_port)"; jaeger_sink="$(free_port)"; sink2tel="$(free_port)"
grpc_in="$(free_port)"; zipkin_in="$(free_port)"; jaeger_in="$(free_port)"; coltel="$(free_port)"
cat > "$tmp/sink2.yaml" <<YAML
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$otlp_sink}}}
  zipkin: {endpoint: 127.0.0.1:$zipkin_sink}
  jaeger: {protocols: {thrift_http: {endpoint: 127.0.0.1:$jaeger_sink}}}
exporters:
  nop: {}
service:
  telemetry: {metrics: {address: 127.0.0.1:$sink2tel}}
  pipelines:
    traces: {receivers: [otlp, zipkin, jaeger], exporters: [nop]}
YAML
cat > "$tmp/collector.yaml" <<YAML
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$grpc_in}}}
  zipkin: {endpoint: 127.0.0.1:$zipkin_in}
  jaeger: {protocols: {thrift_compact: {endpoint: 127.0.0.1:$jaeger_in}}}
processors:
  batch: {}
exporters:
  otlp: {endpoint: 127.0.0.1:$otlp_sink, tls: {insecure: true}}
  zipkin: {endpoint: http://127.0.0.1:$zipkin_sink/api/v2/spans, format: json}
  jaeger_thrift: {endpoint: http://127.0.0.1:$jaeger_sink/api/traces}
service:
  telemetry: {metrics: {address: 127.0.0.1:$coltel}}
  pipelines:
    traces/otlp: {receivers: [otlp], processors: [batch], exporters: [otlp]}
    traces/zipkin: {receivers: [zipkin], processors: [batch], exporters: [zipkin]}
    traces/jaeger: {receivers: [jaeger], processors: [batch], exporters: [jaeger_thrift]}
YAML
"$bin" collector --config "$tmp/sink2.yaml" --log-level warning & pids+=($!)
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$tmp/cg-collector.out" "$tmp/sextant" collector \
  --config "$tmp/collector.yaml" --log-level warning 2>"$tmp/valgrind-collector.err" & vg=$!
for _ in $(seq 240); do curl -sf -o /dev/null "http://127.0.0.1:$coltel/readyz" && break; sleep 0.5; done
"$py" bench/load.py grpc "127.0.0.1:$grpc_in" "$tmp/payload/otlp.binpb" --rate 10 --threads 1 --duration 10 >/dev/null & l1=$!
"$py" bench/load.py http "http://127.0.0.1:$zipkin_in/api/v2/spans" "$tmp/payload/zipkin.json" --rate 10 --threads 1 --duration 10 >/dev/null & l2=$!
"$py" bench/load.py udp "127.0.0.1:$jaeger_in" "$tmp/payload/jaeger-compact.bin" --rate 10 --threads 1 --duration 10 >/dev/null & l3=$!
wait "$l1" "$l2" "$l3"
curl -sf -o /dev/null "http://127.0.0.1:$coltel/metrics"
sleep 3  # the last batches leave
kill -INT "$vg"; wait "$vg" 2>/dev/null || true

# Callgrind names a function on its first `fn=` or `cfn=` line of each dump; keep the binary's own text
# symbols that have one definition.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {n[$3]++} END {for (s in n) if (n[s] == 1) print s}' > "$tmp/text.txt"
cat "$tmp/cg.out.2" "$tmp/cg.out.1" "$tmp/cg.out" "$tmp/cg-collector.out" | grep -oE '^c?fn=\([0-9]+\) .*' \
  | sed -E 's/^c?fn=\([0-9]+\) //' | awk '!seen[$0]++' > "$tmp/run.txt"
awk 'NR == FNR {text[$0] = 1; next} ($0 in text)' "$tmp/text.txt" "$tmp/run.txt" > bench/link-order.txt
echo "bench/link-order.txt: $(wc -l < bench/link-order.txt) functions" >&2
