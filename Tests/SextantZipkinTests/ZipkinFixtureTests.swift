import Foundation
import SextantModel
import SextantZipkin
import Testing

/// Payloads written by the OpenTelemetry Python SDK's Zipkin encoders (`Fixtures/generate.py`).
@Suite("OpenTelemetry SDK golden vectors")
struct ZipkinFixtureTests {
    static func file(_ name: String) throws -> [UInt8] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
    }

    static let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!
    static let t0: UInt64 = 1_700_000_000_000_000_000
    static let hostAttributes = [KeyValue("net.host.ip", .string("2001:db8::7")), KeyValue("net.host.port", .int(8080))]

    @Test(arguments: ["sdk-spans.json", "sdk-spans.pb"])
    func decodesSDKPayload(_ name: String) throws {
        let bytes = try Self.file(name)
        let result = name.hasSuffix(".json") ? try ZipkinV2.decodeJSON(bytes) : try ZipkinV2.decodeProto(bytes)
        #expect(result.rejected == 0)
        #expect(result.rejectionReason == nil)

        // One service, one scope: every span lands in the same group.
        try #require(result.data.resourceSpans.count == 1)
        let rs = result.data.resourceSpans[0]
        // The SDK sends resource attributes as tags; they go back to the resource. (The protobuf
        // map's order is the encoder's, so compare as sets.)
        #expect(
            sorted(rs.resource.attributes) == [
                KeyValue("host.name", .string("node-7")),
                KeyValue("service.name", .string("checkout")),
                KeyValue("service.version", .string("2.4.1")),
                KeyValue("telemetry.sdk.language", .string("python")),
            ])
        try #require(rs.scopeSpans.count == 1)
        #expect(rs.scopeSpans[0].scope == InstrumentationScope(name: "shop.instrumentation", version: "1.2.3"))
        let spans = rs.scopeSpans[0].spans
        try #require(spans.count == 5)

        let server = spans[0]
        #expect(server.traceID == Self.traceID)
        #expect(server.spanID == SpanID(hex: "eee19b7ec3c1b174")!)
        #expect(server.parentSpanID == SpanID(hex: "eee19b7ec3c1b173")!)
        #expect(server.name == "GET /cart")
        #expect(server.kind == .server)
        #expect(server.startTimeUnixNano == Self.t0)
        #expect(server.endTimeUnixNano == Self.t0 + 1_000_000_000)
        #expect(server.status == SpanStatus(code: .error, message: "upstream failed"))
        #expect(
            sorted(server.attributes)
                == sorted(
                    [
                        KeyValue("http.method", .string("GET")),
                        KeyValue("http.status_code", .string("500")),
                        KeyValue("cache.hit", .string("false")),
                        KeyValue("ratio", .string("0.25")),
                        KeyValue("tags", .string("[\"a\",\"b\"]")),
                    ] + Self.hostAttributes))
        #expect(
            server.events == [
                SpanEvent(
                    timeUnixNano: Self.t0 + 100_000_000, name: "retry",
                    attributes: [KeyValue("attempt", .int(2)), KeyValue("reason", .string("timeout"))]),
                SpanEvent(timeUnixNano: Self.t0 + 900_400_000, name: "done"),
            ])
        #expect(server.links.isEmpty)

        let client = spans[1]
        #expect(client.spanID == SpanID(0x1111_1111_1111_1111))
        #expect(client.parentSpanID == nil)
        #expect(client.kind == .client)
        #expect(client.name == "POST /pay")
        // 1_700_000_002_000_000_600 ns rounds to ...001 µs; the duration 249_999_800 ns to 250_000 µs.
        #expect(client.startTimeUnixNano == 1_700_000_002_000_001_000)
        #expect(client.endTimeUnixNano == 1_700_000_002_250_001_000)
        #expect(client.status == SpanStatus(code: .ok))
        #expect(sorted(client.attributes) == sorted([KeyValue("peer.service", .string("payments"))] + Self.hostAttributes))

        let internalSpan = spans[2]
        #expect(internalSpan.traceID == TraceID(high: 0, low: 0x0102_0304_0506_0708))
        #expect(internalSpan.parentSpanID == SpanID(0x3333_3333_3333_3333))
        // The SDK sends INTERNAL as no kind at all, without the collector's `span.kind` tag.
        #expect(internalSpan.kind == .unspecified)
        #expect(internalSpan.endTimeUnixNano - internalSpan.startTimeUnixNano == 1_000)
        #expect(internalSpan.status == SpanStatus())
        #expect(sorted(internalSpan.attributes) == sorted(Self.hostAttributes))

        #expect(spans[3].kind == .producer)
        #expect(spans[3].name == "send")
        #expect(spans[3].durationNanos == 5_000)
        #expect(spans[4].kind == .consumer)
        #expect(spans[4].durationNanos == 7_000)
    }

    @Test func jsonAndProtobufDecodeAlike() throws {
        let json = try ZipkinV2.decodeJSON(try Self.file("sdk-spans.json")).data
        let proto = try ZipkinV2.decodeProto(try Self.file("sdk-spans.pb")).data
        #expect(normalized(json) == normalized(proto))
    }

    /// What we encode from the SDK's spans decodes to the same model.
    @Test func reencodesSDKPayload() throws {
        let decoded = try ZipkinV2.decodeJSON(try Self.file("sdk-spans.json")).data
        #expect(normalized(try ZipkinV2.decodeJSON(ZipkinV2.encodeJSON(decoded)).data) == normalized(decoded))
        #expect(normalized(try ZipkinV2.decodeProto(ZipkinV2.encodeProto(decoded)).data) == normalized(decoded))
    }
}

func sorted(_ attributes: [KeyValue]) -> [KeyValue] { attributes.sorted { $0.key < $1.key } }

/// The data with every attribute list sorted, for comparisons where tag order is the encoder's.
func normalized(_ data: TracesData) -> TracesData {
    var data = data
    for r in data.resourceSpans.indices {
        data.resourceSpans[r].resource.attributes = sorted(data.resourceSpans[r].resource.attributes)
        for s in data.resourceSpans[r].scopeSpans.indices {
            for i in data.resourceSpans[r].scopeSpans[s].spans.indices {
                data.resourceSpans[r].scopeSpans[s].spans[i].attributes = sorted(
                    data.resourceSpans[r].scopeSpans[s].spans[i].attributes)
            }
        }
    }
    return data
}
