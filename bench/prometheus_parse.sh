#!/usr/bin/env bash
# Benchmark: the `prometheus` receiver's pure path — `ExpositionParser` (bytes → metric families) and
# `ScrapeAssembler` (families → OTLP, start times, staleness) — and what the scrape → remote-write pipeline
# does with the result (target labels, `RemoteWrite.convert`, protobuf encode, Snappy), on a synthetic ~0.6 MB exposition
# (120 × [12 counters with 3 labels, 3 gauges, 2 × 12-bucket histograms, a 5-quantile summary]), in both
# the text format 0.0.4 and OpenMetrics 1.0. Release build of the pure modules only; one core.
# Usage: bench/prometheus_parse.sh [seconds_per_case]   (results go to stdout, MB/s of exposition bytes; the
# remote-write stages are also quoted per scrape of the document, so that the stages add up)
#        INSTRUCTIONS=1 bench/prometheus_parse.sh   (callgrind instruction counts per stage instead; see below)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
seconds="${1:-3}"
# BENCH_DIR=/path keeps the bench package there (incremental rebuilds while iterating); default: a temp dir.
if [ -n "${BENCH_DIR:-}" ]; then
  tmp="$BENCH_DIR"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
fi
mkdir -p "$tmp/Sources/bench"
for m in SextantModel SextantOTLP SextantPrometheus SextantSnappy; do ln -sfn "$root/Sources/$m" "$tmp/Sources/$m"; done
cat > "$tmp/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "prometheus-parse-bench",
    targets: [
        .target(name: "SextantModel"),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"]),
        .target(name: "SextantPrometheus", dependencies: ["SextantModel", "SextantOTLP"]),
        .target(name: "SextantSnappy"),
        .executableTarget(
            name: "bench", dependencies: ["SextantModel", "SextantPrometheus", "SextantSnappy"], linkerSettings: [.linkedLibrary("m")]),
    ]
)
SWIFT
cat > "$tmp/Sources/bench/main.swift" <<'SWIFT'
import SextantModel
import Foundation
import SextantPrometheus
import SextantSnappy

/// A synthetic exposition in the shape client libraries write (HELP/TYPE, labels, histograms, summaries).
func document(openMetrics: Bool) -> [UInt8] {
    var s = ""
    let methods = ["GET", "POST", "PUT", "DELETE"]
    let codes = ["200", "404", "500"]
    var n = 0
    for family in 0..<120 {
        let base = "app_component\(family)_http_requests"
        s += "# HELP \(base) Requests handled by component \(family), by method and code.\n"
        s += "# TYPE \(base)\(openMetrics ? "" : "_total") counter\n"
        for m in methods {
            for c in codes {
                n += 1
                s += "\(base)_total{method=\"\(m)\",code=\"\(c)\",handler=\"/api/v1/query_range\"} \(n * 7919 % 1_000_003)\n"
            }
        }
        let g = "app_component\(family)_memory_bytes"
        s += "# HELP \(g) Resident memory.\n# TYPE \(g) gauge\n"
        for area in ["heap", "stack", "mmap"] { s += "\(g){area=\"\(area)\",pool=\"default\"} \(Double(n) * 1048576.25)\n" }
        let h = "app_component\(family)_request_duration_seconds"
        s += "# HELP \(h) Request latency.\n# TYPE \(h) histogram\n"
        for m in methods.prefix(2) {
            var cum = 0
            for le in ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"] {
                cum += (n * 31 + le.count) % 97
                s += "\(h)_bucket{method=\"\(m)\",handler=\"/api/v1/query_range\",le=\"\(openMetrics && le == "1" ? "1.0" : le)\"} \(cum)\n"
            }
            s += "\(h)_sum{method=\"\(m)\",handler=\"/api/v1/query_range\"} \(Double(cum) * 0.0123)\n"
            s += "\(h)_count{method=\"\(m)\",handler=\"/api/v1/query_range\"} \(cum)\n"
        }
        let q = "app_component\(family)_gc_duration_seconds"
        s += "# TYPE \(q) summary\n"
        for quantile in ["0", "0.25", "0.5", "0.75", "1"] { s += "\(q){quantile=\"\(quantile)\"} 1.2345e-05\n" }
        s += "\(q)_sum 0.0123456789\n\(q)_count 1234\n"
    }
    if openMetrics { s += "# EOF\n" }
    return Array(s.utf8)
}

/// ONLY=<text> runs only the cases whose label contains it; ITERATIONS=<n> runs each case n times instead of
/// for `seconds` (for counting instructions with `perf stat -e instructions:u`, steadier than time here).
let only = ProcessInfo.processInfo.environment["ONLY"]
let fixedIterations = ProcessInfo.processInfo.environment["ITERATIONS"].flatMap { Int($0) }

@discardableResult
func measure(_ label: String, bytes: Int, seconds: Double, _ body: () -> Void) -> Double {
    if let only, !label.contains(only) { return 0 }
    let clock = ContinuousClock()
    body()  // warm-up
    var iterations = 0
    let start = clock.now
    var elapsed = Duration.zero
    repeat {
        body()
        iterations += 1
        elapsed = clock.now - start
    } while fixedIterations.map { iterations < $0 } ?? (elapsed < .milliseconds(Int64(seconds * 1000)))
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let mb = Double(bytes * iterations) / 1e6 / secs
    print("\(label): \(bytes) bytes × \(iterations) in \(String(format1(secs))) s → \(String(format1(mb))) MB/s, \(format1(secs / Double(iterations) * 1e6)) µs each")
    return secs / Double(iterations)
}

