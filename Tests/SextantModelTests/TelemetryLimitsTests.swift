import SextantModel
import Testing

@Suite struct TelemetryLimitsTests {
    static func attrs(_ n: Int, value: AnyValue = .int(1)) -> [KeyValue] { (0..<n).map { KeyValue("k\($0)", value) } }

    static func span(attributes: [KeyValue] = [], events: Int = 0, links: Int = 0, eventAttributes: [KeyValue] = []) -> Span {
        Span(
            traceID: TraceID(high: 0, low: 1), spanID: SpanID(1), name: "s", attributes: attributes,
            events: (0..<events).map { SpanEvent(name: "e\($0)", attributes: eventAttributes) },
            links: (0..<links).map { _ in SpanLink(traceID: TraceID(high: 0, low: 2), spanID: SpanID(2)) })
    }

    static func traces(_ spans: [Span], resource: [KeyValue] = []) -> Telemetry {
        .traces(TracesData(resourceSpans: [ResourceSpans(resource: Resource(attributes: resource), scopeSpans: [ScopeSpans(spans: spans)])]))
    }

    static func spans(_ t: Telemetry) -> [Span] {
        guard case .traces(let d) = t else { return [] }
        return d.resourceSpans.flatMap { $0.scopeSpans.flatMap(\.spans) }
    }

    let limits = TelemetryLimits(maxAttributes: 4, maxAttributeValueLength: 8, maxEvents: 2, maxLinks: 3)

    @Test func underAndAtTheLimitsNothingChanges() {
        let original = Self.traces([
            Self.span(attributes: Self.attrs(4, value: .string("12345678")), events: 2, links: 3, eventAttributes: Self.attrs(4)),
            Self.span(attributes: Self.attrs(1)),
        ], resource: Self.attrs(4))
        var t = original
        #expect(limits.apply(to: &t).isZero)
        #expect(t == original)
    }

    @Test func overTheLimitsDropsTheExcessAndCountsIt() {
        var t = Self.traces(
            [Self.span(attributes: Self.attrs(6), events: 5, links: 4, eventAttributes: Self.attrs(5))], resource: Self.attrs(7))
        let c = limits.apply(to: &t)
        let s = Self.spans(t)[0]
        #expect(s.attributes.map(\.key) == ["k0", "k1", "k2", "k3"])  // the first ones are kept
        #expect(s.droppedAttributesCount == 2)
        #expect(s.events.map(\.name) == ["e0", "e1"])
        #expect(s.droppedEventsCount == 3)
        #expect(s.links.count == 3 && s.droppedLinksCount == 1)
        #expect(s.events.allSatisfy { $0.attributes.count == 4 && $0.droppedAttributesCount == 1 })
        guard case .traces(let d) = t else { return }
        #expect(d.resourceSpans[0].resource.attributes.count == 4 && d.resourceSpans[0].resource.droppedAttributesCount == 3)
        // 2 on the span, 1 on each of the 2 kept events (the 3 dropped events are not counted twice), 3 on the resource.
        #expect(c == TelemetryLimits.Counts(droppedAttributes: 7, truncatedAttributes: 0, droppedEvents: 3, droppedLinks: 1))
    }

    @Test func droppedCountsAddToWhatTheSenderReported() {
        var span = Self.span(attributes: Self.attrs(5), events: 3)
        span.droppedAttributesCount = 10
        span.droppedEventsCount = UInt32.max - 1
        var t = Self.traces([span])
        limits.apply(to: &t)
        let s = Self.spans(t)[0]
        #expect(s.droppedAttributesCount == 11)
        #expect(s.droppedEventsCount == UInt32.max)  // saturates
    }

