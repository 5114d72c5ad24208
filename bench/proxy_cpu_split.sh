#!/usr/bin/env bash
# Benchmark: where a proxied request's CPU goes at a constant 1000 req/s — user and system time, context
# switches and minor page faults per request (all threads, from /proc) — for nginx, Sextant (Istio metrics)
# and Sextant with full telemetry (metrics, Istio's JSON access log, 100 % of requests traced over OTLP/gRPC
# to a sink collector), side by side in one run. The proxies run on core 0; the upstream (nginx), the sink
# and the load generator (bench/latency.py, open loop, 16 connections) on core 1, as in bench/proxy.sh.
# /proc counts CPU in clock ticks (100 per second): a 10 s run at 1000 req/s resolves 1 µs per request. On a
# kernel with tick-based accounting (CONFIG_TICK_CPU_ACCOUNTING, as here) the user/system split is sampled at
# each tick and moves by ±10 µs per 10 s run; their sum (vCPU) is exact. To compare two builds, use
# bench/proxy_ab.sh (both loaded at once, schedstat nanoseconds).
# Usage: [SEXTANT_BIN=...] bench/proxy_cpu_split.sh [SECONDS=10] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-10}"; rounds="${2:-2}"
. bench/proxy_setup.sh
proxy_bench_deps nginx:nginx-light
[ -n "${SEXTANT_BIN:-}" ] || SEXTANT_BIN="$(bench/release-build.sh)"
up="$(free_port)"; ngx="$(free_port)"; sx="$(free_port)"; sxadmin="$(free_port)"; sxt="$(free_port)"; sxtadmin="$(free_port)"
sink="$(free_port)"; sinktel="$(free_port)"
proxy_bench_files
taskset -c 1 nginx -c "$tmp/upstream.conf" -p "$tmp" & pids+=($!)
taskset -c 1 "$SEXTANT_BIN" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!); ngx_pid=$!
taskset -c 0 "$SEXTANT_BIN" proxy --config "$tmp/mesh.yaml" --listen "127.0.0.1:$sx" --admin "127.0.0.1:$sxadmin" \
  --workload bench --concurrency 1 --log-level warning & pids+=($!); sx_pid=$!
taskset -c 0 "$SEXTANT_BIN" proxy --config "$tmp/mesh.yaml" --config "$tmp/telemetry.yaml" --listen "127.0.0.1:$sxt" \
  --admin "127.0.0.1:$sxtadmin" --workload bench --concurrency 1 --log-level warning & pids+=($!); sxt_pid=$!
for a in "$sxadmin" "$sxtadmin"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$a/ready" >/dev/null && break; sleep 0.1; done
done
sleep 0.5
# nginx's master forks the worker that does the work; measure the worker.
ngx_worker="$(pgrep -P "$ngx_pid" | head -1)"
# utime and stime ticks, voluntary and involuntary context switches (summed over threads), minor faults.
snapshot() {
  local u=0 s=0 v=0 n=0 t
  for t in /proc/"$1"/task/*; do
    read -r tu ts < <(awk '{print $14, $15}' "$t/stat")
    u=$((u + tu)); s=$((s + ts))
    v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")))
    n=$((n + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")))
  done
  echo "$u $s $v $n $(awk '{print $10}' "/proc/$1/stat")"
}
targets=("nginx:$ngx:$ngx_worker" "sextant:$sx:$sx_pid" "sextant+telemetry:$sxt:$sxt_pid")
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "# ${secs}s at 1000 req/s per target and round; per request: user and system µs, context switches, minor faults"
for t in "${targets[@]}"; do
  IFS=: read -r _ port _ <<< "$t"
  taskset -c 1 "$py" bench/latency.py --port "$port" --host upstream:80 --rate 1000 --seconds 2 > /dev/null
done
for r in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    IFS=: read -r name port pid <<< "$t"
    before="$(snapshot "$pid")"
    vcpu="$(taskset -c 1 "$py" bench/latency.py --port "$port" --host upstream:80 --rate 1000 --seconds "$secs" --pid "$pid" \
      | "$py" -c 'import json, sys; r = json.load(sys.stdin); print(r["vcpu"], r["requests"])')"
    after="$(snapshot "$pid")"
    echo "$before $after $vcpu $(ls "/proc/$pid/task" | wc -l)" | awk -v name="$name" -v round="$r" -v hz="$(getconf CLK_TCK)" '{
      req = $12
      printf "round %d %-18s vCPU %.3f  user %5.1f µs  system %5.1f µs  switches %.2f voluntary, %.3f involuntary  minor faults %.3f  (%d threads)\n",
        round, name, $11, ($6 - $1) * 1e6 / hz / req, ($7 - $2) * 1e6 / hz / req, ($8 - $3) / req, ($9 - $4) / req, ($10 - $5) / req, $13 }'
  done
done
