import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

@Suite struct CardinalityGuardTests {
    let clock = ManualClock()
    let out = RecordingConsumer()
    let telemetry = SelfTelemetry()
    let overflowAttrs = [KeyValue("otel_metric_overflow", .bool(true))]

    func processor(limit: Int, _ configure: (inout CardinalityGuardConfig) -> Void = { _ in }) -> CardinalityGuardProcessor<ManualClock> {
        var c = CardinalityGuardConfig()
        c.maxSeriesPerMetric = limit
        configure(&c)
        return CardinalityGuardProcessor(c, settings: settings("cardinalityguard", telemetry), pipeline: pipeline, next: out, clock: clock)
    }

    var foldedCount: Int64? {
        telemetry.value("sextant_processor_cardinalityguard_overflow_points_total", labels: [("processor", "cardinalityguard"), ("pipeline", "metrics")])
    }

    func dropped(_ reason: String) -> Int64? {
        telemetry.value(
            "sextant_processor_cardinalityguard_dropped_points_total",
            labels: [("processor", "cardinalityguard"), ("pipeline", "metrics"), ("reason", reason)])
    }

    func user(_ id: String) -> [KeyValue] { [KeyValue("user", .string(id))] }

    /// The points of metric `name` in the last batch, split into regular and overflow points.
    func last(_ name: String) -> (regular: [NumberDataPoint], overflow: [NumberDataPoint]) {
        guard case .metrics(let m)? = out.batches.last else { return ([], []) }
        let points = m.resourceMetrics.flatMap { $0.scopeMetrics.flatMap { $0.metrics.filter { $0.name == name } } }.flatMap { metric -> [NumberDataPoint] in
            if case .sum(let p, _, _) = metric.data { return p }
            return []
        }
        return (points.filter { $0.attributes != overflowAttrs }, points.filter { $0.attributes == overflowAttrs })
    }

    @Test func deltaSumsBeyondTheLimitFoldIntoOneOverflowSeries() async throws {
        let p = processor(limit: 2)
        try await p.consume(
            batch(
                sum(
                    "requests",
                    [
                        point(1, start: t(0), time: t(10), user("a")), point(2, start: t(0), time: t(10), user("b")),
                        point(3, start: t(1), time: t(10), user("c")), point(4, start: t(0), time: t(11), user("d")),
                    ], .delta)))
        var got = last("requests")
        #expect(got.regular.map(\.attributes) == [user("a"), user("b")])
        #expect(got.overflow.map(NP.init) == [NP(t(0), t(11), 7)])
        #expect(foldedCount == 2)
        // The next batch: admitted series pass, the others keep folding; the overflow point is per batch.
        try await p.consume(batch(sum("requests", [point(5, start: t(10), time: t(20), user("c")), point(6, start: t(10), time: t(20), user("a"))], .delta)))
        got = last("requests")
        #expect(got.regular.map(NP.init) == [NP(t(10), t(20), 6)])
        #expect(got.overflow.map(NP.init) == [NP(t(10), t(20), 5)])
        // Another metric name has its own budget.
        try await p.consume(batch(sum("errors", [point(1, start: t(0), time: t(10), user("x")), point(1, start: t(0), time: t(10), user("y"))], .delta)))
        #expect(last("errors").regular.count == 2)
        #expect(foldedCount == 3)
        guard case .metrics(let m)? = out.batches.first else { return }
        // The overflow metric keeps the metric's kind, temporality and monotonicity.
        let overflowMetric = m.resourceMetrics.flatMap { $0.scopeMetrics.flatMap(\.metrics) }.last!
        #expect(overflowMetric.data == .sum([NumberDataPoint(attributes: overflowAttrs, startTimeUnixNano: t(0), timeUnixNano: t(11), value: .int(7))], temporality: .delta, isMonotonic: true))
    }

