#!/usr/bin/env bash
# Benchmark: the cost of receiver `limits:` (TelemetryLimits.apply) on the hot path, next to decoding the
# same OTLP protobuf request. A 1000-span batch in the SDKs' usual shape (12 attributes of short strings
# and numbers per span, 2 events, 1 link, 8 resource attributes) is decoded, then checked with the
# default limits (nothing to change: the read-only pass), then a copy with one oversized span in 1000
# (200 attributes, a 64 KiB value) has the limits applied. Release build of the pure modules only; one core.
# Usage: bench/receiver_limits.sh [seconds_per_case]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
seconds="${1:-3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/Sources/bench"
for m in SextantModel SextantOTLP; do ln -s "$root/Sources/$m" "$tmp/Sources/$m"; done
cp bench/Measure.swift "$tmp/Sources/bench/"
cat > "$tmp/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let package = Package(
    name: "receiver-limits-bench",
    targets: [
        .target(name: "SextantModel"),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"]),
        .executableTarget(name: "bench", dependencies: ["SextantModel", "SextantOTLP"], linkerSettings: [.linkedLibrary("m")]),
    ]
)
SWIFT
cat > "$tmp/Sources/bench/main.swift" <<'SWIFT'
import SextantModel
import SextantOTLP

func span(_ i: Int, attributes extra: Int = 0, longValue: Int = 0) -> Span {
    var attrs: [KeyValue] = [
        KeyValue("http.request.method", .string("GET")), KeyValue("url.path", .string("/api/v1/products/\(i)")),
        KeyValue("http.response.status_code", .int(200)), KeyValue("server.address", .string("productpage.default.svc")),
        KeyValue("server.port", .int(9080)), KeyValue("network.protocol.version", .string("1.1")),
        KeyValue("user_agent.original", .string("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")),
        KeyValue("client.address", .string("10.0.3.\(i % 250)")), KeyValue("db.system", .string("postgresql")),
        KeyValue("db.statement", .string("SELECT id, name, price FROM products WHERE id = $1")),
        KeyValue("thread.id", .int(Int64(i % 16))), KeyValue("retry", .bool(false)),
    ]
    for k in 0..<extra { attrs.append(KeyValue("extra.\(k)", .string("v\(k)"))) }
    if longValue > 0 { attrs.append(KeyValue("long", .string(String(repeating: "é", count: longValue / 2)))) }
    return Span(
        traceID: TraceID(high: 1, low: UInt64(i / 10 + 1)), spanID: SpanID(UInt64(i + 1)), parentSpanID: i % 10 == 0 ? nil : SpanID(UInt64(i)),
        name: "GET /api/v1/products", kind: .server, startTimeUnixNano: 1_700_000_000_000_000_000, endTimeUnixNano: 1_700_000_000_002_000_000,
        attributes: attrs,
        events: [SpanEvent(timeUnixNano: 1, name: "cache.miss", attributes: [KeyValue("key", .string("p\(i)"))]), SpanEvent(timeUnixNano: 2, name: "db.query")],
        links: [SpanLink(traceID: TraceID(high: 2, low: 3), spanID: SpanID(4))])
}

func batch(oversized: Bool) -> TracesData {
    let resource = Resource(attributes: (0..<8).map { KeyValue("resource.\($0)", .string("value-\($0)")) })
    let spans = (0..<1000).map { i in oversized && i == 500 ? span(i, attributes: 188, longValue: 65536) : span(i) }
    return TracesData(resourceSpans: [ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "bench"), spans: spans)])])
}

let seconds = Double(CommandLine.arguments.dropFirst().first ?? "3") ?? 3
let limits = TelemetryLimits()
let wire = OTLPProtobuf.encode(batch(oversized: false))
let decoded = Telemetry.traces(try! OTLPProtobuf.decodeTraces(wire).data)
let bad = Telemetry.traces(batch(oversized: true))

let decode = measure(seconds) { (try! OTLPProtobuf.decodeTraces(wire)).data.spanCount }
let check = measure(seconds) {
    var t = decoded
    return limits.apply(to: &t).droppedAttributes
}
let fix = measure(seconds) {
    var t = bad
    return limits.apply(to: &t).droppedAttributes
}
print("request: 1000 spans, \(wire.count) bytes of OTLP protobuf")
/// One decimal, without Foundation.
func f(_ x: Double) -> String { String((x * 10).rounded() / 10) }
print("decode                        \(f(decode)) µs/batch")
print("limits, within (no-op pass)   \(f(check)) µs/batch  (\(f(check / decode * 100)) % of decode)")
print("limits, 1 span in 1000 over   \(f(fix)) µs/batch  (\(f(fix / decode * 100)) % of decode)")
SWIFT
cd "$tmp"
# SEXTANT_BUILD_LOCK=/path serialises the build with other builds (flock), e.g. on a shared machine.
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product bench 2>&1 | grep -E "error|Build complete" || true
.build/release/bench "$seconds"