    @Test func truncationIsUTF8SafeAndCounted() {
        #expect(TelemetryLimits.truncate("abcdefghij", toUTF8Length: 8) == "abcdefgh")
        #expect(TelemetryLimits.truncate("short", toUTF8Length: 8) == "short")
        #expect(TelemetryLimits.truncate("", toUTF8Length: 0) == "")
        // "é" is 2 bytes, "€" 3, "😀" 4: a cut inside a scalar backs off to its start.
        #expect(TelemetryLimits.truncate("abcdefgé", toUTF8Length: 8) == "abcdefg")
        #expect(TelemetryLimits.truncate("ab€€", toUTF8Length: 6) == "ab€")
        #expect(TelemetryLimits.truncate("ab€€", toUTF8Length: 7) == "ab€")
        #expect(TelemetryLimits.truncate("ab€€", toUTF8Length: 8) == "ab€€")
        #expect(TelemetryLimits.truncate("😀😀", toUTF8Length: 7) == "😀")
        #expect(TelemetryLimits.truncate("😀", toUTF8Length: 3) == "")

        var t = Self.traces([
            Self.span(attributes: [
                KeyValue("s", .string("0123456789")), KeyValue("b", .bytes(Array(0..<20))), KeyValue("n", .int(123_456_789_012)),
                KeyValue("a", .array([.string("ok"), .string("😀😀😀")])),
                KeyValue("kv", .kvlist([KeyValue("x", .string("abcdefghijk"))])),
            ])
        ])
        let c = TelemetryLimits(maxAttributes: 8, maxAttributeValueLength: 8).apply(to: &t)
        let a = Self.spans(t)[0].attributes
        #expect(a[key: "s"] == .string("01234567"))
        #expect(a[key: "b"] == .bytes(Array(0..<8)))
        #expect(a[key: "n"] == .int(123_456_789_012))
        #expect(a[key: "a"] == .array([.string("ok"), .string("😀😀")]))
        #expect(a[key: "kv"] == .kvlist([KeyValue("x", .string("abcdefgh"))]))
        #expect(c == TelemetryLimits.Counts(truncatedAttributes: 4))
        #expect(Self.spans(t)[0].droppedAttributesCount == 0)  // cutting a value does not drop the attribute
    }

    @Test func logsAndMetricPointsAreLimitedToo() {
        var logs = Telemetry.logs(
            LogsData(resourceLogs: [
                ResourceLogs(scopeLogs: [
                    ScopeLogs(
                        scope: InstrumentationScope(name: "s", attributes: Self.attrs(5)),
                        logRecords: [LogRecord(body: .string(String(repeating: "x", count: 100)), attributes: Self.attrs(6, value: .string("long value")))])
                ])
            ]))
        let lc = limits.apply(to: &logs)
        guard case .logs(let l) = logs else { return }
        let sl = l.resourceLogs[0].scopeLogs[0]
        #expect(sl.scope.attributes.count == 4 && sl.scope.droppedAttributesCount == 1)
        #expect(sl.logRecords[0].attributes.count == 4 && sl.logRecords[0].droppedAttributesCount == 2)
        #expect(sl.logRecords[0].attributes.allSatisfy { $0.value == .string("long val") })
        #expect(sl.logRecords[0].body == .string(String(repeating: "x", count: 100)))  // bodies are not attributes
        #expect(lc == TelemetryLimits.Counts(droppedAttributes: 3, truncatedAttributes: 4))

        var metrics = Telemetry.metrics(
            MetricsData(resourceMetrics: [
                ResourceMetrics(scopeMetrics: [
                    ScopeMetrics(metrics: [
                        Metric(name: "g", data: .gauge([NumberDataPoint(attributes: Self.attrs(9)), NumberDataPoint(attributes: Self.attrs(2))])),
                        Metric(name: "h", data: .histogram([HistogramDataPoint(attributes: Self.attrs(5))], temporality: .cumulative)),
                    ])
                ])
            ]))
        let mc = limits.apply(to: &metrics)
        guard case .metrics(let m) = metrics else { return }
        let ms = m.resourceMetrics[0].scopeMetrics[0].metrics
        guard case .gauge(let g) = ms[0].data, case .histogram(let h, let temporality) = ms[1].data else {
            Issue.record("metric kinds changed")
            return
        }
        #expect(g.map(\.attributes.count) == [4, 2])
        #expect(h[0].attributes.count == 4 && temporality == .cumulative)
        #expect(mc == TelemetryLimits.Counts(droppedAttributes: 6))
    }

    @Test func zeroMeansUnlimited() {
        let original = Self.traces([Self.span(attributes: Self.attrs(500, value: .string(String(repeating: "y", count: 100_000))), events: 300)])
        var t = original
        #expect(TelemetryLimits.unlimited.apply(to: &t).isZero)
        #expect(t == original)
        var onlyCount = TelemetryLimits.unlimited
        onlyCount.maxAttributes = 10
        #expect(onlyCount.apply(to: &t) == TelemetryLimits.Counts(droppedAttributes: 490))
        #expect(Self.spans(t)[0].events.count == 300)
    }

    @Test func defaultsAreTheSDKsPlusAValueBound() {
        let d = TelemetryLimits()
        #expect(d.maxAttributes == 128 && d.maxEvents == 128 && d.maxLinks == 128 && d.maxAttributeValueLength == 65536)
    }
}