    @Test func cumulativeOverflowCountsWhatTheFoldedSeriesAdded() async throws {
        let p = processor(limit: 1)
        let steps: [([NumberDataPoint], overflow: NP?)] = [
            ([point(100, start: t(0), time: t(10), user("a")), point(5, start: t(1), time: t(10), user("b")), point(7, start: t(2), time: t(10), user("c"))],
             NP(t(1), t(10), 12)),
            ([point(8, start: t(1), time: t(20), user("b"))], NP(t(1), t(20), 15)),  // b: 5 → 8, c still 7
            ([point(110, start: t(0), time: t(20), user("a"))], nil),  // admitted: passes, no overflow point
            // c was reset (7 → 2, new start): its 7 stays counted and its 2 is new.
            ([point(2, start: t(25), time: t(30), user("c"))], NP(t(1), t(30), 17)),
            ([point(9, start: t(1), time: t(40), user("b"))], NP(t(1), t(40), 18)),
            ([point(1, start: t(1), time: t(50), user("b"))], NP(t(1), t(50), 19)),  // a decrease alone is a reset too
        ]
        for (i, (input, expected)) in steps.enumerated() {
            try await p.consume(batch(sum("bytes", input)))
            #expect(last("bytes").overflow.map(NP.init) == (expected.map { [$0] } ?? []), "step \(i)")
        }
        #expect(last("bytes").regular.isEmpty)
        #expect(foldedCount == 6)
    }

