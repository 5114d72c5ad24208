import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

@Suite struct DeltaToCumulativeTests {
    let clock = ManualClock()
    let out = RecordingConsumer()
    let telemetry = SelfTelemetry()

    func processor(_ configure: (inout DeltaToCumulativeConfig) -> Void = { _ in }) -> DeltaToCumulativeProcessor<ManualClock> {
        var c = DeltaToCumulativeConfig()
        configure(&c)
        return DeltaToCumulativeProcessor(c, settings: settings("deltatocumulative", telemetry), pipeline: pipeline, next: out, clock: clock)
    }

    func dropped(_ reason: String) -> Int64? {
        telemetry.value(
            "sextant_processor_deltatocumulative_dropped_points_total",
            labels: [("processor", "deltatocumulative"), ("pipeline", "metrics"), ("reason", reason)])
    }

    @Test func deltaSumsAccumulatePerStreamAndOutOfOrderIsDropped() async throws {
        let p = processor()
        let a = [KeyValue("code", .string("200"))]
        let b = [KeyValue("code", .string("500"))]
        let steps: [([NumberDataPoint], [NP])] = [
            ([point(1, start: t(0), time: t(10), a), point(5, start: t(0), time: t(10), b)], [NP(t(0), t(10), 1), NP(t(0), t(10), 5)]),
            ([point(2, start: t(10), time: t(20), a)], [NP(t(0), t(20), 3)]),
            ([point(9, start: t(15), time: t(25), a)], []),  // overlaps (10, 20]: would count twice
            ([point(9, start: t(10), time: t(20), a)], []),  // the same interval again
            ([point(9, start: t(5), time: t(8), b)], []),  // older than what b reported
            ([point(4, start: t(30), time: t(40), a)], [NP(t(0), t(40), 7)]),  // a gap is fine
            ([point(1, start: t(10), time: t(20), b)], [NP(t(0), t(20), 6)]),
            ([point(1, start: 0, time: t(50), a)], [NP(t(0), t(50), 8)]),  // unknown start: only the time is checked
        ]
        for (i, (input, expected)) in steps.enumerated() {
            let before = sumPoints(out).count
            try await p.consume(batch(sum("requests", input, .delta)))
            #expect(Array(sumPoints(out).dropFirst(before)).map(NP.init) == expected, "step \(i)")
        }
        #expect(dropped("out_of_order") == 3)
        for e in received(out) {
            guard case .sum(_, .cumulative, true) = e.metric.data else { Issue.record("not a cumulative sum"); continue }
        }
    }

    @Test func nonMonotonicDoublesAccumulateAndIntOverflowStartsOver() async throws {
        let p = processor()
        try await p.consume(batch(sum("queue", [dpoint(2.5, start: t(0), time: t(1))], .delta, monotonic: false)))
        try await p.consume(batch(sum("queue", [dpoint(-4, start: t(1), time: t(2))], .delta, monotonic: false)))
        #expect(sumPoints(out).map(NP.init) == [NP(t(0), t(1), 2.5), NP(t(0), t(2), -1.5)])
        guard case .sum(_, .cumulative, false) = received(out)[1].metric.data else {
            Issue.record("monotonicity changed")
            return
        }
        try await p.consume(batch(sum("big", [point(.max - 1, start: t(0), time: t(1))], .delta)))
        try await p.consume(batch(sum("big", [point(5, start: t(1), time: t(2))], .delta)))
        // Int64 would overflow: the stream starts over at this point rather than wrapping or trapping.
        #expect(sumPoints(out).suffix(2).map(NP.init) == [NP(t(0), t(1), Double(Int64.max - 1)), NP(t(1), t(2), 5)])
    }

