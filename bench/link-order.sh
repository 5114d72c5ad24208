#!/usr/bin/env bash
# Regenerates bench/link-order.txt, the function order bench/release-build.sh gives lld
# (`--symbol-ordering-file`): every function of the binary that `sextant proxy` runs — start-up, config
# load, the request path with Istio metrics, JSON access log and spans exported over OTLP/gRPC, the admin
# endpoints — found by running the proxy under valgrind's callgrind (listed in callgrind's order; only
# which functions go together matters, not their order).
# Linked first and together, that code fills about 2 MB of pages instead of being spread over the 33 MB
# `.text`, where the kernel's fault-around maps 64 kB around every function touched (BENCHMARKS.md, "Link
# order"). Names that no longer exist after a code change are skipped by the linker, so a stale list only
# orders less; rerun this after changes to the proxy's request path.
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

# Callgrind names a function on its first `fn=` or `cfn=` line; keep the binary's own text symbols.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$tmp/text.txt"
grep -oE '^c?fn=\([0-9]+\) .*' "$tmp/cg.out" | sed -E 's/^c?fn=\([0-9]+\) //' | awk '!seen[$0]++' > "$tmp/run.txt"
awk 'NR == FNR {text[$0] = 1; next} ($0 in text)' "$tmp/text.txt" "$tmp/run.txt" > bench/link-order.txt
echo "bench/link-order.txt: $(wc -l < bench/link-order.txt) functions" >&2
