import SextantModel
import Testing

@testable import SextantTraceStore

@Suite struct TraceStoreTests {
    @Test func evictsOldestTracesByCount() {
        let store = TraceStore(maxSpans: 5, maxBytes: 1 << 30)
        store.insert(batch("a", [span(1, 1), span(1, 2, parent: 1)]))
        store.insert(batch("b", [span(2, 3), span(2, 4, parent: 3)]))
        #expect(store.stats.spans == 4)
        store.insert(batch("c", [span(3, 5), span(3, 6, parent: 5)]))
        let stats = store.stats
        #expect(stats.spans == 4)
        #expect(stats.traces == 2)
        #expect(stats.evictedSpans == 2)
        #expect(stats.evictedTraces == 1)
        #expect(store.trace(traceID(1)) == nil)
        #expect(store.trace(traceID(2))?.count == 2)
        // The evicted trace's service goes with its last span.
        #expect(store.services() == ["b", "c"])
        #expect(store.operations(service: "a").isEmpty)
    }

    @Test func oneBatchOverTheBoundEvictsUntilWithin() {
        let store = TraceStore(maxSpans: 3, maxBytes: 1 << 30)
        store.insert(batch("a", (1...4).map { span($0, $0) }))
        let stats = store.stats
        #expect((stats.spans, stats.traces, stats.evictedSpans, stats.evictedTraces) == (3, 3, 1, 1))
        #expect(store.trace(traceID(1)) == nil)
        #expect(store.trace(traceID(4)) != nil)
    }

    @Test func aTraceLargerThanTheStoreIsEvictedWhole() {
        let store = TraceStore(maxSpans: 2, maxBytes: 1 << 30)
        store.insert(batch("a", [span(1, 1), span(1, 2), span(1, 3)]))
        let stats = store.stats
        #expect((stats.spans, stats.bytes, stats.traces, stats.evictedSpans, stats.evictedTraces) == (0, 0, 0, 3, 1))
        #expect(store.services().isEmpty)
    }

