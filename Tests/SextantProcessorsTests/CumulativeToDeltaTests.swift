import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

@Suite struct CumulativeToDeltaTests {
    let clock = ManualClock()
    let out = RecordingConsumer()
    let telemetry = SelfTelemetry()

    func processor(_ configure: (inout CumulativeToDeltaConfig) -> Void = { _ in }) -> CumulativeToDeltaProcessor<ManualClock> {
        var c = CumulativeToDeltaConfig()
        configure(&c)
        return CumulativeToDeltaProcessor(
            c, settings: settings("cumulativetodelta", telemetry), pipeline: pipeline, next: out, clock: clock, startTime: processorStart)
    }

    func dropped(_ reason: String) -> Int64? {
        telemetry.value(
            "sextant_processor_cumulativetodelta_dropped_points_total",
            labels: [("processor", "cumulativetodelta"), ("pipeline", "metrics"), ("reason", reason)])
    }

    /// initial_value × where the first point's start time lies → whether the first point is sent.
    static let initialValueTable: [(CumulativeToDeltaConfig.InitialValue, start: UInt64, time: UInt64, sent: Bool)] = [
        (.auto, processorStart + 5, processorStart + 100, true),  // counter started after us
        (.auto, processorStart - 5, processorStart + 100, false),  // started before us: history we never saw
        (.auto, 0, processorStart + 100, false),  // unknown start
        (.auto, processorStart + 100, processorStart + 100, false),  // start == time
        (.keep, processorStart - 5, processorStart + 100, true),
        (.keep, 0, processorStart + 100, true),
        (.drop, processorStart + 5, processorStart + 100, false),
        (.drop, processorStart - 5, processorStart + 100, false),
    ]

    @Test(arguments: initialValueTable)
    func firstPoint(_ row: (CumulativeToDeltaConfig.InitialValue, start: UInt64, time: UInt64, sent: Bool)) async throws {
        let p = processor { $0.initialValue = row.0 }
        try await p.consume(batch(sum("c", [point(7, start: row.start, time: row.time)])))
        #expect(sumPoints(out).map(NP.init) == (row.sent ? [NP(row.start, row.time, 7)] : []))
        #expect(dropped("initial_value") == (row.sent ? 0 : 1))
        // Either way the point is the base of the next delta.
        try await p.consume(batch(sum("c", [point(10, start: row.start, time: row.time + 10)])))
        #expect(sumPoints(out).last.map(NP.init) == NP(row.time, row.time + 10, 3))
    }

    @Test func sumsBecomeDeltasPerStreamWithResetsAndOrdering() async throws {
        let p = processor()
        let a = [KeyValue("code", .string("200"))]
        let b = [KeyValue("code", .string("500"))]
        let s1 = s0 + 50
        // (input points, expected output points)
        let steps: [([NumberDataPoint], [NP])] = [
            ([point(10, start: s0, time: t(1), a), point(1, start: s0, time: t(1), b)], [NP(s0, t(1), 10), NP(s0, t(1), 1)]),
            ([point(15, start: s0, time: t(2), a)], [NP(t(1), t(2), 5)]),
            ([point(15, start: s0, time: t(3), a), point(4, start: s0, time: t(3), b)], [NP(t(2), t(3), 0), NP(t(1), t(3), 3)]),
            ([point(3, start: s0, time: t(4), a)], [NP(t(3), t(4), 3)]),  // went down: a reset, the value is the delta
            ([point(2, start: s0, time: t(4), a)], []),  // same time as the last point: out of order
            ([point(9, start: s0, time: t(3), b)], []),  // older than the last point: out of order
            ([point(4, start: s1, time: t(5), a)], [NP(s1, t(5), 4)]),  // new start time: a new stream (auto keeps it)
            ([point(6, start: s1, time: t(6), a)], [NP(t(5), t(6), 2)]),
        ]
        for (i, (input, expected)) in steps.enumerated() {
            let before = sumPoints(out).count
            try await p.consume(batch(sum("requests", input)))
            #expect(Array(sumPoints(out).dropFirst(before)).map(NP.init) == expected, "step \(i)")
        }
        #expect(dropped("out_of_order") == 2)
        // Every output metric is a monotonic delta sum; the attributes stay with their points.
        for e in received(out) {
            guard case .sum(_, .delta, true) = e.metric.data else { Issue.record("not a delta sum: \(e.metric.data)"); continue }
        }
        #expect(sumPoints(out)[1].attributes == b)
    }

