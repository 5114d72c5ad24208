#!/usr/bin/env bash
# Benchmark: where nginx's and sextant's CPU goes, kernel against user space, at 1000 req/s each. nginx proxying
# and `sextant proxy` with full telemetry (Istio's JSON access log to a file, 100 % tracing over OTLP/gRPC to a
# sink `sextant collector` on core 1) run on core 0, in front of the bench upstream (bench/proxy_setup.sh, nginx
# on core 1), and are loaded together (bench/latency.py, 16 connections each) so that the machine's drift hits
# both alike. Each process is recorded with `perf record -e cpu-clock` and counted with `perf stat` for SECONDS;
# the script prints perf stat's task-clock, context switches and page faults, the samples per DSO, and the kernel
# functions whose samples differ most between the two.
# Usage: bench/proxy_perf_vs_nginx.sh [SECONDS=10] [BINARY]   (default: the deployment build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-10}"
bin="${2:-$(bench/release-build.sh)}"
. bench/proxy_setup.sh
proxy_bench_deps nginx:nginx-light perf:linux-perf
up="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"; ngx="$(free_port)"; sx="$(free_port)"; admin="$(free_port)"
proxy_bench_files
taskset -c 1 nginx -c "$tmp/upstream.conf" -p "$tmp" & pids+=($!)
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)
taskset -c 1 "$bin" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
taskset -c 0 "$bin" proxy --config "$tmp/mesh.yaml" --config "$tmp/telemetry.yaml" --listen "127.0.0.1:$sx" \
  --admin "127.0.0.1:$admin" --workload bench --concurrency 1 --log-level warning & pids+=($!); sx_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null && break; sleep 0.1; done
sleep 0.5
ngx_pid="$(cat "$tmp/ngx.pid")"
ngx_pid="$(pgrep -P "$ngx_pid" | head -1)"  # the worker
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "# nginx worker $ngx_pid and sextant $sx_pid at 1000 req/s each for ${secs}s"
load() { taskset -c 1 "$py" bench/latency.py --port "$1" --host upstream:80 --rate 1000 --seconds "$2"; }
load "$ngx" 2 >/dev/null & w=$!
load "$sx" 2 >/dev/null
wait "$w"
rec=()
for n in nginx:"$ngx_pid" sextant:"$sx_pid"; do
  perf record -q -F 4999 -e cpu-clock -p "${n#*:}" -o "$tmp/${n%%:*}.data" -- sleep "$secs" >/dev/null 2>&1 & rec+=($!)
  perf stat -e task-clock,context-switches,page-faults -p "${n#*:}" -o "$tmp/${n%%:*}.stat" -- sleep "$secs" & rec+=($!)
done
load "$ngx" "$secs" > "$tmp/nginx.json" & w=$!
load "$sx" "$secs" > "$tmp/sextant.json"
wait "$w" "${rec[@]}" || true
for n in nginx sextant; do
  echo "== $n: $(cat "$tmp/$n.json")"
  grep -E 'task-clock|context-switches|page-faults' "$tmp/$n.stat"
  perf report -i "$tmp/$n.data" --no-children --sort dso -q -F sample,dso 2>/dev/null | head -5
done
echo "== kernel functions, samples: nginx, sextant, difference"
for n in nginx sextant; do
  perf report -i "$tmp/$n.data" --no-children --sort sym -q -F sample,sym 2>/dev/null | awk '$2 == "[k]" {print $1, $3}' > "$tmp/$n.k"
done
awk 'FNR == NR {a[$2] = $1; next} {b[$2] = $1} END {for (k in b) d[k] = b[k] - a[k]; for (k in a) if (!(k in b)) d[k] = -a[k];
  for (k in d) printf "%6d %6d %6d %s\n", a[k], b[k], d[k], k}' "$tmp/nginx.k" "$tmp/sextant.k" | sort -k3,3nr | head -12