    @Test func byteEstimateOfASimpleSpan() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        // Span: 128 overhead + "op". Process: 64 overhead + "svc", charged once per trace.
        store.insert(batch("svc", [span(1, 1, kind: .unspecified)]))
        #expect(store.stats.bytes == 128 + 2 + 64 + 3)
        // A second span from the same process adds only its own size; a tag adds 16 + key + value.
        store.insert(batch("svc", [span(1, 2, kind: .unspecified, attributes: [KeyValue("k", .string("vv"))])]))
        #expect(store.stats.bytes == 2 * (128 + 2) + 64 + 3 + 16 + 1 + 2)
    }

    @Test func evictsOldestTracesByBytes() {
        let measure = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        let attributes = [KeyValue("payload", .string(String(repeating: "x", count: 500)))]
        measure.insert(batch("a", [span(1, 1, attributes: attributes)]))
        let one = measure.stats.bytes

        let store = TraceStore(maxSpans: 100, maxBytes: 2 * one + one / 2)
        for n in UInt64(1)...4 { store.insert(batch("a", [span(n, n, attributes: attributes)])) }
        let stats = store.stats
        #expect((stats.spans, stats.bytes, stats.traces, stats.evictedSpans, stats.evictedTraces) == (2, 2 * one, 2, 2, 2))
        #expect(store.trace(traceID(2)) == nil)
        #expect(store.trace(traceID(3)) != nil)
    }

    @Test func spansOfAStoredTraceAreAppended() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        store.insert(batch("a", [span(1, 2, parent: 1, start: t0 + 10)]))
        store.insert(batch("b", [span(1, 1, start: t0)]))
        let spans = store.trace(traceID(1))
        #expect(spans?.map(\.spanID.value) == [1, 2])
        #expect(store.stats.traces == 1)
        #expect(store.services() == ["a", "b"])
    }

    @Test func spansWithTheInvalidTraceIDAreNotStored() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        var s = span(1, 1)
        s.traceID = .zero
        store.insert(batch("a", [s]))
        #expect(store.stats.spans == 0)
    }

    @Test func operationsByKind() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        store.insert(
            batch("a", [
                span(1, 1, name: "GET /", kind: .server), span(1, 2, name: "SELECT", kind: .client),
                span(1, 3, name: "GET /", kind: .client), span(1, 4, name: "work", kind: .unspecified),
            ]))
        #expect(store.operations(service: "a").map { "\($0.name)|\($0.spanKind)" } == ["GET /|client", "GET /|server", "SELECT|client", "work|"])
        #expect(store.operations(service: "a", spanKind: "client").map(\.name) == ["GET /", "SELECT"])
        #expect(store.operations(service: "a", spanKind: "").count == 4)
        #expect(store.operations(service: "nope").isEmpty)
    }

    @Test func findTracesNewestFirstWithLimit() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        // Inserted out of start order: the result follows start times, not arrival.
        store.insert(batch("a", [span(2, 2, start: t0 + 2_000)]))
        store.insert(batch("a", [span(1, 1, start: t0 + 1_000)]))
        store.insert(batch("a", [span(3, 3, start: t0 + 3_000)]))
        store.insert(batch("b", [span(4, 4, start: t0 + 4_000)]))
        let all = store.findTraces(TraceQuery(service: "a"))
        #expect(all.map { $0[0].traceID.low } == [3, 2, 1])
        #expect(store.findTraces(TraceQuery(service: "a", limit: 2)).map { $0[0].traceID.low } == [3, 2])
        #expect(store.findTraces(TraceQuery(service: "a", limit: 0)).count == 3)
        #expect(store.findTraces(TraceQuery(service: "c")).isEmpty)
    }

    @Test func findTracesConditionsHoldOnOneSpan() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        store.insert(
            batch("a", [
                span(1, 1, name: "fast", start: t0, micros: 10, attributes: [KeyValue("http.method", .string("GET"))]),
                span(1, 2, name: "slow", start: t0 + 100, micros: 5_000),
            ]))
        // Each condition matches some span, but no single span matches both.
        #expect(store.findTraces(TraceQuery(service: "a", operation: "slow", tags: [("http.method", "GET")])).isEmpty)
        #expect(store.findTraces(TraceQuery(service: "a", operation: "fast", tags: [("http.method", "GET")])).count == 1)
        #expect(store.findTraces(TraceQuery(service: "a", durationMin: 1_000)).count == 1)
        #expect(store.findTraces(TraceQuery(service: "a", operation: "fast", durationMin: 1_000)).isEmpty)
        #expect(store.findTraces(TraceQuery(service: "a", durationMin: 10, durationMax: 10)).count == 1)
        #expect(store.findTraces(TraceQuery(service: "a", startMin: t0 + 101)).isEmpty)
        #expect(store.findTraces(TraceQuery(service: "a", startMin: t0 + 100, startMax: t0 + 100)).count == 1)
        #expect(store.findTraces(TraceQuery(service: "a", startMax: t0 - 1)).isEmpty)
        #expect(store.findTraces(TraceQuery(service: "a", operation: "nope")).isEmpty)
    }

    @Test func tagSearchLooksAtSpanProcessAndLogFields() {
        let store = TraceStore(maxSpans: 100, maxBytes: 1 << 30)
        store.insert(
            batch(
                "a",
                [
                    span(
                        1, 1, attributes: [KeyValue("http.status_code", .int(503)), KeyValue("retry", .bool(true))],
                        events: [SpanEvent(timeUnixNano: t0 * 1000, name: "exception", attributes: [KeyValue("exception.type", .string("IOError"))])],
                        status: SpanStatus(code: .error))
                ], attributes: [KeyValue("host.name", .string("h1"))]))
        store.insert(batch("a", [span(2, 2)], attributes: [KeyValue("host.name", .string("h2"))]))
        func ids(_ tags: [(String, String)]) -> [UInt64] { store.findTraces(TraceQuery(service: "a", tags: tags)).map { $0[0].traceID.low } }
        #expect(ids([("http.status_code", "503")]) == [1])
        #expect(ids([("retry", "true")]) == [1])
        #expect(ids([("host.name", "h2")]) == [2])
        #expect(ids([("event", "exception")]) == [1])
        #expect(ids([("exception.type", "IOError")]) == [1])
        #expect(ids([("error", "true")]) == [1])
        #expect(ids([("otel.status_code", "ERROR")]) == [1])
        #expect(ids([("span.kind", "server")]) == [2, 1])
        #expect(ids([("host.name", "h1"), ("retry", "true")]) == [1])
        #expect(ids([("host.name", "h2"), ("retry", "true")]).isEmpty)
    }

    @Test func operationIndexFollowsEviction() {
        let store = TraceStore(maxSpans: 2, maxBytes: 1 << 30)
        store.insert(batch("a", [span(1, 1, name: "x")]))
        store.insert(batch("a", [span(2, 2, name: "y")]))
        store.insert(batch("a", [span(3, 3, name: "y")]))
        #expect(store.operations(service: "a").map(\.name) == ["y"])
        #expect(store.findTraces(TraceQuery(service: "a", operation: "x")).isEmpty)
        #expect(store.findTraces(TraceQuery(service: "a", operation: "y")).count == 2)
    }

    @Test func concurrentInsertsAndReads() async {
        let store = TraceStore(maxSpans: 500, maxBytes: 1 << 30)
        await withTaskGroup(of: Void.self) { group in
            for worker in UInt64(0)..<4 {
                group.addTask {
                    for n in UInt64(0)..<250 {
                        store.insert(batch("w\(worker)", [span(worker * 1000 + n + 1, n + 1)]))
                        _ = store.findTraces(TraceQuery(service: "w\(worker)", limit: 5))
                    }
                }
            }
        }
        let stats = store.stats
        #expect(stats.spans == 500)
        #expect(stats.evictedSpans == 500)
        #expect(stats.traces + stats.evictedTraces == 1000)
    }
}

