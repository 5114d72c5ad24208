#!/usr/bin/env bash
# Benchmark: scrape → remote write, side by side on this machine with the same targets and the same
# receiver: Sextant (`prometheus` receiver → `prometheusremotewrite` exporter, release build) vs
# Prometheus in agent mode (`prometheus --enable-feature=agent`, Debian's 2.42).
#   targets : TARGETS (4) Python endpoints × SERIES (2500) series of text format 0.0.4 (counters, gauges,
#             histograms; values grow every scrape), scraped every 1 s by both systems;
#   receiver: a Python remote-write 1.0 endpoint that decodes every request (Snappy + protobuf) and counts
#             series/samples, answering 204 (bench/prom_agent_peers.py);
#   pinning : the system under test on core 0, targets + receiver on core 1.
# Each run starts one system, waits until it delivers, warms up WARMUP (10) s, then measures for
# `seconds`: CPU seconds (utime+stime of /proc/PID/stat), RSS (mean VmRSS sampled each second, and
# VmHWM), samples delivered to the receiver; prints CPU-s per million samples and the Sextant/Prometheus
# ratios (target: ≤ 0.5× CPU and ≤ 0.5× RSS).
# Usage: bench/prometheus_agent.sh [seconds=60] [rounds=2]
#   SYSTEMS="sextant" runs only the named systems (default: prometheus sextant).
#   PERF=DIR records a call-graph profile of each measured Sextant run (DIR/perf-sextant-ROUND.data).
#   SEXTANT_BIN=path skips the build (bench/release-build.sh); SEXTANT_BUILD_LOCK=/path wraps it in flock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-60}"
rounds="${2:-2}"
warmup="${WARMUP:-10}"
ntargets="${TARGETS:-4}"
series="${SERIES:-2500}"

command -v prometheus >/dev/null || scripts/system-deps.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
[ -x "$py" ] || scripts/python-env.sh
if [ -z "${SEXTANT_BIN:-}" ]; then
  SEXTANT_BIN="$(bench/release-build.sh)"
fi
bin="$SEXTANT_BIN"
hz="$(getconf CLK_TCK)"

