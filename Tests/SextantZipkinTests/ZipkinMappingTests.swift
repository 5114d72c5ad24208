import SextantModel
import SextantZipkin
import Testing

@Suite("OpenTelemetry ↔ Zipkin mapping")
struct ZipkinMappingTests {
    static let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!
    static let t0: UInt64 = 1_700_000_000_000_000_000

    static func decode(_ json: String) throws -> ZipkinDecodeResult { try ZipkinV2.decodeJSON(Array(json.utf8)) }

    static func onlySpan(_ json: String) throws -> (Resource, InstrumentationScope, Span) {
        let result = try decode(json)
        #expect(result.rejected == 0)
        let rs = try #require(result.data.resourceSpans.first)
        let ss = try #require(rs.scopeSpans.first)
        return (rs.resource, ss.scope, try #require(ss.spans.first))
    }

    // MARK: Zipkin → OpenTelemetry

    @Test func decodesEndpointsKindsTimesAndCollectorFormats() throws {
        let (resource, scope, span) = try Self.onlySpan(
            """
            [{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","parentId":"eee19b7ec3c1b173",
              "kind":"CLIENT","name":"get","timestamp":1700000000000000,"duration":1500,
              "localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1","port":8080},
              "remoteEndpoint":{"serviceName":"backend","ipv6":"2001:db8::1","port":9000},
              "annotations":[{"timestamp":1700000000000100,"value":"cache-miss"},
                             {"timestamp":1700000000000200,"value":"retry|{\\"attempt\\":2,\\"why\\":\\"x|y\\"}|1"}],
              "tags":{"http.method":"GET","otel.scope.name":"lib","otel.scope.version":"0.1","host.name":"h1",
                      "otel.status_code":"ERROR","otel.status_description":"boom","error":"true",
                      "w3c.tracestate":"rojo=1","otel.dropped_attributes_count":"3",
                      "otlp.link.0":"0af7651916cd43dd8448eb211c80319c|b7ad6b7169203331|k=v|{\\"n\\":1}|0"},
              "debug":true,"shared":true}]
            """)
        #expect(resource.attributes == [KeyValue("service.name", .string("frontend")), KeyValue("host.name", .string("h1"))])
        #expect(scope == InstrumentationScope(name: "lib", version: "0.1"))
        #expect(span.traceID == Self.traceID)
        #expect(span.parentSpanID == SpanID(hex: "eee19b7ec3c1b173"))
        #expect(span.kind == .client)
        #expect(span.traceState == "rojo=1")
        #expect(span.startTimeUnixNano == Self.t0)
        #expect(span.endTimeUnixNano == Self.t0 + 1_500_000)
        #expect(span.status == SpanStatus(code: .error, message: "boom"))
        #expect(span.droppedAttributesCount == 3)
        // Tags in wire order, then the endpoint attributes the collector adds. `debug` and
        // `shared` are not mapped (the collector drops them too).
        #expect(
            span.attributes == [
                KeyValue("http.method", .string("GET")),
                KeyValue("net.host.ip", .string("10.0.0.1")),
                KeyValue("net.host.port", .int(8080)),
                KeyValue("peer.service", .string("backend")),
                KeyValue("net.peer.ip", .string("2001:db8::1")),
                KeyValue("net.peer.port", .int(9000)),
            ])
        #expect(
            span.events == [
                SpanEvent(timeUnixNano: Self.t0 + 100_000, name: "cache-miss"),
                SpanEvent(
                    timeUnixNano: Self.t0 + 200_000, name: "retry",
                    attributes: [KeyValue("attempt", .int(2)), KeyValue("why", .string("x|y"))], droppedAttributesCount: 1),
            ])
        #expect(
            span.links == [
                SpanLink(
                    traceID: TraceID(hex: "0af7651916cd43dd8448eb211c80319c")!, spanID: SpanID(hex: "b7ad6b7169203331")!,
                    traceState: "k=v", attributes: [KeyValue("n", .int(1))])
            ])
    }

    @Test func decodesAbsentTimestampInternalKindAndSelfParent() throws {
        let (resource, scope, span) = try Self.onlySpan(
            """
            [{"traceId":"0102030405060708","id":"0000000000000009","parentId":"0000000000000009","duration":7,
              "tags":{"span.kind":"internal","otel.library.name":"old","otel.library.version":"9"}}]
            """)
        #expect(resource.attributes.isEmpty)
        #expect(scope == InstrumentationScope(name: "old", version: "9"))
        #expect(span.traceID == TraceID(high: 0, low: 0x0102_0304_0506_0708))
        #expect(span.parentSpanID == nil)
        #expect(span.kind == .internal)
        #expect(span.startTimeUnixNano == 0)
        #expect(span.endTimeUnixNano == 7_000)
        #expect(span.attributes == [KeyValue("otel.zipkin.absentField.startTime", .bool(true))])
    }

    @Test(arguments: [
        (#"{"otel.status_code":"OK"}"#, SpanStatus(code: .ok), 0),
        (#"{"otel.status_code":"STATUS_CODE_ERROR"}"#, SpanStatus(code: .error), 0),
        (#"{"otel.status_code":"ERROR","error":"bad gateway"}"#, SpanStatus(code: .error, message: "bad gateway"), 0),
        (#"{"error":"true"}"#, SpanStatus(code: .error), 0),
        (#"{"error":"connection refused"}"#, SpanStatus(code: .error, message: "connection refused"), 0),
        (#"{"error":"false"}"#, SpanStatus(), 1),
        (#"{"otel.status_code":"OK","error":"odd"}"#, SpanStatus(code: .ok), 1),
    ])
    func decodesStatus(tags: String, status: SpanStatus, leftoverAttributes: Int) throws {
        let (_, _, span) = try Self.onlySpan(
            #"[{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","timestamp":1,"tags":"# + tags + "}]")
        #expect(span.status == status)
        #expect(span.attributes.count == leftoverAttributes)
    }

    @Test func groupsSpansByServiceAndScopeInOrderOfAppearance() throws {
        func span(_ id: Int, _ service: String, _ scope: String) -> String {
            #"{"traceId":"5b8efff798038103d269b633813fc60c","id":"000000000000000\#(id)","timestamp":1,"#
                + #""localEndpoint":{"serviceName":"\#(service)"},"tags":{"otel.scope.name":"\#(scope)"}}"#
        }
        let result = try Self.decode("[" + [span(1, "a", "x"), span(2, "b", "x"), span(3, "a", "y"), span(4, "a", "x")].joined(separator: ",") + "]")
        let groups = result.data.resourceSpans.map { rs in
            (rs.resource.serviceName ?? "", rs.scopeSpans.map { ($0.scope.name, $0.spans.map(\.spanID.value)) })
        }
        #expect(groups.count == 2)
        #expect(groups[0].0 == "a")
        #expect(groups[0].1.map(\.0) == ["x", "y"])
        #expect(groups[0].1.map(\.1) == [[1, 4], [3]])
        #expect(groups[1].0 == "b")
    }

    // MARK: OpenTelemetry → Zipkin

    static var richTraces: TracesData {
        let span = Span(
            traceID: traceID, spanID: SpanID(0xEEE1_9B7E_C3C1_B174), traceState: "rojo=1", parentSpanID: SpanID(0xEEE1_9B7E_C3C1_B173),
            name: "get", kind: .internal, startTimeUnixNano: t0 + 400, endTimeUnixNano: t0 + 1_500_000,
            attributes: [
                KeyValue("http.method", .string("GET")),
                KeyValue("count", .int(3)),
                KeyValue("ok", .bool(true)),
                KeyValue("ratio", .double(0.5)),
                KeyValue("list", .array([.string("a"), .int(1)])),
                KeyValue("net.peer.ip", .string("192.168.0.9")),
                KeyValue("net.peer.port", .int(5432)),
                KeyValue("peer.service", .string("db")),
                KeyValue("net.host.ip", .string("not-an-ip")),
                KeyValue("error", .string("stale")),
            ],
            droppedAttributesCount: 2,
            events: [
                SpanEvent(timeUnixNano: t0 + 1_000, name: "plain"),
                SpanEvent(timeUnixNano: t0 + 2_000, name: "with", attributes: [KeyValue("z", .int(1)), KeyValue("a", .string("x"))]),
            ],
            links: [SpanLink(traceID: traceID, spanID: SpanID(7), traceState: "s=1", attributes: [KeyValue("k", .bool(false))], droppedAttributesCount: 1)],
            status: SpanStatus(code: .error, message: "boom"))
        let resource = Resource(attributes: [
            KeyValue("service.name", .string("frontend")), KeyValue("host.name", .string("h1")),
        ])
        return TracesData(resourceSpans: [
            ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "lib", version: "0.1"), spans: [span])])
        ])
    }

    @Test func encodesJSONExactly() {
        let json = String(decoding: ZipkinV2.encodeJSON(Self.richTraces), as: UTF8.self)
        let expected =
            #"[{"traceId":"5b8efff798038103d269b633813fc60c","parentId":"eee19b7ec3c1b173","id":"eee19b7ec3c1b174","name":"get","#
            + #""timestamp":1700000000000000,"duration":1500,"localEndpoint":{"serviceName":"frontend"},"#
            + #""remoteEndpoint":{"serviceName":"db","ipv4":"192.168.0.9","port":5432},"#
            + #""annotations":[{"timestamp":1700000000000001,"value":"plain"},{"timestamp":1700000000000002,"value":"with|{\"a\":\"x\",\"z\":1}|0"}],"#
            + #""tags":{"count":"3","error":"boom","host.name":"h1","http.method":"GET","list":"[\"a\",1]","net.host.ip":"not-an-ip","#
            + #""ok":"true","otel.dropped_attributes_count":"2","otel.scope.name":"lib","otel.scope.version":"0.1","#
            + #""otel.status_code":"ERROR","otlp.link.0":"5b8efff798038103d269b633813fc60c|0000000000000007|s=1|{\"k\":false}|1","#
            + #""ratio":"0.5","span.kind":"internal","w3c.tracestate":"rojo=1"}}]"#
        #expect(json == expected)
    }

    @Test func encodesServiceNameFallbackAndOmitsUnsetStatus() throws {
        let span = Span(traceID: Self.traceID, spanID: SpanID(1), name: "f", startTimeUnixNano: Self.t0, endTimeUnixNano: Self.t0,
                        attributes: [KeyValue("error", .string("x"))], status: SpanStatus(code: .unset))
        let data = TracesData(resourceSpans: [
            ResourceSpans(resource: Resource(attributes: [KeyValue("faas.name", .string("fn"))]), scopeSpans: [ScopeSpans(spans: [span])])
        ])
        let json = String(decoding: ZipkinV2.encodeJSON(data), as: UTF8.self)
        #expect(
            json
                == #"[{"traceId":"5b8efff798038103d269b633813fc60c","id":"0000000000000001","name":"f","timestamp":1700000000000000,"#
                + #""localEndpoint":{"serviceName":"fn"},"tags":{"otlp.service.name.source":"faas.name"}}]"#)
        // And back: the service name returns to the attribute it came from.
        let back = try ZipkinV2.decodeJSON(Array(json.utf8)).data
        #expect(back.resourceSpans[0].resource.attributes == [KeyValue("faas.name", .string("fn"))])
    }

    /// Tags merge by key (the span's attribute over the resource's, the last of repeated keys) and
    /// sort in UTF-8 byte order, including keys that agree on their first 16 bytes or are a
    /// prefix of another; JSON and protobuf carry the same list.
    @Test func encodesMergedTagsInByteOrder() throws {
        let long = "aaaaaaaaaaaaaaaa"  // 16 bytes: keys below agree on them
        let attributes = [
            KeyValue("host.name", .string("from-span")), KeyValue(long + ".z", .string("1")), KeyValue(long, .string("2")),
            KeyValue(long + ".b", .string("3")), KeyValue("\u{e9}t\u{e9}", .string("4")), KeyValue("z", .string("5")),
            KeyValue(long + ".z", .string("6")), KeyValue("a", .int(7)), KeyValue("peer.service", .string("old")),
            KeyValue("peer.service", .string("db")), KeyValue("net.peer.port", .string("5432")), KeyValue("error", .string("x")),
            KeyValue("aaaaaaaa", .bool(true)), KeyValue("a", .int(8)),
        ]
        let span = Span(traceID: Self.traceID, spanID: SpanID(1), name: "s", startTimeUnixNano: Self.t0, endTimeUnixNano: Self.t0,
                        attributes: attributes)
        let resource = Resource(attributes: [KeyValue("service.name", .string("svc")), KeyValue("host.name", .string("from-resource"))])
        let data = TracesData(resourceSpans: [ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(spans: [span])])])
        let json = String(decoding: ZipkinV2.encodeJSON(data), as: UTF8.self)
        #expect(
            json
                == #"[{"traceId":"5b8efff798038103d269b633813fc60c","id":"0000000000000001","name":"s","timestamp":1700000000000000,"#
                + #""localEndpoint":{"serviceName":"svc"},"remoteEndpoint":{"serviceName":"db","port":5432},"#
                + #""tags":{"a":"8","aaaaaaaa":"true","aaaaaaaaaaaaaaaa":"2","aaaaaaaaaaaaaaaa.b":"3","aaaaaaaaaaaaaaaa.z":"6","#
                + #""host.name":"from-span","z":"5","\#u{e9}t\#u{e9}":"4"}}]"#)
        let fromProto = try ZipkinV2.decodeProto(ZipkinV2.encodeProto(data)).data
        let fromJSON = try ZipkinV2.decodeJSON(Array(json.utf8)).data
        #expect(fromProto == fromJSON)
    }

    /// Past the insertion sort's size: many tags in scrambled order come out as a byte-order sort
    /// of the merged set would have them.
    @Test func encodesManyTagsSorted() throws {
        var rng = SystemRandomNumberGenerator()
        let keys = (0..<60).map { i in ["k\(i)", "kk.\(i % 7)", "aaaaaaaaaaaaaaaa.\(i % 11)", "\u{e9}\(i % 3)"][i % 4] }
        let attributes = keys.shuffled(using: &rng).enumerated().map { KeyValue($0.element, .string("v\($0.offset)")) }
        var merged: [String: String] = [:]
        for kv in attributes { merged[kv.key] = kv.value.asString }
        let expected = merged.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        let span = Span(traceID: Self.traceID, spanID: SpanID(1), startTimeUnixNano: Self.t0, endTimeUnixNano: Self.t0,
                        attributes: attributes)
        let data = TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])
        let json = String(decoding: ZipkinV2.encodeJSON(data), as: UTF8.self)
        let tags = try #require(json.range(of: #""tags":{"#)).upperBound
        let written = json[tags...].dropLast(3)
        #expect(written == expected.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ","))
    }

    @Test func encodesSixtyFourBitTraceIDsShort() throws {
        let span = Span(traceID: TraceID(high: 0, low: 0xABC), spanID: SpanID(1), startTimeUnixNano: Self.t0, endTimeUnixNano: Self.t0 + 1)
        let data = TracesData(resourceSpans: [ResourceSpans(scopeSpans: [ScopeSpans(spans: [span])])])
        let json = String(decoding: ZipkinV2.encodeJSON(data), as: UTF8.self)
        // A 1 ns span still has a duration (rounded up to 1 µs rather than to "unknown").
        #expect(json == #"[{"traceId":"0000000000000abc","id":"0000000000000001","timestamp":1700000000000000,"duration":1}]"#)
        let proto = ZipkinV2.encodeProto(data)
        // ListOfSpans.spans, then Span.trace_id as 8 bytes.
        #expect(Array(proto[2..<12]) == [0x0A, 8, 0, 0, 0, 0, 0, 0, 0x0A, 0xBC])
    }
}