    @Test func limitCountsAcrossResourcesAndOverflowKeepsSharedResourceAttributes() async throws {
        let p = processor(limit: 2)
        let env = KeyValue("env", .string("prod"))
        for svc in ["x", "y", "z", "w"] {
            try await p.consume(batch(sum("requests", [point(1, start: t(0), time: t(1), user("a"))], .delta), resource: resource(svc, [env])))
        }
        // x and y fill the budget of "requests"; z and w are folded.
        let all = received(out)
        #expect(all.map { $0.resource.serviceName } == ["x", "y", "z", nil])
        #expect(all[2].resource.attributes == resource("z", [env]).attributes)  // so far only z is folded
        #expect(all[3].resource.attributes == [env])  // z and w share env only
        #expect(all.suffix(2).allSatisfy { e in
            if case .sum(let p, _, _) = e.metric.data { return p.map(\.attributes) == [overflowAttrs] }
            return false
        })
        #expect(telemetry.value("sextant_processor_cardinalityguard_streams", labels: [("processor", "cardinalityguard"), ("pipeline", "metrics")]) == 2)
    }

    @Test func expiryFreesRoomUnderTheLimit() async throws {
        let p = processor(limit: 1) { $0.metricExpiration = .seconds(60) }
        try await p.consume(batch(sum("c", [point(1, start: t(0), time: t(1), user("a")), point(1, start: t(0), time: t(1), user("b"))], .delta)))
        #expect(last("c").regular.map(\.attributes) == [user("a")])
        #expect(last("c").overflow.count == 1)
        clock.advance(by: .seconds(30))
        try await p.consume(batch(sum("c", [point(1, start: t(1), time: t(30), user("a"))], .delta)))
        clock.advance(by: .seconds(31))  // a seen 31 s ago: still admitted
        try await p.consume(batch(sum("c", [point(1, start: t(30), time: t(61), user("b"))], .delta)))
        #expect(last("c").overflow.count == 1)
        clock.advance(by: .seconds(61))  // a idle for 92 s: forgotten
        try await p.consume(batch(sum("c", [point(1, start: t(61), time: t(122), user("b"))], .delta)))
        #expect(last("c").regular.map(\.attributes) == [user("b")])
        #expect(last("c").overflow.isEmpty)
    }

    @Test(arguments: [true, false])
    func expiredFoldedSeriesKeepTheirCountOrLeaveAnUpDownSum(monotonic: Bool) async throws {
        let p = processor(limit: 1) {
            $0.metricExpiration = .seconds(60)
            $0.overflowAttribute = "overflow"
        }
        let attrs = [KeyValue("overflow", .bool(true))]
        func send(_ points: [NumberDataPoint]) async throws -> [NumberDataPoint] {
            try await p.consume(batch(sum("c", points, monotonic: monotonic)))
            guard case .sum(let o, .cumulative, monotonic) = received(out).last?.metric.data else {
                Issue.record("no overflow point")
                return []
            }
            return o
        }
        _ = try await send([point(1, start: t(0), time: t(1), user("a")), point(5, start: t(0), time: t(1), user("b"))])
        clock.advance(by: .seconds(40))
        let first = try await send([point(2, start: t(0), time: t(40), user("a")), point(6, start: t(0), time: t(40), user("c"))])
        #expect(first.map(NP.init) == [NP(t(0), t(40), 11)] && first.first?.attributes == attrs)
        clock.advance(by: .seconds(30))  // b idle for 70 s: forgotten
        let second = try await send([point(3, start: t(0), time: t(70), user("a")), point(7, start: t(0), time: t(70), user("c"))])
        // A counter keeps b's 5 (it was counted); an up-down sum is the latest values of live series.
        #expect(second.map(NP.init) == [NP(t(0), t(70), monotonic ? 12 : 7)])
    }

    @Test func histogramsFoldAndUnmergeableKindsAreDroppedAndCounted() async throws {
        let p = processor(limit: 1)
        let delta = Metric(
            name: "latency",
            data: .histogram(
                [
                    hpoint(count: 1, sum: 1, buckets: [1, 0, 0], start: t(0), time: t(1), user("a")),
                    hpoint(count: 2, sum: 12, buckets: [0, 1, 1], start: t(0), time: t(1), user("b"), min: 2, max: 10),
                    hpoint(count: 3, sum: 9, buckets: [1, 2, 0], start: t(0), time: t(2), user("c"), min: 0.5, max: 5),
                    hpoint(count: 1, sum: 7, buckets: [0, 1], bounds: [5], start: t(0), time: t(2), user("d")),  // other bounds
                ], temporality: .delta))
        try await p.consume(batch(delta))
        let hs = histogramPoints(out)
        #expect(hs.count == 2)
        let o = hs[1]
        #expect(o.attributes == overflowAttrs && o.count == 5 && o.sum == 21 && o.bucketCounts == [1, 3, 1])
        #expect(o.min == 0.5 && o.max == 10 && o.startTimeUnixNano == t(0) && o.timeUnixNano == t(2))
        #expect(dropped("not_foldable") == 1)

        let cumulative = { (b: UInt64, c: UInt64, time: UInt64) in
            Metric(
                name: "size",
                data: .histogram(
                    [
                        hpoint(count: 1, sum: 1, buckets: [1, 0, 0], start: t(0), time: time, user("a")),
                        hpoint(count: b, sum: Double(b), buckets: [b, 0, 0], start: t(0), time: time, user("b")),
                        hpoint(count: c, sum: Double(c) * 20, buckets: [0, 0, c], start: t(0), time: time, user("c")),
                    ], temporality: .cumulative))
        }
        try await p.consume(batch(cumulative(2, 3, t(1))))
        try await p.consume(batch(cumulative(4, 3, t(2))))
        let last = histogramPoints(out).last!
        #expect(last.attributes == overflowAttrs && last.count == 7 && last.sum == 64 && last.bucketCounts == [4, 0, 3])
        #expect(last.startTimeUnixNano == t(0) && last.timeUnixNano == t(2) && last.min == nil)

        // Gauges and summaries cannot be merged: the excess is dropped and counted.
        try await p.consume(batch(Metric(name: "temp", data: .gauge([point(20, start: 0, time: t(1), user("a")), point(21, start: 0, time: t(1), user("b"))]))))
        guard case .gauge(let g) = received(out).last?.metric.data else {
            Issue.record("no gauge")
            return
        }
        #expect(g.map(\.attributes) == [user("a")])
        #expect(dropped("not_foldable") == 2)
        #expect(
            telemetry.value(
                "sextant_processor_dropped_items_total", labels: [("processor", "cardinalityguard"), ("pipeline", "metrics"), ("signal", "metrics")]) == 2)
    }
}
