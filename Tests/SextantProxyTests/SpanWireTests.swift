import NIOHTTP1
import SextantIstio
import SextantModel
import SextantOTLP
import Testing

@testable import SextantProxy

/// The proxy writes OTLP spans straight into wire form (`SpanBuilder.encodedSpan`, `SpanWireWriter`); those
/// bytes, behind `OTLPProtobuf.requestPrefix`, are exactly the encoding of the `Span` value `span` builds
/// for Zipkin, in every shape a record takes (outbound and inbound, error or not, optional fields absent or
/// present, a parent and a trace state or none, values long enough for two-byte lengths).
@Suite struct SpanWireTests {
    static let builder = SpanBuilder(identity: ProxyIdentity(workload: "productpage-v1", namespace: "bookinfo", labels: ["app": "productpage", "version": "v1"]))
    static let resource = Resource(attributes: [KeyValue("service.name", .string("productpage.bookinfo"))])

    static func record(outbound: Bool, code: Int, full: Bool) -> ProxyRecord {
        var r = ProxyRecord(
            direction: outbound ? .outbound : .inbound, startUnixNanos: 1_764_032_523_456_000_123, method: "GET",
            path: code == 404 ? "/" + String(repeating: "p", count: 300) : "/reviews/0?x=\"1\"", protocolName: "HTTP/1.1",
            authority: full ? "reviews:9080" : "",
            requestHeaders: full ? ["user-agent": code == 404 ? String(repeating: "u", count: 200) : "curl/8.5 \u{e9}"] : [:])
        r.requestID = "3f1c0a2e-5b7d-4c1e-9a0b-1234567890ab"
        r.responseCode = code
        r.bytesReceived = full ? 512 : 0
        if code == 404 { r.bytesReceived = 12_345_678_901 }
        r.bytesSent = 1024
        r.duration = .milliseconds(12)
        if full {
            r.upstreamCluster = "outbound|9080|v2|reviews.bookinfo.svc.cluster.local"
            r.upstreamHost = "10.0.0.7:9080"
            r.downstreamRemoteAddress = "10.0.0.3:51234"
            r.responseFlags = [.upstreamRetryLimitExceeded]
        }
        return r
    }

    @Test(arguments: [(true, 200, true), (true, 503, false), (false, 0, true), (false, 200, false), (true, 404, true)])
    func wireFormIsTheModelsEncoding(outbound: Bool, code: Int, full: Bool) throws {
        let r = Self.record(outbound: outbound, code: code, full: full)
        let t = TraceContext(
            traceID: TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10), spanID: SpanID(0x1112_1314_1516_1718),
            parentSpanID: full ? SpanID(0x2122_2324_2526_2728) : nil, sampled: true, traceState: full ? "vendor=1" : nil)
        let span = Self.builder.span(r, t)
        let model = OTLPProtobuf.encode(
            TracesData(resourceSpans: [ResourceSpans(resource: Self.resource, scopeSpans: [ScopeSpans(spans: [span, span])])]))
        let wire = Self.builder.encodedSpan(r, t)
        #expect(OTLPProtobuf.encodeTraces(resource: Self.resource, framedSpans: [wire, wire]) == model)
        // And it reads back as the span.
        let decoded = try OTLPProtobuf.decode(.traces, OTLPProtobuf.encodeTraces(resource: Self.resource, framedSpans: [wire]))
        guard case .traces(let data) = decoded.data else {
            Issue.record("not traces")
            return
        }
        #expect(data.resourceSpans.first?.scopeSpans.first?.spans == [span])
    }
}
