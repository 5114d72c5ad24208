import SextantJaeger
import SextantModel
import Testing

@Suite("Jaeger translator")
struct JaegerTranslatorTests {
    static let t0ns: UInt64 = 1_700_000_000_000_000_000
    static let traceID = TraceID(hex: "5b8efff798038103d269b633813fc60c")!

    // MARK: Jaeger → OTLP

    @Test func goldenBatchToTraces() {
        let outcome = JaegerTranslator.toTraces([Fixtures.batch])
        #expect(outcome.rejectedSpans == 0)
        #expect(outcome.rejectionReason == nil)

        let server = Span(
            traceID: Self.traceID, spanID: SpanID(hex: "0ee19b7ec3c1b174")!, traceState: "rojo=00f067aa0ba902b7",
            parentSpanID: SpanID(hex: "0ee19b7ec3c1b173")!, flags: 1, name: "GET /api/checkout", kind: .server,
            startTimeUnixNano: Self.t0ns, endTimeUnixNano: Self.t0ns + 250_000_000,
            attributes: [
                KeyValue("http.status_code", .int(500)),
                KeyValue("greeting", .string("h\u{e9}llo \u{4e16}\u{754c} \u{1F680}")),
                KeyValue("negative", .int(-42)),
                KeyValue("ratio", .double(-2.5e-7)),
                KeyValue("cached", .bool(false)),
            ],
            events: [
                SpanEvent(timeUnixNano: Self.t0ns + 1000, name: "exception", attributes: [KeyValue("exception.message", .string("boom"))]),
                SpanEvent(timeUnixNano: Self.t0ns + 2000, attributes: [KeyValue("attempt", .int(2))]),
                SpanEvent(timeUnixNano: Self.t0ns + 3000),
            ],
            links: [
                SpanLink(
                    traceID: TraceID(high: 0, low: 0x0AF7_6519_16CD_43DD), spanID: SpanID(0xFFFF_FFFF_FFFF_FFFB),
                    attributes: [KeyValue("opentracing.ref_type", .string("follows_from"))])
            ],
            status: SpanStatus(code: .error, message: "upstream failed"))
        let client = Span(
            traceID: TraceID(high: 0, low: 0x1234), spanID: SpanID(0xFF), parentSpanID: SpanID(hex: "0ee19b7ec3c1b174")!, flags: 1,
            name: "SELECT", kind: .client, startTimeUnixNano: Self.t0ns + 10_000, endTimeUnixNano: Self.t0ns + 30_000,
            attributes: (0..<13).map { KeyValue("k\($0)", .int(Int64($0))) }, status: SpanStatus(code: .ok))
        let expected = TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [
                    KeyValue("service.name", .string("checkout")),
                    KeyValue("ip", .string("10.0.0.7")),
                    KeyValue("host.cores", .int(8)),
                    KeyValue("load", .double(0.75)),
                    KeyValue("canary", .bool(true)),
                    KeyValue("blob", .bytes([0x00, 0x01, 0xFE, 0xFF])),
                    KeyValue("host.name", .string("node-1")),
                    KeyValue("opencensus.exporterversion", .string("Jaeger-Python-4.8.0")),
                ]),
                scopeSpans: [
                    ScopeSpans(scope: InstrumentationScope(name: "io.sextant.test", version: "1.2.3"), spans: [server]),
                    ScopeSpans(spans: [client]),
                ])
        ])
        #expect(outcome.traces == expected)
    }

    @Test func rejectsInvalidIDs() {
        let valid = JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "ok")
        let batch = JaegerBatch(
            process: JaegerProcess(serviceName: "svc"),
            spans: [
                JaegerSpan(traceIdLow: 0, traceIdHigh: 0, spanId: 1, operationName: "zero-trace"), valid,
                JaegerSpan(traceIdLow: 5, spanId: 0, operationName: "zero-span"),
            ])
        let outcome = JaegerTranslator.toTraces([JaegerBatch(process: JaegerProcess(serviceName: "")), batch])
        #expect(outcome.rejectedSpans == 2)
        #expect(outcome.rejectionReason == "batch 1 span 0 (\"zero-trace\"): trace ID is all zero (2 rejected in total)")
        // The empty first batch is skipped; the second keeps its valid span.
        #expect(outcome.traces.resourceSpans.count == 1)
        #expect(outcome.traces.resourceSpans[0].scopeSpans.map { $0.spans.map(\.name) } == [["ok"]])
    }

    @Test func processWithoutSpansKeepsResource() {
        let outcome = JaegerTranslator.toTraces([JaegerBatch(process: JaegerProcess(serviceName: "lonely"))])
        #expect(outcome.traces.resourceSpans == [ResourceSpans(resource: Resource(attributes: [KeyValue("service.name", .string("lonely"))]))])
    }

    @Test func parentFromReferences() {
        func parent(_ span: JaegerSpan) -> (SpanID?, [SpanLink]) {
            let t = JaegerTranslator.toTraces([JaegerBatch(process: JaegerProcess(serviceName: "s"), spans: [span])]).traces
            let out = t.resourceSpans[0].scopeSpans[0].spans[0]
            return (out.parentSpanID, out.links)
        }
        let otherTrace = JaegerSpanRef(refType: .childOf, traceIdLow: 2, spanId: 10)
        let follows = JaegerSpanRef(refType: .followsFrom, traceIdLow: 1, spanId: 11)
        let child = JaegerSpanRef(refType: .childOf, traceIdLow: 1, spanId: 12)

        // A CHILD_OF in another trace is never the parent; the same-trace CHILD_OF wins over FOLLOWS_FROM.
        let (p1, l1) = parent(JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "a", references: [otherTrace, follows, child]))
        #expect(p1 == SpanID(12))
        #expect(l1.map(\.spanID) == [SpanID(10), SpanID(11)])
        #expect(l1.map { $0.attributes[key: "opentracing.ref_type"] } == [.string("child_of"), .string("follows_from")])

        // Without CHILD_OF, the first same-trace FOLLOWS_FROM is the parent and stays a link too.
        let (p2, l2) = parent(JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "b", references: [follows]))
        #expect(p2 == SpanID(11))
        #expect(l2.map(\.spanID) == [SpanID(11)])

        // parentSpanId wins over references.
        let (p3, l3) = parent(JaegerSpan(traceIdLow: 1, spanId: 1, parentSpanId: 99, operationName: "c", references: [child]))
        #expect(p3 == SpanID(99))
        #expect(l3.map(\.spanID) == [SpanID(12)])
    }

    struct StatusCase: CustomTestStringConvertible, Sendable {
        var name: String
        var tags: [JaegerTag]
        var status: SpanStatus
        var remaining: [String]
        var testDescription: String { name }
    }

    static let statusCases: [StatusCase] = [
        StatusCase(name: "no tags", tags: [], status: SpanStatus(), remaining: []),
        StatusCase(
            name: "error=true with description", tags: [.bool("error", true), .string("otel.status_description", "boom")],
            status: SpanStatus(code: .error, message: "boom"), remaining: []),
        StatusCase(
            name: "error=true falls back to http.status_message",
            tags: [.bool("error", true), .string("http.status_message", "Bad Gateway")],
            status: SpanStatus(code: .error, message: "Bad Gateway"), remaining: ["http.status_message"]),
        StatusCase(
            name: "error=true beats otel.status_code OK", tags: [.string("otel.status_code", "OK"), .bool("error", true)],
            status: SpanStatus(code: .error), remaining: []),
        StatusCase(name: "error=false is an attribute", tags: [.bool("error", false)], status: SpanStatus(), remaining: ["error"]),
        StatusCase(name: "error as string is an attribute", tags: [.string("error", "true")], status: SpanStatus(), remaining: ["error"]),
        StatusCase(
            name: "otel.status_code ok, any case", tags: [.string("otel.status_code", "ok"), .string("otel.status_description", "fine")],
            status: SpanStatus(code: .ok, message: "fine"), remaining: []),
        StatusCase(
            name: "otel.status_code unknown", tags: [.string("otel.status_code", "MAYBE")], status: SpanStatus(code: .unset),
            remaining: []),
        StatusCase(
            name: "description alone stays", tags: [.string("otel.status_description", "x")], status: SpanStatus(),
            remaining: ["otel.status_description"]),
        StatusCase(
            name: "http 500", tags: [.long("http.status_code", 500)], status: SpanStatus(code: .error), remaining: ["http.status_code"]),
        StatusCase(
            name: "http 404 on a server", tags: [.string("span.kind", "server"), .long("http.status_code", 404)], status: SpanStatus(),
            remaining: ["http.status_code"]),
        StatusCase(
            name: "http 404 on a client", tags: [.string("span.kind", "client"), .string("http.status_code", "404")],
            status: SpanStatus(code: .error), remaining: ["http.status_code"]),
        StatusCase(
            name: "http 200 with message", tags: [.long("http.status_code", 200), .string("http.status_message", "OK")],
            status: SpanStatus(), remaining: ["http.status_code", "http.status_message"]),
        StatusCase(
            name: "otel.status_code beats http", tags: [.string("otel.status_code", "OK"), .long("http.status_code", 503)],
            status: SpanStatus(code: .ok), remaining: ["http.status_code"]),
    ]

    @Test(arguments: statusCases)
    func status(_ c: StatusCase) {
        let span = JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "s", tags: c.tags)
        let out = JaegerTranslator.toTraces([JaegerBatch(process: JaegerProcess(serviceName: "s"), spans: [span])])
            .traces.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(out.status == c.status)
        #expect(out.attributes.map(\.key) == c.remaining)
    }

    @Test func tagValuesAndDuplicates() {
        var tags: [JaegerTag] = (0..<20).map { .long("n\($0)", Int64($0)) }
        tags += [
            .long("n3", -3),  // a repeated key replaces the first value in place (indexed path)
            JaegerTag(key: "weird", vType: JaegerTagType(rawValue: 9), vStr: "ignored"),
            JaegerTag(key: "absent", vType: .long),  // vType without its value: the zero value
            .string("span.kind", "bogus"),
            .string("otel.library.name", "old-lib"),
            .string("otel.library.version", "0.9"),
        ]
        let outcome = JaegerTranslator.toTraces([
            JaegerBatch(process: JaegerProcess(serviceName: "s"), spans: [JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "x", tags: tags)])
        ])
        let scopeSpans = outcome.traces.resourceSpans[0].scopeSpans[0]
        #expect(scopeSpans.scope == InstrumentationScope(name: "old-lib", version: "0.9"))
        let span = scopeSpans.spans[0]
        #expect(span.kind == .unspecified)
        var expected = (0..<20).map { KeyValue("n\($0)", .int(Int64($0))) }
        expected[3].value = .int(-3)
        expected += [KeyValue("weird", .string("<Unknown Jaeger TagType 9>")), KeyValue("absent", .int(0))]
        #expect(span.attributes == expected)
    }

    @Test func timesWrapLikeTheCollector() {
        let span = JaegerSpan(traceIdLow: 1, spanId: 1, operationName: "x", startTime: 5, duration: -10)
        let out = JaegerTranslator.toTraces([JaegerBatch(process: JaegerProcess(serviceName: "s"), spans: [span])])
            .traces.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(out.startTimeUnixNano == 5000)
        #expect(out.endTimeUnixNano == UInt64(bitPattern: -5000))
    }

    // MARK: OTLP → Jaeger

    @Test func tracesToBatch() {
        let parent = SpanID(0x0102)
        let span = Span(
            traceID: Self.traceID, spanID: SpanID(0xABCD), traceState: "a=b", parentSpanID: parent, flags: 0x301, name: "op", kind: .producer,
            startTimeUnixNano: Self.t0ns + 1_999, endTimeUnixNano: Self.t0ns + 5_000_999,
            attributes: [
                KeyValue("s", .string("v")), KeyValue("i", .int(-1)), KeyValue("d", .double(1.5)), KeyValue("b", .bool(true)),
                KeyValue("bytes", .bytes([1, 2])), KeyValue("nothing", .empty),
                KeyValue("list", .array([.string("<a&b>"), .int(1), .double(100), .double(1e-7), .bool(false), .empty, .bytes([0xFF])])),
                KeyValue("map", .kvlist([KeyValue("z", .int(1)), KeyValue("a", .kvlist([KeyValue("q", .string("\"\n\u{1}"))]))])),
            ],
            droppedAttributesCount: 4,
            events: [
                SpanEvent(timeUnixNano: Self.t0ns + 7_000, name: "exception", attributes: [KeyValue("exception.type", .string("E"))]),
                SpanEvent(timeUnixNano: Self.t0ns + 8_000, name: "named", attributes: [KeyValue("event", .string("explicit"))]),
                SpanEvent(timeUnixNano: Self.t0ns + 9_000),
            ],
            links: [
                SpanLink(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), traceState: "lost", attributes: [KeyValue("lost", .bool(true))]),
                SpanLink(traceID: Self.traceID, spanID: parent, attributes: [KeyValue("opentracing.ref_type", .string("follows_from"))]),
                SpanLink(traceID: TraceID(high: 0, low: 9), spanID: SpanID(4), attributes: [KeyValue("opentracing.ref_type", .string("child_of"))]),
            ],
            status: SpanStatus(code: .error, message: "bad"))
        let traces = TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("host.name", .string("h")), KeyValue("service.name", .string("svc"))]),
                scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "lib", version: "2.0"), spans: [span])]),
            ResourceSpans(),  // nothing at all: skipped
            ResourceSpans(scopeSpans: [ScopeSpans(spans: [Span(traceID: Self.traceID, spanID: SpanID(1), status: SpanStatus(code: .ok))])]),
        ])

        let batches = JaegerTranslator.fromTraces(traces)
        #expect(batches.count == 2)
        let low = Int64(bitPattern: Self.traceID.low)
        let high = Int64(bitPattern: Self.traceID.high)
        let expected = JaegerBatch(
            process: JaegerProcess(serviceName: "svc", tags: [.string("host.name", "h")]),
            spans: [
                JaegerSpan(
                    traceIdLow: low, traceIdHigh: high, spanId: 0xABCD, parentSpanId: 0x0102, operationName: "op",
                    references: [
                        JaegerSpanRef(refType: .followsFrom, traceIdLow: low, traceIdHigh: high, spanId: 0x0102),
                        JaegerSpanRef(refType: .followsFrom, traceIdLow: 2, traceIdHigh: 1, spanId: 3),
                        JaegerSpanRef(refType: .childOf, traceIdLow: 9, traceIdHigh: 0, spanId: 4),
                    ],
                    flags: 1, startTime: 1_700_000_000_000_001, duration: 4_999,
                    tags: [
                        .string("otel.scope.name", "lib"), .string("otel.scope.version", "2.0"),
                        .string("s", "v"), .long("i", -1), .double("d", 1.5), .bool("b", true), .binary("bytes", [1, 2]),
                        .string("nothing", ""),
                        .string("list", #"["\u003ca\u0026b\u003e",1,100,1e-7,false,null,"/w=="]"#),
                        .string("map", #"{"a":{"q":"\"\n\u0001"},"z":1}"#),
                        .string("span.kind", "producer"), .string("otel.status_code", "ERROR"), .bool("error", true),
                        .string("otel.status_description", "bad"), .string("w3c.tracestate", "a=b"),
                    ],
                    logs: [
                        JaegerLog(timestamp: 1_700_000_000_000_007, fields: [.string("event", "exception"), .string("exception.type", "E")]),
                        JaegerLog(timestamp: 1_700_000_000_000_008, fields: [.string("event", "explicit")]),
                        JaegerLog(timestamp: 1_700_000_000_000_009, fields: []),
                    ])
            ])
        #expect(batches[0] == expected)
        #expect(
            batches[1]
                == JaegerBatch(
                    process: JaegerProcess(serviceName: "OTLPResourceNoServiceName"),
                    spans: [
                        JaegerSpan(traceIdLow: low, traceIdHigh: high, spanId: 1, operationName: "", tags: [.string("otel.status_code", "OK")])
                    ]))
    }

    /// What OTLP → Jaeger → OTLP keeps: everything Jaeger has a place for.
    @Test func roundTripThroughJaeger() {
        let traces = TracesData(resourceSpans: [
            ResourceSpans(
                resource: Resource(attributes: [KeyValue("service.name", .string("svc")), KeyValue("k8s.pod.name", .string("p"))]),
                scopeSpans: [
                    ScopeSpans(
                        scope: InstrumentationScope(name: "lib", version: "1"),
                        spans: [
                            Span(
                                traceID: Self.traceID, spanID: SpanID(7), traceState: "x=y", parentSpanID: SpanID(6), flags: 1, name: "a",
                                kind: .consumer, startTimeUnixNano: Self.t0ns, endTimeUnixNano: Self.t0ns + 1_000_000,
                                attributes: [KeyValue("n", .int(1)), KeyValue("blob", .bytes([9]))],
                                events: [SpanEvent(timeUnixNano: Self.t0ns + 1000, name: "e", attributes: [KeyValue("x", .double(2))])],
                                links: [
                                    SpanLink(
                                        traceID: TraceID(high: 3, low: 4), spanID: SpanID(5),
                                        attributes: [KeyValue("opentracing.ref_type", .string("follows_from"))])
                                ],
                                status: SpanStatus(code: .error, message: "m"))
                        ]),
                    ScopeSpans(spans: [Span(traceID: Self.traceID, spanID: SpanID(8), name: "b", status: SpanStatus(code: .ok))]),
                ])
        ])
        let back = JaegerTranslator.toTraces(JaegerTranslator.fromTraces(traces))
        #expect(back.rejectedSpans == 0)
        #expect(back.traces == traces)
    }

    @Test func jsonNumbersFollowGo() {
        func render(_ d: Double) -> String? {
            JaegerTranslator.fromTraces(
                TracesData(resourceSpans: [ResourceSpans(resource: Resource(attributes: [KeyValue("a", .array([.double(d)]))]))])
            )[0].process.tags[0].vStr
        }
        #expect(render(0) == "[0]")
        #expect(render(-2.5) == "[-2.5]")
        #expect(render(1e20) == "[100000000000000000000]")
        #expect(render(1e21) == "[1e+21]")
        #expect(render(1.5e-7) == "[1.5e-7]")
        #expect(render(1e-6) == "[0.000001]")
        #expect(render(123456789.125) == "[123456789.125]")
        #expect(render(1e-300) == "[1e-300]")
    }
}