func format1(_ d: Double) -> String { String(Double(Int(d * 10)) / 10) }

let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 3 : 3
for om in [false, true] {
    let doc = document(openMetrics: om)
    let format: ExpositionFormat = om ? .openMetrics : .prometheusText
    let families = try ExpositionParser.parse(doc, format: format)
    let samples = families.reduce(0) { $0 + $1.samples.count }
    print("\(format): \(families.count) families, \(samples) samples")
    measure("  parse alone", bytes: doc.count, seconds: seconds) { _ = try! ExpositionParser.parse(doc, format: format) }
    // As the receiver parses a target's scrapes: each parse reuses the previous one's strings.
    var strings = ExpositionStrings()
    func parseAgain() -> [ExpositionFamily] {
        doc.withUnsafeBytes { raw in try! ExpositionParser.parse(raw, format: format, strings: &strings) }
    }
    measure("  parse, strings of the previous scrape", bytes: doc.count, seconds: seconds) { _ = parseAgain() }
    var assembler = ScrapeAssembler(resource: [], defaultScope: InstrumentationScope(name: "bench"))
    var t: UInt64 = 1_700_000_000_000_000_000
    measure("  parse + assemble", bytes: doc.count, seconds: seconds) {
        t += 1_000_000_000
        _ = assembler.assemble(try! ExpositionParser.parse(doc, format: format), at: t)
    }
    // What the scrape → remote-write pipeline adds: the receiver's target labels (no relabel rules), the
    // exporter's conversion, encoding and compression.
    let target = [ExpositionLabel("job", "bench"), ExpositionLabel("instance", "127.0.0.1:9100")]
    measure("  target labels", bytes: doc.count, seconds: seconds) {
        _ = ScrapeLabeling.apply(families, targetLabels: target, honorLabels: false, rules: [])
    }
    var scraper = ScrapeAssembler(
        resource: ScrapeAssembler.targetResource(job: "bench", instance: "127.0.0.1:9100", scheme: "http"), defaultScope: InstrumentationScope(name: "bench"))
    measure("  parse + target labels + assemble", bytes: doc.count, seconds: seconds) {
        t += 1_000_000_000
        let parsed = parseAgain()
        _ = scraper.assemble(ScrapeLabeling.apply(parsed, targetLabels: target, honorLabels: false, rules: []), at: t)
    }
    t += 1_000_000_000
    let data = scraper.assemble(ScrapeLabeling.apply(families, targetLabels: target, honorLabels: false, rules: []), at: t)
    var options = RemoteWrite.ConversionOptions()
    options.sendMetadata = false  // the exporter's default
    measure("  remote write: convert", bytes: doc.count, seconds: seconds) { _ = RemoteWrite.convert([data], options: options) }
    let conversion = RemoteWrite.convert([data], options: options)
    measure("  remote write: encode + Snappy", bytes: doc.count, seconds: seconds) {
        for request in conversion.encodedRequests(maxBytes: 3_000_000) { _ = Snappy.compress(request) }
    }
    measure("  remote write: convert + encode + Snappy", bytes: doc.count, seconds: seconds) {
        for request in RemoteWrite.convert([data], options: options).encodedRequests(maxBytes: 3_000_000) { _ = Snappy.compress(request) }
    }
    // As the exporter converts a target's scrapes: consecutive assemblies hand on each series' attribute
    // list as the same array, so the exporter's label cache knows every point after the first scrape.
    t += 1_000_000_000
    let next = scraper.assemble(ScrapeLabeling.apply(parseAgain(), targetLabels: target, honorLabels: false, rules: []), at: t)
    let cache = RemoteWrite.LabelCache()
    var flip = false
    measure("  remote write, label cache: convert + encode + Snappy", bytes: doc.count, seconds: seconds) {
        flip.toggle()
        for request in RemoteWrite.convert([flip ? data : next], options: options, cache: cache).encodedRequests(maxBytes: 3_000_000) {
            _ = Snappy.compress(request)
        }
    }
}
SWIFT
cd "$tmp"
# SEXTANT_BUILD_LOCK=/path serialises the build with other builds (flock), e.g. on a shared machine.
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product bench 2>&1 | grep -E "error|Compiling bench|Build complete" || true
if [ -z "${INSTRUCTIONS:-}" ]; then
  .build/release/bench "$seconds"
  exit
fi
# INSTRUCTIONS=1: user-space instructions per pass over the document (both formats together), counted by
# callgrind as the difference between 6 and 1 iterations of each case, divided by 5 — repeatable to well
# under 1 %, where wall-clock figures on this VM move by ±20 %.
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null; }
count() { ONLY="$1" ITERATIONS="$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null .build/release/bench 1 2>&1 | awk '/Collected/ {print $4}'; }
for case in "parse alone" "parse, strings of the previous scrape" "parse + target labels + assemble" "remote write: convert + encode + Snappy" "remote write, label cache: convert + encode + Snappy"; do
  one="$(count "$case" 1)"; six="$(count "$case" 6)"
  printf '%-42s %12d instructions per pass (text + OpenMetrics)\n' "$case" $(( (six - one) / 5 ))
done
