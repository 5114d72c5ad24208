import SextantModel
import SextantZipkin
import Testing

@Suite("Round trips")
struct ZipkinRoundTripTests {
    static let t0: UInt64 = 1_700_000_000_000_000_000

    /// Data in the form decoding produces: string attributes in tag (key) order followed by the
    /// endpoint attributes, microsecond times, resource attributes the mapping knows.
    static var canonical: TracesData {
        let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!
        let server = Span(
            traceID: traceID, spanID: SpanID(0xA1), traceState: "a=1,b=2", parentSpanID: SpanID(0xA0), name: "GET /x",
            kind: .server, startTimeUnixNano: t0, endTimeUnixNano: t0 + 2_000_000,
            attributes: [
                KeyValue("http.method", .string("GET")), KeyValue("note", .string("h\u{e9}llo \"q\"\n\u{1F680}")),
                KeyValue("net.host.ip", .string("10.0.0.1")), KeyValue("net.host.port", .int(80)),
                KeyValue("peer.service", .string("db")), KeyValue("net.peer.ip", .string("fe80::1")),
                KeyValue("net.peer.port", .int(5432)),
            ],
            droppedAttributesCount: 1,
            events: [
                SpanEvent(timeUnixNano: t0 + 1_000, name: "a|b"),
                SpanEvent(
                    timeUnixNano: t0 + 3_000, name: "ev",
                    attributes: [KeyValue("d", .double(1.5)), KeyValue("i", .int(-3)), KeyValue("s", .string("v"))],
                    droppedAttributesCount: 2),
            ],
            droppedEventsCount: 4,
            links: [SpanLink(traceID: traceID, spanID: SpanID(0xB1), traceState: "t=1", attributes: [KeyValue("k", .string("v"))])],
            droppedLinksCount: 5,
            status: SpanStatus(code: .error, message: "it broke"))
        let client = Span(
            traceID: TraceID(high: 0, low: 42), spanID: SpanID(0xC1), name: "call", kind: .client, startTimeUnixNano: t0,
            endTimeUnixNano: t0 + 1_000, status: SpanStatus(code: .ok))
        let local = Span(
            traceID: traceID, spanID: SpanID(0xD1), name: "work", kind: .internal, startTimeUnixNano: t0 + 5_000,
            endTimeUnixNano: t0 + 9_000)
        let producer = Span(traceID: traceID, spanID: SpanID(0xE1), kind: .producer, startTimeUnixNano: t0, endTimeUnixNano: t0 + 1_000)
        let consumer = Span(
            traceID: traceID, spanID: SpanID(0xF1), kind: .consumer, endTimeUnixNano: 3_000,
            attributes: [KeyValue("otel.zipkin.absentField.startTime", .bool(true))])
        return TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [
                    KeyValue("service.name", .string("frontend")), KeyValue("host.name", .string("h1")),
                    KeyValue("service.version", .string("1.0")),
                ]),
                scopeSpans: [
                    ScopeSpans(scope: InstrumentationScope(name: "lib", version: "2"), spans: [server, client]),
                    ScopeSpans(scope: InstrumentationScope(name: "other"), spans: [local, producer]),
                ]),
            ResourceSpans(resource: Resource(attributes: [KeyValue("service.name", .string("worker"))]), scopeSpans: [ScopeSpans(spans: [consumer])]),
        ])
    }

    @Test func json() throws {
        let encoded = ZipkinV2.encodeJSON(Self.canonical)
        let decoded = try ZipkinV2.decodeJSON(encoded)
        #expect(decoded.rejected == 0)
        #expect(normalized(decoded.data) == normalized(Self.canonical))
        // Deterministic: encoding what we decoded gives the same bytes.
        #expect(ZipkinV2.encodeJSON(decoded.data) == encoded)
    }

    @Test func protobuf() throws {
        let encoded = ZipkinV2.encodeProto(Self.canonical)
        let decoded = try ZipkinV2.decodeProto(encoded)
        #expect(decoded.rejected == 0)
        #expect(normalized(decoded.data) == normalized(Self.canonical))
        #expect(ZipkinV2.encodeProto(decoded.data) == encoded)
    }

    @Test func jsonToProtobufAndBack() throws {
        let fromJSON = try ZipkinV2.decodeJSON(ZipkinV2.encodeJSON(Self.canonical)).data
        let viaProto = try ZipkinV2.decodeProto(ZipkinV2.encodeProto(fromJSON)).data
        #expect(ZipkinV2.encodeJSON(viaProto) == ZipkinV2.encodeJSON(Self.canonical))
    }
}