    @Test func streamsAreKeyedByResourceScopeNameAndAttributeSet() async throws {
        let p = processor { $0.initialValue = .keep }
        let attrs = [KeyValue("a", .string("1")), KeyValue("b", .int(2))]
        try await p.consume(batch(sum("c", [point(10, start: s0, time: t(1), attrs)]), resource: resource("x")))
        try await p.consume(batch(sum("c", [point(20, start: s0, time: t(1), attrs)]), resource: resource("y")))
        try await p.consume(batch(sum("c", [point(30, start: s0, time: t(1), attrs)]), resource: resource("x"), scope: InstrumentationScope(name: "other")))
        try await p.consume(batch(sum("d", [point(40, start: s0, time: t(1), attrs)]), resource: resource("x")))
        // Same stream as the first: the attribute order does not matter.
        try await p.consume(batch(sum("c", [point(12, start: s0, time: t(2), attrs.reversed())]), resource: resource("x")))
        #expect(sumPoints(out).map(\.value.asDouble) == [10, 20, 30, 40, 2])
        #expect(telemetry.value("sextant_processor_cumulativetodelta_streams", labels: [("processor", "cumulativetodelta"), ("pipeline", "metrics")]) == 4)
    }

    @Test func histogramsConvertBucketsCountAndSumAndDropMinMax() async throws {
        let p = processor()
        let steps: [(HistogramDataPoint, (count: UInt64, sum: Double, buckets: [UInt64], start: UInt64)?)] = [
            (hpoint(count: 3, sum: 12, buckets: [1, 1, 1], start: s0, time: t(1), min: 0.5, max: 9), (3, 12, [1, 1, 1], s0)),
            (hpoint(count: 7, sum: 30, buckets: [2, 4, 1], start: s0, time: t(2), min: 0.5, max: 9), (4, 18, [1, 3, 0], t(1))),
            // One bucket went down: the histogram was reset, its values are the delta.
            (hpoint(count: 8, sum: 31, buckets: [1, 6, 1], start: s0, time: t(3)), (8, 31, [1, 6, 1], t(2))),
            (hpoint(count: 9, sum: 32, buckets: [1, 7, 1], start: s0, time: t(4)), (1, 1, [0, 1, 0], t(3))),
            // New bucket layout: a new stream; its start is before the processor's, so auto withholds it.
            (hpoint(count: 9, sum: 32, buckets: [1, 8], bounds: [5], start: processorStart - 1, time: t(5)), nil),
            (hpoint(count: 11, sum: 40, buckets: [2, 9], bounds: [5], start: processorStart - 1, time: t(6)), (2, 8, [1, 1], t(5))),
        ]
        for (i, (input, expected)) in steps.enumerated() {
            let before = histogramPoints(out).count
            try await p.consume(batch(Metric(name: "latency", unit: "ms", data: .histogram([input], temporality: .cumulative))))
            let got = Array(histogramPoints(out).dropFirst(before))
            guard let expected else {
                #expect(got.isEmpty, "step \(i)")
                continue
            }
            #expect(got.count == 1, "step \(i)")
            guard let h = got.first else { continue }
            #expect(h.count == expected.count && h.sum == expected.sum && h.bucketCounts == expected.buckets, "step \(i): \(h)")
            #expect(h.startTimeUnixNano == expected.start && h.timeUnixNano == input.timeUnixNano, "step \(i)")
            #expect(h.min == nil && h.max == nil)
        }
        guard case .histogram(_, .delta) = received(out)[0].metric.data else {
            Issue.record("not delta")
            return
        }
        #expect(received(out)[0].metric.unit == "ms")
    }

