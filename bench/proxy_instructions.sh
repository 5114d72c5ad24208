#!/usr/bin/env bash
# Benchmark: user-space instructions per proxied request, counted by valgrind's callgrind — a figure the
# noisy 2-core VM cannot blur (wall-clock throughput moves ±20 % between runs; instruction counts repeat to
# within 0.1 %). Sextant's proxy (Istio metrics on, access log and tracing off) forwards GET / to an nginx
# upstream serving 1 KiB; after 300 warm-up requests, N requests on one keep-alive connection are counted.
# Kernel time is not included (callgrind sees user space only). With TELEMETRY=1 the proxy also writes Istio's
# JSON access log to a file and traces 100 % of requests, exported over OTLP/gRPC to a sink `sextant collector`
# (not counted): the instructions of every proxy thread are counted, so span encoding, the gRPC client and the
# access-log writer are in the figure.
# Usage: [TELEMETRY=1] bench/proxy_instructions.sh [N] [BINARY...]   (default: N=2000 and the deployment build)
#   Several binaries are measured in turn, for an A/B: bench/proxy_instructions.sh 2000 /tmp/old /tmp/new
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-2000}"; shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$(bench/release-build.sh)")
need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
scripts/python-env.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

up="$(free_port)"
head -c 1024 /dev/zero | tr '\0' 'x' > "$tmp/1k"
chmod 755 "$tmp"; chmod 644 "$tmp/1k"
cat > "$tmp/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/up.pid; error_log $tmp/up.err;
events { worker_connections 256; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { root $tmp; try_files /1k =404; default_type text/plain; } } }
CONF
cat > "$tmp/mesh.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: upstream, namespace: default}
spec:
  hosts: [upstream.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: $up}}]
YAML
cat > "$tmp/client.py" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/", headers={"Host": "upstream:80"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
nginx -c "$tmp/upstream.conf" -p "$tmp" >/dev/null 2>&1 & pids+=($!)
configs=(--config "$tmp/mesh.yaml")
if [ "${TELEMETRY:-0}" = 1 ]; then
  sink="$(free_port)"; sinktel="$(free_port)"
  cat > "$tmp/telemetry.yaml" <<YAML
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: telemetry, namespace: istio-system}
spec:
  meshConfig:
    accessLogFile: $tmp/access.log
    accessLogEncoding: JSON
    enableTracing: true
    defaultConfig: {tracing: {sampling: 100}}
    extensionProviders:
    - name: otel
      opentelemetry: {service: 127.0.0.1, port: $sink}
    defaultProviders: {tracing: [otel]}
YAML
  cat > "$tmp/sink.yaml" <<YAML
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$sink}}}
exporters:
  nop: {}
service:
  telemetry: {metrics: {address: 127.0.0.1:$sinktel}}
  pipelines:
    traces: {receivers: [otlp], exporters: [nop]}
YAML
  "${bins[0]}" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
  configs+=(--config "$tmp/telemetry.yaml")
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
  callgrind_control -i on "$vg" >/dev/null
  "$py" "$tmp/client.py" "$sx" "$n"
  # Let the last spans and log lines leave (the batcher flushes within a second).
  [ "${TELEMETRY:-0}" = 1 ] && sleep 3
  callgrind_control -i off "$vg" >/dev/null
  callgrind_control -d "$vg" >/dev/null
  sleep 1
  kill "$vg"; wait "$vg" 2>/dev/null || true
  total="$(cat "$tmp"/cg.out* | awk '/^(summary|totals):/ {s += $2} END {printf "%.0f\n", s}')"
  echo "$bin instructions/request $((total / n))"
  rm -f "$tmp"/cg.out*
done
