# Sourced by the proxy benchmarks (bench/proxy.sh, proxy_instructions.sh, proxy_rss.sh, link-order.sh).
# Sourcing makes a scratch directory $tmp, a list $pids of processes to stop on exit (with $tmp's removal),
# `proxy_bench_deps CMD:PACKAGE...` (installs the Debian packages of missing commands, stops the services
# Debian starts on install, makes the interop venv and sets $py to its Python) and `free_port` (needs $py).
# `proxy_bench_files` then writes into $tmp the files the benchmarks use, for the ports in $up (the nginx
# upstream), $sink and $sinktel (the sink collector's OTLP/gRPC and self-telemetry ports):
#   1k               the 1 KiB response body;
#   upstream.conf    nginx, one worker, serving it on 127.0.0.1:$up with keep-alive;
#   nginx.conf       (when $ngx is set) nginx proxying 127.0.0.1:$ngx to the upstream, keep-alive both ways;
#   mesh.yaml        a ServiceEntry `upstream.default.svc.cluster.local` → 127.0.0.1:$up;
#   telemetry.yaml   full telemetry: Istio's JSON access log to $tmp/access.log, 100 % tracing over OTLP/gRPC;
#   log-file.yaml    the JSON access log alone; log-fluentd.yaml its record to the sink's forward input alone;
#                    log-otel.yaml Istio's text line as an OTLP log record to the sink (envoyOtelAls) alone;
#   sink.yaml        a `sextant collector` that accepts the spans (and, on $sinkff, a free port unless set,
#                    Fluentd forward records) and discards them;
#   client.py        `$py client.py PORT N [POST_EVERY]`: N requests on one keep-alive connection, every
#                    POST_EVERY-th a POST with a 512-byte body (answered 405 by the upstream), the others GETs
#                    that must answer 200.
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
proxy_bench_deps() {
  local missing=() x
  for x in "$@"; do command -v "${x%%:*}" >/dev/null || missing+=("${x#*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  (command -v systemctl >/dev/null && systemctl stop nginx haproxy) >/dev/null 2>&1 || true
  scripts/python-env.sh
  py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
}
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An IstioOperator document (stdout) whose meshConfig is stdin, indented under it.
mesh_config() {
  printf 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: {name: telemetry, namespace: istio-system}\nspec:\n  meshConfig:\n'
  sed 's/^/    /'
}

proxy_bench_files() {
  sinkff="${sinkff:-$(free_port)}"  # the sink's Fluentd forward input
  head -c 1024 /dev/zero | tr '\0' 'x' > "$tmp/1k"
  chmod 755 "$tmp"; chmod 644 "$tmp/1k"  # nginx workers run as an unprivileged user
  cat > "$tmp/upstream.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/up.pid; error_log $tmp/up.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { root $tmp; try_files /1k =404; default_type text/plain; } } }
CONF
  # nginx as the proxy compared against, when the caller chose its port ($ngx).
  if [ -n "${ngx:-}" ]; then
    cat > "$tmp/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/ngx.pid; error_log $tmp/ngx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$ngx;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
  fi
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
  mesh_config > "$tmp/telemetry.yaml" <<YAML
accessLogFile: $tmp/access.log
accessLogEncoding: JSON
enableTracing: true
defaultConfig: {tracing: {sampling: 100}}
extensionProviders:
- name: otel
  opentelemetry: {service: 127.0.0.1, port: $sink}
defaultProviders: {tracing: [otel]}
YAML
  cat > "$tmp/client.py" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
post_every = int(sys.argv[3]) if len(sys.argv) > 3 else 0
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    if post_every and i % post_every == post_every - 1:
        c.request("POST", "/submit", body=b"x" * 512, headers={"Host": "upstream:80", "Content-Type": "text/plain"})
        c.getresponse().read()
        continue
    c.request("GET", "/", headers={"Host": "upstream:80"})
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
  cat > "$tmp/sink.yaml" <<YAML
receivers:
  otlp: {protocols: {grpc: {endpoint: 127.0.0.1:$sink}}}
  fluentforward: {endpoint: 127.0.0.1:$sinkff}
exporters:
  nop: {}
service:
  telemetry: {metrics: {address: 127.0.0.1:$sinktel}}
  pipelines:
    traces: {receivers: [otlp], exporters: [nop]}
    logs: {receivers: [otlp, fluentforward], exporters: [nop]}
YAML
  # Access logs alone: Istio's JSON line to a file, or the same record straight to the sink's Fluentd forward input.
  mesh_config > "$tmp/log-file.yaml" <<YAML
{accessLogFile: $tmp/access.log, accessLogEncoding: JSON, enableTracing: false}
YAML
  mesh_config > "$tmp/log-fluentd.yaml" <<YAML
enableTracing: false
extensionProviders:
- name: fluentd
  envoyFluentdAccessLog: {service: 127.0.0.1, port: $sinkff, tag: istio.access}
defaultProviders: {accessLogging: [fluentd]}
YAML
  mesh_config > "$tmp/log-otel.yaml" <<YAML
enableTracing: false
extensionProviders:
- name: otel-als
  envoyOtelAls: {service: 127.0.0.1, port: $sink}
defaultProviders: {accessLogging: [otel-als]}
YAML
}
