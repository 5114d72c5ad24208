#!/usr/bin/env bash
# Benchmark: the CPU of two `sextant proxy` builds at a constant 1000 req/s, side by side in one run, so the
# machine's drift hits both alike. Both proxies (Istio metrics on) run on core 0 at the same time, in front
# of the bench upstream (bench/proxy_setup.sh, nginx on core 1). Each round drives A, then B, for SECONDS at
# 1000 req/s (bench/latency.py, open loop, 16 connections), and prints per build: vCPU, p99, and the user and
# system clock ticks (/proc/PID/stat) of the run. User time is the part a code change moves; system time is
# the same four socket calls per request in any build and mostly shows the machine's noise.
# With TELEMETRY=1 both proxies also write Istio's JSON access log and trace every request over OTLP/gRPC to
# a sink `sextant collector` (on core 1, as bench/proxy.sh runs "sextant+telemetry").
# Usage: [TELEMETRY=1] bench/proxy_ab.sh A_BINARY B_BINARY [SECONDS=6] [ROUNDS=6]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 2 ] || { echo "usage: bench/proxy_ab.sh A_BINARY B_BINARY [SECONDS] [ROUNDS]" >&2; exit 2; }
A="$1"; B="$2"; secs="${3:-6}"; rounds="${4:-6}"
. bench/proxy_setup.sh
proxy_bench_deps nginx:nginx-light
up="$(free_port)"; sink="$(free_port)"; sinktel="$(free_port)"
proxy_bench_files
taskset -c 1 nginx -c "$tmp/upstream.conf" -p "$tmp" & pids+=($!)
configs=(--config "$tmp/mesh.yaml")
if [ "${TELEMETRY:-0}" = 1 ]; then
  taskset -c 1 "$A" collector --config "$tmp/sink.yaml" --log-level warning & pids+=($!)
  configs+=(--config "$tmp/telemetry.yaml")
fi
declare -A port pid
for n in A B; do
  port[$n]="$(free_port)"; admin="$(free_port)"
  taskset -c 0 "${!n}" proxy "${configs[@]}" --listen "127.0.0.1:${port[$n]}" --admin "127.0.0.1:$admin" \
    --workload bench --concurrency 1 --log-level warning & pids+=($!); pid[$n]=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null && break; sleep 0.1; done
done
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "# A = $A, B = $B; ${secs}s at 1000 req/s per run; ticks of $(getconf CLK_TCK) per second"
for n in A B; do taskset -c 1 "$py" bench/latency.py --port "${port[$n]}" --host upstream:80 --rate 1000 --seconds 2 >/dev/null; done
for r in $(seq "$rounds"); do
  for n in A B; do
    t0="$(ticks "${pid[$n]}")"
    v="$(taskset -c 1 "$py" bench/latency.py --port "${port[$n]}" --host upstream:80 --rate 1000 --seconds "$secs" \
      --pid "${pid[$n]}" | "$py" -c 'import json, sys; r = json.load(sys.stdin); print("vcpu %s, p99 %s ms, errors %s" % (r["vcpu"], r["p99_ms"], r["errors"]))')"
    t1="$(ticks "${pid[$n]}")"
    echo "round $r $n: $v; user/system ticks $(echo $t0 $t1 | awk '{print $3 - $1 " / " $4 - $2}')"
  done
done