tmp="$(mktemp -d)"
peer_pids=()
sut_pid=""
cleanup() {
  [ -n "$sut_pid" ] && kill "$sut_pid" 2>/dev/null
  for p in "${peer_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # url what
  for _ in $(seq 150); do curl -sf -o /dev/null "$1" && return; sleep 0.2; done
  echo "$2 did not become ready ($1)" >&2; exit 1
}
json_field() { "$py" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---- peers on core 1 ----------------------------------------------------------------------------------
ports=()
for _ in $(seq "$ntargets"); do ports+=("$(free_port)"); done
rport="$(free_port)"
taskset -c 1 "$py" bench/prom_agent_peers.py targets "$(IFS=,; echo "${ports[*]}")" "$series" >"$tmp/targets.log" 2>&1 &
peer_pids+=($!)
taskset -c 1 "$py" bench/prom_agent_peers.py receiver "$rport" >"$tmp/receiver.log" 2>&1 &
peer_pids+=($!)
for p in "${ports[@]}"; do wait_http "http://127.0.0.1:$p/stats" "target :$p"; done
wait_http "http://127.0.0.1:$rport/stats" "receiver"

received() { curl -sf "http://127.0.0.1:$rport/stats" | json_field samples; }
scrapes() {  # total scrapes over all targets
  local n=0
  for p in "${ports[@]}"; do n=$((n + $(curl -sf "http://127.0.0.1:$p/stats" | json_field scrapes))); done
  echo "$n"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
minflt() { awk '{print $10}' "/proc/$1/stat"; }

target_list="$(printf '"127.0.0.1:%s", ' "${ports[@]}")"
scrape_yaml="global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: bench
    static_configs:
      - targets: [${target_list%, }]"

start_prometheus() {
  web="$(free_port)"
  cat > "$tmp/prometheus.yml" <<YAML
$scrape_yaml
remote_write:
  - url: http://127.0.0.1:$rport/api/v1/write
YAML
  rm -rf "$tmp/agent"
  taskset -c 0 prometheus --enable-feature=agent --config.file="$tmp/prometheus.yml" \
    --storage.agent.path="$tmp/agent" --web.listen-address="127.0.0.1:$web" --log.level=warn \
    >"$tmp/prometheus.log" 2>&1 &
  sut_pid=$!
  wait_http "http://127.0.0.1:$web/-/ready" "prometheus agent"
  self_samples() { curl -sf "http://127.0.0.1:$web/metrics" | awk '/^prometheus_remote_storage_samples_total/ {s += $2} END {printf "%.0f", s}'; }
}

start_sextant() {
  tport="$(free_port)"
  { echo "receivers:"
    echo "  prometheus:"
    echo "    config:"
    sed 's/^/      /' <<<"$scrape_yaml"
    cat <<YAML
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:$rport/api/v1/write
service:
  telemetry: {metrics: {address: 127.0.0.1:$tport}}
  pipelines:
    metrics: {receivers: [prometheus], exporters: [prometheusremotewrite]}
YAML
  } > "$tmp/sextant.yaml"
  "$bin" validate --config "$tmp/sextant.yaml" >/dev/null
  taskset -c 0 "$bin" collector --config "$tmp/sextant.yaml" --log-level warning >"$tmp/sextant.log" 2>&1 &
  sut_pid=$!
  wait_http "http://127.0.0.1:$tport/readyz" "sextant collector"
  # OTLP data points sent (a histogram point is one item but 14 remote-write samples here).
  self_samples() { curl -sf "http://127.0.0.1:$tport/metrics" | awk '/^sextant_exporter_sent_items_total\{exporter="prometheusremotewrite"/ {s += $2} END {printf "%.0f", s}'; }
}

stop_sut() { kill -TERM "$sut_pid"; wait "$sut_pid" 2>/dev/null || true; sut_pid=""; }

measure() {  # system round
  local r0 c0 s0 t0 r1 c1 s1 t1 rss_sum=0 rss_max=0 anon_sum=0 n=0 rss
  r0="$(received)"
  for _ in $(seq 100); do [ "$(received)" -gt "$r0" ] && break; sleep 0.2; done
  [ "$(received)" -gt "$r0" ] || { echo "$1 delivered nothing" >&2; cat "$tmp/$1.log" >&2; exit 1; }
  sleep "$warmup"
  r0="$(received)"; s0="$(scrapes)"; c0="$(cpu_ticks "$sut_pid")"; f0="$(minflt "$sut_pid")"; t0="$(date +%s.%N)"
  local perf_pid=""
  if [ -n "${PERF:-}" ] && [ "$1" = sextant ]; then
    perf record -F 2000 -g -o "$PERF/perf-sextant-$2.data" -p "$sut_pid" -- sleep "$secs" 2>/dev/null &
    perf_pid=$!
  fi
  for _ in $(seq "$secs"); do
    sleep 1
    rss="$(awk '/^VmRSS/ {print $2}' "/proc/$sut_pid/status")"
    anon_sum=$((anon_sum + $(awk '/^RssAnon/ {print $2}' "/proc/$sut_pid/status")))
    rss_sum=$((rss_sum + rss)); n=$((n + 1)); [ "$rss" -gt "$rss_max" ] && rss_max="$rss"
  done
  c1="$(cpu_ticks "$sut_pid")"; f1="$(minflt "$sut_pid")"; t1="$(date +%s.%N)"; r1="$(received)"; s1="$(scrapes)"
  [ -n "$perf_pid" ] && wait "$perf_pid"
  hwm="$(awk '/^VmHWM/ {print $2}' "/proc/$sut_pid/status")"
  own="$(self_samples)"
  awk -v sys="$1" -v round="$2" -v hz="$hz" -v c="$((c1 - c0))" -v r="$((r1 - r0))" -v s="$((s1 - s0))" \
      -v per="$series" -v t0="$t0" -v t1="$t1" -v mean="$((rss_sum / n))" -v anon="$((anon_sum / n))" -v max="$rss_max" -v hwm="$hwm" -v own="$own" -v flt="$((f1 - f0))" 'BEGIN {
    cpu = c / hz; wall = t1 - t0
    printf "%-10s %5d %7.1f %9.2f %7.1f %10d %10d %8.3f %8.1f %8.1f %8.1f %8.1f %12s %10.0f\n", sys, round, wall, cpu, 100 * cpu / wall,
      s * per, r, cpu / (r / 1e6), mean / 1024, max / 1024, hwm / 1024, anon / 1024, own, flt / (r / 1e6)
  }' | tee -a "$tmp/results.txt"
}

echo "machine: $(nproc) vCPU $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "sextant: $bin (built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC'); repo at $(git log -1 --format=%h 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ', dirty tree'))"
echo "load: $ntargets targets × $series series, scrape_interval 1s; warm-up ${warmup}s, measured ${secs}s per run"
printf '%-10s %5s %7s %9s %7s %10s %10s %8s %8s %8s %8s %8s %12s %10s\n' system round wall_s cpu_s cpu_% scraped received \
  cpu_s/M rss_MiB rssmax hwm_MiB anon_MiB own_counter faults/M
for round in $(seq "$rounds"); do
  for sys in ${SYSTEMS:-prometheus sextant}; do
    "start_$sys"
    measure "$sys" "$round"
    stop_sut
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(cpu_s/M: CPU seconds per million samples received; rss_MiB: mean VmRSS; anon_MiB: mean RssAnon, i.e. without mapped code;"
echo " own_counter: prometheus_remote_storage_samples_total resp. sextant_exporter_sent_items_total since start;"
echo " faults/M: minor page faults per million samples received)"
awk '
  { cpu[$1, $2] = $8; rss[$1, $2] = $9; hwm[$1, $2] = $11; anon[$1, $2] = $12; if ($2 > n) n = $2 }
  END {
    for (i = 1; i <= n; i++) if (cpu["prometheus", i] > 0 && cpu["sextant", i] > 0)
      printf "round %d: Sextant/Prometheus CPU per sample %.2f×, mean RSS %.2f×, peak RSS (VmHWM) %.2f×, anonymous RSS %.2f×  (target ≤ 0.5×)\n",
        i, cpu["sextant", i] / cpu["prometheus", i], rss["sextant", i] / rss["prometheus", i], hwm["sextant", i] / hwm["prometheus", i],
        anon["sextant", i] / anon["prometheus", i]
  }' "$tmp/results.txt"