    @Test func otherMetricsPassUnchanged() async throws {
        let p = processor { $0.initialValue = .keep }
        let metrics = [
            sum("updown", [point(5, start: s0, time: t(1))], monotonic: false),
            sum("already_delta", [point(5, start: s0, time: t(1))], .delta),
            Metric(name: "g", data: .gauge([point(5, start: 0, time: t(1))])),
            Metric(name: "e", data: .exponentialHistogram([ExponentialHistogramDataPoint(count: 1)], temporality: .cumulative)),
            Metric(name: "s", data: .summary([SummaryDataPoint(count: 1, sum: 2)])),
        ]
        let input = Telemetry.metrics(MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: metrics)])]))
        try await p.consume(input)
        try await p.consume(input)
        #expect(out.batches == [input, input])
    }

    @Test func includeAndExcludeByNameExcludeWins() async throws {
        let d = Diagnostics()
        let node = try #require(
            YAMLLoader.parse(
                """
                include: {match_type: regexp, metrics: ["^http_"]}
                exclude: {match_type: strict, metrics: [http_skip_total]}
                initial_value: keep
                """, file: "t", diagnostics: d))
        var r = ConfigReader(node, path: "processors::cumulativetodelta", diagnostics: d)
        let c = CumulativeToDeltaProcessorFactory().parseConfig(&r) as! CumulativeToDeltaConfig
        r.finish()
        #expect(d.errors.isEmpty)
        let p = CumulativeToDeltaProcessor(c, settings: settings("cumulativetodelta", telemetry), pipeline: pipeline, next: out, clock: clock)
        for round in UInt64(1)...2 {
            let metrics = ["http_requests_total", "http_skip_total", "grpc_calls_total"].map { sum($0, [point(Int64(round * 10), start: s0, time: t(round))]) }
            try await p.consume(.metrics(MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: metrics)])])))
        }
        let last = received(out).suffix(3)
        let byName = Dictionary(uniqueKeysWithValues: last.map { ($0.metric.name, $0.metric.data) })
        #expect(byName["http_requests_total"] == .sum([point(10, start: t(1), time: t(2))], temporality: .delta, isMonotonic: true))
        #expect(byName["http_skip_total"] == .sum([point(20, start: s0, time: t(2))], temporality: .cumulative, isMonotonic: true))
        #expect(byName["grpc_calls_total"] == .sum([point(20, start: s0, time: t(2))], temporality: .cumulative, isMonotonic: true))
    }

    @Test func staleStreamsAreForgotten() async throws {
        let p = processor { $0.maxStaleness = .seconds(60) }
        let old = processorStart - 1  // started before us: auto drops first points
        try await p.consume(batch(sum("c", [point(10, start: old, time: t(1))])))
        clock.advance(by: .seconds(59))
        try await p.consume(batch(sum("c", [point(12, start: old, time: t(60))])))
        #expect(sumPoints(out).map(NP.init) == [NP(t(1), t(60), 2)])
        clock.advance(by: .seconds(61))
        // Not seen for more than max_staleness: the stream starts again, and its first point is withheld.
        try await p.consume(batch(sum("c", [point(20, start: old, time: t(121))])))
        #expect(sumPoints(out).count == 1)
        #expect(dropped("initial_value") == 2)
        #expect(telemetry.value("sextant_processor_cumulativetodelta_streams", labels: [("processor", "cumulativetodelta"), ("pipeline", "metrics")]) == 1)
    }

    @Test func maxStreamsBoundsStateAndExpiryFreesRoom() async throws {
        let p = processor {
            $0.maxStreams = 2
            $0.maxStaleness = .seconds(10)
            $0.initialValue = .keep
        }
        func series(_ n: Int, _ v: Int64, _ time: UInt64) -> NumberDataPoint { point(v, start: s0, time: time, [KeyValue("n", .int(Int64(n)))]) }
        try await p.consume(batch(sum("c", [series(1, 1, t(1)), series(2, 1, t(1)), series(3, 1, t(1))])))
        #expect(sumPoints(out).count == 2)
        #expect(dropped("stream_limit") == 1)
        clock.advance(by: .seconds(5))
        try await p.consume(batch(sum("c", [series(1, 3, t(5))])))  // keeps series 1 alive
        clock.advance(by: .seconds(6))  // series 2 is now idle for 11 s
        try await p.consume(batch(sum("c", [series(3, 4, t(11))])))
        #expect(sumPoints(out).map(\.value.asDouble) == [1, 1, 2, 4])
        #expect(dropped("stream_limit") == 1)
    }

    @Test func nanIsDroppedAndNoRecordedValueEndsTheStream() async throws {
        let p = processor { $0.initialValue = .keep }
        try await p.consume(batch(sum("c", [dpoint(1, start: s0, time: t(1))])))
        try await p.consume(batch(sum("c", [dpoint(.nan, start: s0, time: t(2))])))
        var marker = dpoint(0, start: s0, time: t(3))
        marker.flags = DataPointFlags.noRecordedValue
        try await p.consume(batch(sum("c", [marker])))
        try await p.consume(batch(sum("c", [dpoint(5, start: s0, time: t(4))])))
        #expect(sumPoints(out).map(\.flags) == [0, DataPointFlags.noRecordedValue, 0])
        #expect(sumPoints(out).last.map(NP.init) == NP(s0, t(4), 5))  // a first point again
        #expect(dropped("invalid") == 1)
    }

    @Test func batchesLeftEmptyAreNotForwarded() async throws {
        let p = processor { $0.initialValue = .drop }
        try await p.consume(batch(sum("c", [point(1, start: s0, time: t(1))])))
        #expect(out.batches.isEmpty)
        #expect(
            telemetry.value(
                "sextant_processor_dropped_items_total", labels: [("processor", "cumulativetodelta"), ("pipeline", "metrics"), ("signal", "metrics")]) == 1)
    }
}
