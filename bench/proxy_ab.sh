#!/usr/bin/env bash
# Benchmark: the CPU of two `sextant proxy` builds at a constant 1000 req/s each, driven at the same time, so
# that the machine's drift (which moves a lone run by ±15 % between rounds here) hits both alike. Both
# proxies (Istio metrics on) run on core 0 in front of the bench upstream (bench/proxy_setup.sh, nginx on core
# 1); each round drives A and B together for SECONDS (bench/latency.py, open loop, 16 connections each).
# CPU is read from /proc/PID/task/*/schedstat, the scheduler's run time in nanoseconds, not from the user and
# system clock ticks of /proc/PID/stat: the kernel here samples the user/system split at each tick (tick
# accounting), so only their sum is exact. Per round it prints each build's µs of CPU per request, p99, and
# B/A; at the end the median ratio. Rounds agree to about 1 %, so a 2 % change shows.
# The absolute figures are higher than bench/proxy.sh's (two proxies share core 0 and its caches): quote the
# ratio, and bench/proxy.sh for vCPU.
# With TELEMETRY=1 both proxies also write Istio's JSON access log and trace every request over OTLP/gRPC to
# a sink `sextant collector` (on core 1, as bench/proxy.sh runs "sextant+telemetry").
# Usage: [TELEMETRY=1] bench/proxy_ab.sh A_BINARY B_BINARY [SECONDS=10] [ROUNDS=6]
#   A and B may be the same binary (an A/A run shows the method's spread).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ $# -ge 2 ] || { echo "usage: bench/proxy_ab.sh A_BINARY B_BINARY [SECONDS] [ROUNDS]" >&2; exit 2; }
A="$1"; B="$2"; secs="${3:-10}"; rounds="${4:-6}"
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
# Nanoseconds on a CPU, summed over the process's threads.
run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%.0f\n", s}'; }
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%FT%TZ)"
echo "# A = $A, B = $B; both at 1000 req/s for ${secs}s per round; CPU µs per request from schedstat"
warm=()
for n in A B; do taskset -c 1 "$py" bench/latency.py --port "${port[$n]}" --host upstream:80 --rate 1000 --seconds 2 >/dev/null & warm+=($!); done
wait "${warm[@]}"
ratios=()
for r in $(seq "$rounds"); do
  declare -A t0=() load=()
  for n in A B; do
    t0[$n]="$(run_ns "${pid[$n]}")"
    taskset -c 1 "$py" bench/latency.py --port "${port[$n]}" --host upstream:80 --rate 1000 --seconds "$secs" \
      > "$tmp/round-$n.json" & load[$n]=$!
  done
  wait "${load[A]}" "${load[B]}"
  declare -A us=()
  line="round $r:"
  for n in A B; do
    read -r requests p99 errors < <("$py" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["requests"], r["p99_ms"], r["errors"])' "$tmp/round-$n.json")
    us[$n]="$(awk -v a="${t0[$n]}" -v b="$(run_ns "${pid[$n]}")" -v n="$requests" 'BEGIN {printf "%.1f", (b - a) / n / 1000}')"
    line="$line $n ${us[$n]} µs (p99 $p99 ms, errors $errors);"
  done
  ratio="$(awk -v a="${us[A]}" -v b="${us[B]}" 'BEGIN {printf "%.3f", b / a}')"
  ratios+=("$ratio")
  echo "$line B/A $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median B/A %.3f (%s to %s)\n", m, v[1], v[NR]}'
