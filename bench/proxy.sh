#!/usr/bin/env bash
# Benchmark: `sextant proxy` side by side with nginx and haproxy (Debian) as equivalent reverse proxies,
# one worker/thread each, keep-alive to the upstream, 1 KiB responses (the proxy issue's headline).
#   1. max throughput: wrk -t1 -c16 through each proxy, and direct to the upstream;
#   2. latency at a constant 1000 req/s (bench/latency.py, open loop, 16 connections): p50/p90/p99,
#      with the proxy's CPU (vCPU = CPU seconds / wall seconds) and peak RSS.
# Sextant runs twice in the same run: with Istio metrics only ("sextant"), and with full telemetry
# ("sextant+telemetry": metrics, Istio's JSON access log to a file, 100 % of requests traced and sent over
# OTLP/gRPC to a sink collector on core 1 that discards them) — the telemetry issue's overhead figure.
# The proxies run on core 0; the upstream (nginx, 1 worker) and the load generators on core 1.
# Usage: [ROUNDS=3] [LATENCY_SECS=seconds] bench/proxy.sh [seconds]   SEXTANT_BIN=... to use another build (default:
# bench/release-build.sh). LATENCY_SECS (default: seconds) lengthens the latency runs: a p99 over 30 s rests on
# 300 slow requests instead of 100, and moves less between rounds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-10}"
lsecs="${LATENCY_SECS:-$secs}"

. bench/proxy_setup.sh
proxy_bench_deps wrk:wrk nginx:nginx-light haproxy:haproxy
if [ -z "${SEXTANT_BIN:-}" ]; then
  SEXTANT_BIN="$(bench/release-build.sh)"
fi
up="$(free_port)"; ngx="$(free_port)"; hap="$(free_port)"; sx="$(free_port)"; sxadmin="$(free_port)"
sxt="$(free_port)"; sxtadmin="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"
proxy_bench_files
cat > "$tmp/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$hap
  default_backend be
backend be
  server s1 127.0.0.1:$up
EOF

taskset -c 1 nginx -c "$tmp/upstream.conf" -p "$tmp" & pids+=($!)
taskset -c 1 "$SEXTANT_BIN" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!); ngx_pid=$!
taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -q & pids+=($!); hap_pid=$!
taskset -c 0 "$SEXTANT_BIN" proxy --config "$tmp/mesh.yaml" --listen "127.0.0.1:$sx" --admin "127.0.0.1:$sxadmin" \
  --workload bench --concurrency 1 --log-level warning & pids+=($!); sx_pid=$!
taskset -c 0 "$SEXTANT_BIN" proxy --config "$tmp/mesh.yaml" --config "$tmp/telemetry.yaml" --listen "127.0.0.1:$sxt" \
  --admin "127.0.0.1:$sxtadmin" --workload bench --concurrency 1 --log-level warning & pids+=($!); sxt_pid=$!
sleep 1.5
# nginx's master forks the worker that does the work; measure the worker.
ngx_worker="$(pgrep -P "$ngx_pid" | head -1)"

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
# Each measurement runs ROUNDS times, the targets in turn within a round, so that the machine's drift (this
# 2-core VM's throughput moves by a fifth between minutes) hits every target alike; ratios are per round.
rounds="${ROUNDS:-3}"
declare -A rps
echo "# max throughput (wrk -t1 -c16 -d${secs}s, 1 KiB), requests/s; $rounds rounds"
for r in $(seq "$rounds"); do
  line="round $r:"
  for target in "direct:$up" "nginx:$ngx" "haproxy:$hap" "sextant:$sx" "sextant+telemetry:$sxt"; do
    name="${target%%:*}"; port="${target##*:}"
    rps[$name,$r]="$(taskset -c 1 wrk -t1 -c16 -d"${secs}s" -H 'Host: upstream:80' "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')"
    line+=" $name ${rps[$name,$r]}"
  done
  echo "$line; sextant/nginx $(awk -v a="${rps[sextant,$r]}" -v b="${rps[nginx,$r]}" 'BEGIN {printf "%.3f", a / b}')"
done
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
for name in direct nginx haproxy sextant sextant+telemetry; do
  echo "median $name $(for r in $(seq "$rounds"); do echo "${rps[$name,$r]}"; done | median)"
done
echo "median ratio sextant/nginx $(for r in $(seq "$rounds"); do awk -v a="${rps[sextant,$r]}" -v b="${rps[nginx,$r]}" 'BEGIN {print a / b}'; done | median)"

echo "# latency at 1000 req/s (open loop, 16 connections, ${lsecs}s), CPU and RSS of the proxy; $rounds rounds"
declare -A vcpu p99
for r in $(seq "$rounds"); do
  for target in "direct:$up:" "nginx:$ngx:$ngx_worker" "haproxy:$hap:$hap_pid" "sextant:$sx:$sx_pid" "sextant+telemetry:$sxt:$sxt_pid"; do
    IFS=: read -r name port pid <<< "$target"
    out="$(taskset -c 1 "$py" bench/latency.py --port "$port" --host upstream:80 --rate 1000 --seconds "$lsecs" \
      ${pid:+--pid "$pid"} --label "$name")"
    echo "$out"
    vcpu[$name,$r]="$(echo "$out" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["vcpu"])')"
    p99[$name,$r]="$(echo "$out" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["p99_ms"])')"
  done
done
for name in nginx haproxy sextant sextant+telemetry; do
  echo "median $name vcpu $(for r in $(seq "$rounds"); do echo "${vcpu[$name,$r]}"; done | median)" \
    "p99 added over direct (ms) $(for r in $(seq "$rounds"); do awk -v a="${p99[$name,$r]}" -v b="${p99[direct,$r]}" 'BEGIN {print a - b}'; done | median)"
done
echo "# idle RSS after the runs (MiB): sextant $(awk '/VmRSS/ {print $2/1024}' /proc/$sx_pid/status)," \
  "sextant+telemetry $(awk '/VmRSS/ {print $2/1024}' /proc/$sxt_pid/status)"
sleep 2
echo "# telemetry delivered: access-log lines $(wc -l < "$tmp/access.log"); spans the sink accepted" \
  "$(curl -s "http://127.0.0.1:$sinktel/metrics" | awk '/^sextant_receiver_accepted_items_total/ && /traces/ {s+=$2} END {print s+0}')"
