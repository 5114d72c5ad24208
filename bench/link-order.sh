#!/usr/bin/env bash
# Regenerates bench/link-order.txt, the function order bench/release-build.sh gives lld
# (`--symbol-ordering-file`): every function of the binary that `sextant proxy` runs — start-up, config
# load, the request path with Istio metrics, JSON access log and spans exported over OTLP/gRPC, the admin
# endpoints — and then every function the collector's trace pipelines run, found by running the proxy and
# a collector under valgrind's callgrind (listed in callgrind's order; only which functions go together
# matters, not their order).
# Linked first and together, that code fills about 2 MB of pages instead of being spread over the 33 MB
# `.text`, where the kernel's fault-around maps 64 kB around every function touched (BENCHMARKS.md, "Link
# order"). Names that no longer exist after a code change are skipped by the linker, so a stale list only
# orders less; rerun this after changes to the proxy's request path or the trace codecs.
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
"$py" "$tmp/client.py" "$sx" 1500 10
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

# Callgrind names a function on its first `fn=` or `cfn=` line; keep the binary's own text symbols.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$tmp/text.txt"
cat "$tmp/cg.out" "$tmp/cg-collector.out" | grep -oE '^c?fn=\([0-9]+\) .*' | sed -E 's/^c?fn=\([0-9]+\) //' \
  | awk '!seen[$0]++' > "$tmp/run.txt"
awk 'NR == FNR {text[$0] = 1; next} ($0 in text)' "$tmp/text.txt" "$tmp/run.txt" > bench/link-order.txt
echo "bench/link-order.txt: $(wc -l < bench/link-order.txt) functions" >&2