    @Test func deltaHistogramsAccumulateWithRunningMinMax() async throws {
        let p = processor()
        let steps: [(HistogramDataPoint, (count: UInt64, sum: Double, buckets: [UInt64], start: UInt64, min: Double?, max: Double?)?)] = [
            (hpoint(count: 2, sum: 3, buckets: [1, 1, 0], start: t(0), time: t(1), min: 0.5, max: 2.5), (2, 3, [1, 1, 0], t(0), 0.5, 2.5)),
            (hpoint(count: 3, sum: 30, buckets: [0, 2, 1], start: t(1), time: t(2), min: 2, max: 20), (5, 33, [1, 3, 1], t(0), 0.5, 20)),
            (hpoint(count: 1, sum: 1, buckets: [1, 0, 0], start: t(1), time: t(3)), nil),  // overlaps
            (hpoint(count: 1, sum: 1, buckets: [1, 0, 0], start: t(2), time: t(3)), (6, 34, [2, 3, 1], t(0), nil, nil)),  // no min/max: unknown
            // New bucket layout: the stream starts over from this point.
            (hpoint(count: 4, sum: 8, buckets: [4, 0], bounds: [5], start: t(3), time: t(4)), (4, 8, [4, 0], t(3), nil, nil)),
            (hpoint(count: 1, sum: 6, buckets: [0, 1], bounds: [5], start: t(4), time: t(5)), (5, 14, [4, 1], t(3), nil, nil)),
        ]
        for (i, (input, expected)) in steps.enumerated() {
            let before = histogramPoints(out).count
            try await p.consume(batch(Metric(name: "latency", data: .histogram([input], temporality: .delta))))
            let got = Array(histogramPoints(out).dropFirst(before))
            guard let e = expected else {
                #expect(got.isEmpty, "step \(i)")
                continue
            }
            guard let h = got.first else {
                Issue.record("step \(i): nothing out")
                continue
            }
            #expect(h.count == e.count && h.sum == e.sum && h.bucketCounts == e.buckets, "step \(i): \(h)")
            #expect(h.startTimeUnixNano == e.start && h.timeUnixNano == input.timeUnixNano && h.min == e.min && h.max == e.max, "step \(i): \(h)")
        }
        #expect(dropped("out_of_order") == 1)
    }

    @Test func staleStreamsStartOverAndMaxStreamsIsEnforced() async throws {
        let p = processor {
            $0.maxStale = .seconds(30)
            $0.maxStreams = 2
        }
        func series(_ n: Int, _ v: Int64, _ start: UInt64, _ time: UInt64) -> NumberDataPoint {
            point(v, start: start, time: time, [KeyValue("n", .int(Int64(n)))])
        }
        try await p.consume(batch(sum("c", [series(1, 1, t(0), t(1)), series(2, 1, t(0), t(1)), series(3, 1, t(0), t(1))], .delta)))
        #expect(sumPoints(out).count == 2)
        #expect(dropped("stream_limit") == 1)
        clock.advance(by: .seconds(20))
        try await p.consume(batch(sum("c", [series(1, 2, t(1), t(20))], .delta)))
        clock.advance(by: .seconds(20))  // series 2 idle for 40 s: forgotten, room for series 3
        try await p.consume(batch(sum("c", [series(3, 7, t(30), t(40)), series(2, 1, t(30), t(40))], .delta)))
        #expect(sumPoints(out).map(NP.init) == [NP(t(0), t(1), 1), NP(t(0), t(1), 1), NP(t(0), t(20), 3), NP(t(30), t(40), 7)])
        #expect(dropped("stream_limit") == 2)  // series 2 came back while series 1 and 3 fill the table
        clock.advance(by: .seconds(31))
        // Series 1 went stale too: its next delta starts a new cumulative stream.
        try await p.consume(batch(sum("c", [series(1, 4, t(60), t(71))], .delta)))
        #expect(sumPoints(out).last.map(NP.init) == NP(t(60), t(71), 4))
    }

    @Test func cumulativeAndOtherMetricsPassUnchanged() async throws {
        let p = processor()
        let input = Telemetry.metrics(
            MetricsData(resourceMetrics: [
                ResourceMetrics(scopeMetrics: [
                    ScopeMetrics(metrics: [
                        sum("c", [point(5, start: t(0), time: t(1))]),
                        Metric(name: "g", data: .gauge([point(5, start: 0, time: t(1))])),
                        Metric(name: "e", data: .exponentialHistogram([ExponentialHistogramDataPoint(count: 1)], temporality: .delta)),
                    ])
                ])
            ]))
        try await p.consume(input)
        #expect(out.batches == [input])
    }
}