@Suite struct TranslationTests {
    @Test func statusKindScopeAndReferences() {
        let link = SpanLink(traceID: TraceID(high: 0, low: 0xFF), spanID: SpanID(0xEE))
        let s = span(
            1, 2, parent: 1, kind: .client, links: [link], status: SpanStatus(code: .error, message: "boom"))
        var traced = s
        traced.traceState = "k=v"
        let stored = StoredSpan(traced, process: StoredSpan.Process(serviceName: "a"), scope: InstrumentationScope(name: "lib", version: "1.2"))
        #expect(
            stored.tags == [
                .init("otel.scope.name", .string("lib")), .init("otel.scope.version", .string("1.2")),
                .init("span.kind", .string("client")), .init("otel.status_code", .string("ERROR")), .init("error", .bool(true)),
                .init("otel.status_description", .string("boom")), .init("w3c.tracestate", .string("k=v")),
            ])
        #expect(
            stored.references == [
                .init(.childOf, traceID: traceID(1), spanID: SpanID(1)),
                .init(.followsFrom, traceID: TraceID(high: 0, low: 0xFF), spanID: SpanID(0xEE)),
            ])
        var ok = span(1, 3, kind: .unspecified, status: SpanStatus(code: .ok))
        ok.flags = 0x301
        let okStored = StoredSpan(ok, process: StoredSpan.Process(serviceName: "a"), scope: InstrumentationScope())
        #expect(okStored.tags == [.init("otel.status_code", .string("OK"))])
        #expect(okStored.flags == 1)
        #expect(okStored.references.isEmpty)
    }

    @Test func aLinkToTheParentSetsItsType() {
        var s = span(1, 2, parent: 1)
        s.links = [SpanLink(traceID: traceID(1), spanID: SpanID(1), attributes: [KeyValue("opentracing.ref_type", .string("follows_from"))])]
        let stored = StoredSpan(s, process: StoredSpan.Process(serviceName: "a"), scope: InstrumentationScope())
        #expect(stored.references == [.init(.followsFrom, traceID: traceID(1), spanID: SpanID(1))])
    }

    @Test func resourceToProcess() {
        #expect(StoredSpan.process(from: Resource()) == StoredSpan.Process(serviceName: "OTLPResourceNoServiceName"))
        let process = StoredSpan.process(
            from: Resource(attributes: [KeyValue("host.name", .string("h")), KeyValue("service.name", .string("svc")), KeyValue("pid", .int(7))]))
        #expect(process == StoredSpan.Process(serviceName: "svc", tags: [.init("host.name", .string("h")), .init("pid", .int64(7))]))
    }

    @Test func valuesAndEvents() {
        let event = SpanEvent(
            timeUnixNano: 1_500_999, name: "retry",
            attributes: [
                KeyValue("list", .array([.int(1), .string("a<b"), .double(0.5)])),
                KeyValue("map", .kvlist([KeyValue("z", .bool(false)), KeyValue("a", .bytes([1, 2]))])),
                KeyValue("nothing", .empty),
            ])
        let stored = StoredSpan(span(1, 1, kind: .unspecified, events: [event]), process: StoredSpan.Process(serviceName: "a"), scope: InstrumentationScope())
        #expect(
            stored.logs == [
                StoredSpan.Log(
                    timestamp: 1_500,
                    fields: [
                        .init("event", .string("retry")), .init("list", .string(#"[1,"a\u003cb",0.5]"#)),
                        .init("map", .string(#"{"a":"AQI=","z":false}"#)), .init("nothing", .string("")),
                    ])
            ])
        // An `event` attribute wins over the name.
        let named = SpanEvent(name: "n", attributes: [KeyValue("event", .string("e"))])
        let withEvent = StoredSpan(span(1, 1, events: [named]), process: StoredSpan.Process(serviceName: "a"), scope: InstrumentationScope())
        #expect(withEvent.logs[0].fields == [.init("event", .string("e"))])
    }

    @Test func goFloatFormat() {
        #expect(JSONWriter.goFloat(72.5) == "72.5")
        #expect(JSONWriter.goFloat(3) == "3")
        #expect(JSONWriter.goFloat(-0.25) == "-0.25")
        #expect(JSONWriter.goFloat(1e-7) == "1e-7")
        #expect(JSONWriter.goFloat(1e21) == "1e+21")
        #expect(JSONWriter.goFloat(1.2345678901234568e20) == "123456789012345680000")
        #expect(JSONWriter.goFloat(0.000001) == "0.000001")
        #expect(JSONWriter.goFloat(.nan) == "NaN")
    }
}
