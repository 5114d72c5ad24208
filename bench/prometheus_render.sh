#!/usr/bin/env bash
# Benchmark: the Prometheus output paths on 1M series, release build of the pure modules only.
#   - OTLP → Prometheus points (`PrometheusSamples.latest`: naming, labels, latest-per-series, sort);
#   - a `/metrics` render from those points, text 0.0.4 and OpenMetrics 1.0 (what a scrape of the
#     `prometheus` exporter costs once its series are stored);
#   - remote write: `RemoteWrite.convert`, protobuf encode, Snappy compress (and decompress).
# 1M series = 1000 counters × 1000 label sets, 3 labels each plus job/instance.
# Usage: bench/prometheus_render.sh [series_per_metric] [metrics]   (results go to stdout)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
per="${1:-1000}"; metrics="${2:-1000}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/Sources/bench"
for m in SextantModel SextantOTLP SextantPrometheus SextantSnappy; do ln -s "$root/Sources/$m" "$tmp/Sources/$m"; done
cat > "$tmp/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "prometheus-bench",
    targets: [
        .target(name: "SextantModel"),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"]),
        .target(name: "SextantSnappy"),
        .target(name: "SextantPrometheus", dependencies: ["SextantModel", "SextantOTLP"]),
        .executableTarget(
            name: "bench", dependencies: ["SextantModel", "SextantPrometheus", "SextantSnappy"], linkerSettings: [.linkedLibrary("m")]),
    ]
)
SWIFT
cat > "$tmp/Sources/bench/main.swift" <<'SWIFT'
import SextantModel
import SextantPrometheus
import SextantSnappy

let args = CommandLine.arguments
let per = Int(args[1])!, metricCount = Int(args[2])!
let now: UInt64 = 1_700_000_000_000_000_000
var metrics: [Metric] = []
for m in 0..<metricCount {
    var points: [NumberDataPoint] = []
    for i in 0..<per {
        let method: AnyValue = .string(i % 2 == 0 ? "GET" : "POST")
        let attributes = [KeyValue("http.method", method), KeyValue("code", .string(String(200 + i % 5))), KeyValue("route", .string("/api/v1/items/\(i)"))]
        points.append(NumberDataPoint(attributes: attributes, startTimeUnixNano: now - 60_000_000_000, timeUnixNano: now, value: .int(Int64(i))))
    }
    metrics.append(Metric(name: "app.requests.\(m)", unit: "{request}", data: .sum(points, temporality: .cumulative, isMonotonic: true)))
}
let data = MetricsData(resourceMetrics: [ResourceMetrics(
    resource: Resource(attributes: [KeyValue("service.name", .string("shop")), KeyValue("service.instance.id", .string("pod-1"))]),
    scopeMetrics: [ScopeMetrics(metrics: metrics)])])

func time<T>(_ label: String, _ body: () -> T) -> T {
    let clock = ContinuousClock()
    var result: T?
    let d = clock.measure { result = body() }
    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    print("\(label): \(Int(ms)) ms")
    return result!
}
print("series: \(per * metricCount)")
let families = time("OTLP → Prometheus points (latest, sorted)") { PrometheusSamples.latest([data], options: .init()) }
let text = time("render text 0.0.4") { PrometheusText.render(families) }
let om = time("render OpenMetrics 1.0") { OpenMetricsText.render(families) }
print("text bytes: \(text.utf8.count), OpenMetrics bytes: \(om.utf8.count)")
let conversion = time("remote write: convert") { RemoteWrite.convert([data]) }
let encoded = time("remote write: protobuf encode") { conversion.request.encode() }
let compressed = time("remote write: snappy compress") { Snappy.compress(encoded) }
_ = time("remote write: snappy decompress") { try! Snappy.decompress(compressed, maxLength: encoded.count) }
print("protobuf bytes: \(encoded.count), snappy bytes: \(compressed.count)")
SWIFT
cd "$tmp"
# SEXTANT_BUILD_LOCK=/path serialises the build with other builds (flock), e.g. on a shared machine.
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product bench 2>&1 | grep -E "error|Compiling bench|Build complete" || true
/usr/bin/time -f "peak RSS: %M KiB" .build/release/bench "$per" "$metrics"
