import SextantModel
import SextantPrometheus
import Testing

private let t0: UInt64 = 1_700_000_000_000_000_000
private let second: UInt64 = 1_000_000_000

private func families(_ text: String, _ format: ExpositionFormat = .prometheusText) throws -> [ExpositionFamily] {
    try ExpositionParser.parse(Array(text.utf8), format: format)
}

private func metrics(_ data: MetricsData) -> [String: Metric] {
    var out: [String: Metric] = [:]
    for rm in data.resourceMetrics { for sm in rm.scopeMetrics { for m in sm.metrics { out[m.name] = m } } }
    return out
}

private func numbers(_ m: Metric?) -> [NumberDataPoint] {
    switch m?.data {
    case .gauge(let p)?: return p
    case .sum(let p, _, _)?: return p
    default: return []
    }
}

@Suite struct ScrapeAssemblerTests {
    func assembler() -> ScrapeAssembler {
        ScrapeAssembler(
            resource: ScrapeAssembler.targetResource(job: "api", instance: "127.0.0.1:9100", scheme: "http"),
            defaultScope: InstrumentationScope(name: "sextant/receiver/prometheus", version: "1"))
    }

    @Test func resourceFromTarget() {
        let r = ScrapeAssembler.targetResource(job: "api", instance: "[::1]:9100", scheme: "https")
        #expect(r == [
            KeyValue("service.name", .string("api")), KeyValue("service.instance.id", .string("[::1]:9100")),
            KeyValue("server.address", .string("::1")), KeyValue("server.port", .int(9100)), KeyValue("url.scheme", .string("https")),
        ])
    }

    @Test func typesConvert() throws {
        var a = assembler()
        let f = try families(OpenMetricsParserTests.golden, .openMetrics)
        let data = a.assemble(f, at: t0)
        let m = metrics(data)
        // Counter: monotonic cumulative sum named with _total, start from _created, exemplar kept.
        guard case .sum(let foo, let temporality, let monotonic)? = m["foo_total"]?.data else {
            Issue.record("foo_total is not a sum")
            return
        }
        #expect(temporality == .cumulative && monotonic)
        #expect(foo[0].value == .double(17) && foo[0].timeUnixNano == 1_520_879_607_789_000_000)
        #expect(foo[0].startTimeUnixNano == 1_520_430_000_123_000_000)
        #expect(foo[0].attributes == [KeyValue("a", .string("b"))])
        #expect(foo[0].exemplars.count == 1 && foo[0].exemplars[0].value == .double(0.67))
        #expect(m["foo_total"]?.metadata == [KeyValue("prometheus.type", .string("counter"))])
        // Histogram: bounds from le, per-bucket counts, count/sum, _created start time.
        guard case .histogram(let h, .cumulative)? = m["hist"]?.data else {
            Issue.record("hist is not a cumulative histogram")
            return
        }
        #expect(h[0].explicitBounds == [0.01, 0.1, 1.0])
        #expect(h[0].bucketCounts == [0, 8, 3, 6])
        #expect(h[0].count == 17 && h[0].sum == 324789.3)
        #expect(h[0].startTimeUnixNano == 1_520_430_000_123_000_000)
        #expect(h[0].exemplars.count == 2)
        // Summary with unit from # UNIT.
        guard case .summary(let s)? = m["acme_http_router_request_seconds"]?.data else {
            Issue.record("summary missing")
            return
        }
        #expect(m["acme_http_router_request_seconds"]?.unit == "s")
        #expect(s[0].count == 807283 && s[0].sum == 9036.32 && s[0].quantileValues.isEmpty)
        // Gaugehistogram is dropped (spec); stateset and info are non-monotonic sums; unknown → gauge.
        #expect(m["gh"] == nil)
        guard case .sum(let states, _, false)? = m["enabled"]?.data, case .sum(_, _, false)? = m["build_info"]?.data else {
            Issue.record("stateset/info are not non-monotonic sums")
            return
        }
        #expect(states.count == 2)
        guard case .gauge? = m["mystery"]?.data, case .gauge? = m["plain"]?.data, case .gauge? = m["temp_celsius"]?.data else {
            Issue.record("gauges missing")
            return
        }
        #expect(m["temp_celsius"]?.unit == "Cel")
        #expect(m["plain"]?.metadata == [KeyValue("prometheus.type", .string("unknown"))])
        #expect(data.resourceMetrics[0].scopeMetrics[0].scope.name == "sextant/receiver/prometheus")
    }

    @Test func textHistogramWithoutInfAndSummaryQuantiles() throws {
        var a = assembler()
        let text = """
            # TYPE h histogram
            h_bucket{le="1"} 2
            h_bucket{le="5"} 3
            h_count 7
            # TYPE s summary
            s{quantile="0.9"} 4
            s{quantile="0.5"} 2
            s_count 10
            # TYPE nocount histogram
            nocount_bucket{le="+Inf"} 1
            """
        let m = metrics(a.assemble(try families(text), at: t0))
        guard case .histogram(let h, _)? = m["h"]?.data, case .summary(let s)? = m["s"]?.data else {
            Issue.record("missing")
            return
        }
        #expect(h[0].bucketCounts == [2, 1, 4] && h[0].explicitBounds == [1, 5] && h[0].sum == nil)
        #expect(s[0].quantileValues.map(\.quantile) == [0.5, 0.9] && s[0].sum == 0)
        #expect(m["nocount"] == nil)  // spec: no _count → dropped
    }

    /// Found by fuzz/FuzzPrometheusText: `quantile="0.5"` and `quantile="00.5"` parse as two series but are one
    /// quantile (Prometheus 3 normalizes `le` and `quantile` values), so the point held 0.5 twice and rendered
    /// a duplicate series. The first sample of each quantile is kept.
    @Test func oneNumberSpelledTwiceIsOneQuantileOrBound() throws {
        var a = assembler()
        let text = """
            # TYPE s summary
            s{quantile="0.01"} 3102
            s{quantile="00.5"} 3272
            s{quantile="0.5"} 4773
            s_count 10
            """
        let m = metrics(a.assemble(try families(text), at: t0))
        guard case .summary(let s)? = m["s"]?.data else {
            Issue.record("missing")
            return
        }
        #expect(s[0].quantileValues.map(\.quantile) == [0.01, 0.5] && s[0].quantileValues.map(\.value) == [3102, 3272])
        // Histograms: the parser refuses a bound that is not above the previous one (`le="1"` then `le="1.0"`);
        // the assembler keeps the first of equal bounds all the same.
    }

    /// Histogram lines are grouped by their labels without `le` whether the groups are adjacent (the fast
    /// path compares with the previous group), interleaved, or written with labels in another order.
    @Test func histogramGroupsInterleavedAndUnsorted() throws {
        var a = assembler()
        let text = """
            # TYPE h histogram
            h_bucket{path="/a",le="1"} 1
            h_bucket{le="1",path="/b"} 2
            h_bucket{path="/a",le="+Inf"} 3
            h_bucket{method="GET",path="/b",le="+Inf"} 9
            h_bucket{path="/b",le="+Inf"} 4
            h_count{path="/a"} 3
            h_count{path="/b"} 4
            h_count{path="/b",method="GET"} 9
            h_bucket{method="GET",path="/b",le="1"} 5
            """
        let m = metrics(a.assemble(try families(text), at: t0))
        guard case .histogram(let h, _)? = m["h"]?.data else {
            Issue.record("h is not a histogram")
            return
        }
        let byLabels = Dictionary(uniqueKeysWithValues: h.map { p in (p.attributes.map { "\($0.key)=\($0.value.asString)" }.joined(separator: ","), p) })
        #expect(byLabels.count == 3)
        #expect(byLabels["path=/a"]?.bucketCounts == [1, 2] && byLabels["path=/a"]?.count == 3)
        #expect(byLabels["path=/b"]?.bucketCounts == [2, 2] && byLabels["path=/b"]?.count == 4)
        #expect(byLabels["method=GET,path=/b"]?.bucketCounts == [5, 4] && byLabels["method=GET,path=/b"]?.count == 9)
    }

    /// Found by fuzz/FuzzPrometheusText and FuzzOpenMetrics: a `_count` below the buckets (or unlike the +Inf
    /// bucket) made a point whose count was not the sum of its buckets, rendered with a decreasing +Inf bucket.
    @Test(arguments: [
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 0\n", ExpositionFormat.prometheusText, [UInt64(1), 0]),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 11\nh_bucket{le=\"+Inf\"} 17\nh_count 8\n# EOF\n", .openMetrics, [11, 6]),
    ])
    func histogramCountDisagreeingWithBuckets(_ text: String, _ format: ExpositionFormat, _ buckets: [UInt64]) throws {
        var a = assembler()
        let data = a.assemble(try families(text, format), at: t0)
        guard case .histogram(let h, _)? = metrics(data)["h"]?.data, let p = h.first else {
            Issue.record("h is not a histogram")
            return
        }
        #expect(p.bucketCounts == buckets)
        #expect(p.count == buckets.reduce(0, +))
        for rendered in [PrometheusText.render([data]), OpenMetricsText.render([data])] {
            #expect(throws: Never.self) { try ExpositionParser.parse(Array(rendered.utf8), format: rendered.hasSuffix("# EOF\n") ? .openMetrics : .prometheusText) }
        }
    }

    /// Found by fuzz/FuzzPrometheusText: a summary or histogram count beyond UInt64 trapped the receiver.
    @Test func hugeCountsSaturate() throws {
        let text = """
            # TYPE s summary
            s_sum 1
            s_count 8072850663655555555555555555553000
            # TYPE h histogram
            h_bucket{le="1"} 1e30
            h_bucket{le="+Inf"} +Inf
            h_count +Inf
            """
        var a = assembler()
        let m = metrics(a.assemble(try families(text + "\n"), at: t0))
        guard case .summary(let s)? = m["s"]?.data, case .histogram(let h, _)? = m["h"]?.data else {
            Issue.record("s or h missing")
            return
        }
        #expect(s.first?.count == UInt64.max)
        #expect(h.first?.bucketCounts == [UInt64.max, UInt64.max])  // +Inf − 1e30 saturates too
        #expect(h.first?.count == UInt64.max)
    }

    @Test func startTimeFirstSightAndReset() throws {
        var a = assembler()
        let first = numbers(metrics(a.assemble(try families("# TYPE c counter\nc 10\n# TYPE g gauge\ng 1\n"), at: t0))["c"])
        #expect(first[0].startTimeUnixNano == t0)
        #expect(a.seriesAdded == 2)
        let again = numbers(metrics(a.assemble(try families("# TYPE c counter\nc 15\n# TYPE g gauge\ng 1\n"), at: t0 + 10 * second))["c"])
        #expect(again[0].startTimeUnixNano == t0)
        #expect(a.seriesAdded == 0)
        let reset = metrics(a.assemble(try families("# TYPE c counter\nc 3\n# TYPE g gauge\ng 0\n"), at: t0 + 20 * second))
        #expect(numbers(reset["c"])[0].startTimeUnixNano == t0 + 20 * second)
        #expect(numbers(reset["g"])[0].startTimeUnixNano == 0)
        let after = numbers(metrics(a.assemble(try families("# TYPE c counter\nc 4\n"), at: t0 + 30 * second))["c"])
        #expect(after[0].startTimeUnixNano == t0 + 20 * second)
    }

    /// The assembler expects each scrape's series in the previous scrape's order; reordered, new, vanished,
    /// returning and retyped series must come out exactly as if each were looked up by its labels.
    @Test func seriesOrderChangesBetweenScrapes() throws {
        var a = assembler()
        func scrape(_ lines: [String], at time: UInt64) throws -> (c: [String: NumberDataPoint], g: [NumberDataPoint]) {
            let text = "# TYPE c counter\n" + lines.filter { $0.hasPrefix("c") }.joined(separator: "\n")
                + "\n# TYPE g gauge\n" + lines.filter { $0.hasPrefix("g") }.joined(separator: "\n") + "\n"
            let m = metrics(a.assemble(try families(text), at: time))
            var c: [String: NumberDataPoint] = [:]
            for p in numbers(m["c"]) { c[p.attributes.first { $0.key == "x" }.map { $0.value.asString } ?? ""] = p }
            return (c, numbers(m["g"]))
        }
        // `e`'s labels come unsorted, as client libraries write them in declaration order.
        let s1 = try scrape(["c{x=\"a\"} 1", "c{x=\"b\"} 1", "c{x=\"e\",k=\"1\"} 1", "c{x=\"c\"} 1", "g 1"], at: t0)
        #expect(a.seriesAdded == 5 && s1.c.count == 4)
        // Reordered, `b` gone, `d` new, `a` reset.
        let s2 = try scrape(["c{x=\"c\"} 2", "c{x=\"d\"} 1", "c{x=\"e\",k=\"1\"} 2", "c{x=\"a\"} 0", "g 2"], at: t0 + second)
        #expect(a.seriesAdded == 1)
        #expect(s2.c["e"]?.startTimeUnixNano == t0 && s2.c["e"]?.attributes.map(\.key) == ["k", "x"])
        #expect(s2.c["c"]?.startTimeUnixNano == t0 && s2.c["c"]?.value == .double(2))
        #expect(s2.c["d"]?.startTimeUnixNano == t0 + second)
        #expect(s2.c["a"]?.startTimeUnixNano == t0 + second)
        #expect(s2.c["b"]?.flags == DataPointFlags.noRecordedValue)
        // `b` returns as a new series; the rest keep their start times in yet another order.
        let s3 = try scrape(["c{x=\"b\"} 5", "c{x=\"a\"} 1", "c{x=\"d\"} 2", "c{x=\"e\",k=\"1\"} 3", "c{x=\"c\"} 3", "g 3"], at: t0 + 2 * second)
        #expect(a.seriesAdded == 1)
        #expect(s3.c["b"]?.startTimeUnixNano == t0 + 2 * second && s3.c["b"]?.flags == 0)
        #expect(s3.c["a"]?.startTimeUnixNano == t0 + second && s3.c["c"]?.startTimeUnixNano == t0)
        #expect(s3.c.values.allSatisfy { $0.flags == 0 } && s3.g.count == 1)
        // Same order again: nothing added, nothing stale.
        let s4 = try scrape(["c{x=\"b\"} 6", "c{x=\"a\"} 2", "c{x=\"d\"} 3", "c{x=\"e\",k=\"1\"} 4", "c{x=\"c\"} 4", "g 4"], at: t0 + 3 * second)
        #expect(a.seriesAdded == 0 && s4.c.count == 5 && s4.c.values.allSatisfy { $0.flags == 0 })
        #expect(s4.c["e"]?.startTimeUnixNano == t0 && s4.c["e"]?.value == .double(4))
        #expect(s4.c["b"]?.startTimeUnixNano == t0 + 2 * second)
        // `g` becomes a counter: a new series of the new kind, the gauge is not marked stale twice.
        let retyped = metrics(a.assemble(try families("# TYPE g counter\ng 7\n"), at: t0 + 4 * second))
        guard case .sum(let g, _, true)? = retyped["g"]?.data else {
            Issue.record("g is not a counter: \(String(describing: retyped["g"]))")
            return
        }
        #expect(g.count == 1 && g[0].startTimeUnixNano == t0 + 4 * second)
        #expect(numbers(retyped["c"]).count == 5 && numbers(retyped["c"]).allSatisfy { $0.flags == DataPointFlags.noRecordedValue })
    }

    /// Histogram and summary lines are grouped by label references when their samples share a parse's
    /// store, and by label text otherwise (a store made by relabel rules, samples built one by one): the
    /// points are the same whichever store the samples come from, interleaved groups and all.
    @Test func groupsAreTheSameWhateverTheStore() throws {
        let text = """
            # TYPE h histogram
            h_bucket{path="/a",le="1"} 1
            h_bucket{le="1",path="/b"} 2
            h_bucket{path="/a",le="+Inf"} 3
            h_bucket{path="/b",le="+Inf"} 4
            h_sum{path="/a"} 0.5
            h_count{path="/a"} 3
            h_count{path="/b"} 4
            h_bucket{path="/a",le="0.5"} 1
            # TYPE s summary
            s{quantile="0.5",q="x"} 1
            s{q="y",quantile="0.5"} 2
            s{quantile="0.9",q="x"} 3
            s_sum{q="x"} 4
            s_count{q="x"} 5
            s_count{q="y"} 6
            s{q="y",quantile="0.9"} 7

            """
        let parsed = try families(text)
        let target = [ExpositionLabel("job", "api"), ExpositionLabel("instance", "h:1")]
        let keepAll = [try RelabelRule(sourceLabels: ["__name__"], regex: ".*", action: .keep)]
        let oneByOne = parsed.map { f in
            var f = f
            f.samples = f.samples.map { ExpositionSample(name: $0.name, labels: $0.labels, value: $0.value, line: $0.line) }
            return f
        }
        func attributeText(_ attributes: [KeyValue]) -> String { attributes.map { "\($0.key)=\($0.value.asString)" }.joined(separator: ",") }
        func points(_ fams: [ExpositionFamily]) -> [String] {
            var a = assembler()
            return metrics(a.assemble(fams, at: t0)).sorted { $0.key < $1.key }.flatMap { name, m -> [String] in
                switch m.data {
                case .histogram(let ps, _):
                    ps.map { "\(name) \(attributeText($0.attributes)) \($0.explicitBounds) \($0.bucketCounts) \($0.count) \(String(describing: $0.sum))" }
                case .summary(let ps):
                    ps.map { "\(name) \(attributeText($0.attributes)) \($0.quantileValues.map { "\($0.quantile):\($0.value)" }) \($0.count) \($0.sum)" }
                default: []
                }
            }
        }
        let expected = points(oneByOne)
        #expect(expected.count == 4)
        #expect(expected.contains("h path=/a [0.5, 1.0] [1, 0, 2] 3 Optional(0.5)"), "\(expected)")
        #expect(points(parsed) == expected)
        #expect(points(ScrapeLabeling.apply(parsed, targetLabels: target, honorLabels: false, rules: [])) == expected)
        #expect(points(ScrapeLabeling.apply(parsed, targetLabels: target, honorLabels: false, rules: keepAll)) == expected)
    }

    @Test func histogramResetByCount() throws {
        var a = assembler()
        let h1 = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_count 5\nh_sum 1\n"
        let h2 = "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 1\n"
        _ = a.assemble(try families(h1), at: t0)
        guard case .histogram(let p, _)? = metrics(a.assemble(try families(h2), at: t0 + second))["h"]?.data else {
            Issue.record("missing")
            return
        }
        #expect(p[0].startTimeUnixNano == t0 + second)
    }

    @Test func stalenessMarkers() throws {
        var a = assembler()
        _ = a.assemble(try families("# TYPE c counter\nc{x=\"1\"} 1\nc{x=\"2\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"), at: t0)
        let gone = metrics(a.assemble(try families("# TYPE c counter\nc{x=\"1\"} 2\n"), at: t0 + second))
        let c = numbers(gone["c"])
        #expect(c.count == 2)
        let stale = c.first { $0.attributes == [KeyValue("x", .string("2"))] }
        #expect(stale?.flags == DataPointFlags.noRecordedValue)
        #expect(stale?.timeUnixNano == t0 + second)
        #expect(c.first { $0.attributes == [KeyValue("x", .string("1"))] }?.flags == 0)
        guard case .histogram(let h, _)? = gone["h"]?.data else {
            Issue.record("no stale histogram point")
            return
        }
        #expect(h.count == 1 && h[0].flags == DataPointFlags.noRecordedValue)
        // Once marked, a series is forgotten: the next scrape has no marker for it.
        let next = metrics(a.assemble(try families("# TYPE c counter\nc{x=\"1\"} 3\n"), at: t0 + 2 * second))
        #expect(numbers(next["c"]).count == 1 && next["h"] == nil)
        // A failed scrape marks everything stale and keeps the synthetic metrics.
        let up = Metric(name: "up", data: .gauge([NumberDataPoint(timeUnixNano: t0 + 3 * second, value: .double(0))]))
        var failed = a.markStale(at: t0 + 3 * second)
        a.appendSynthetic([up], to: &failed)
        let fm = metrics(failed)
        #expect(numbers(fm["c"]).map(\.flags) == [DataPointFlags.noRecordedValue])
        #expect(numbers(fm["up"])[0].value == .double(0))
        // After the failure, the returning series starts afresh.
        let back = numbers(metrics(a.assemble(try families("# TYPE c counter\nc{x=\"1\"} 3\n"), at: t0 + 4 * second))["c"])
        #expect(back[0].startTimeUnixNano == t0 + 4 * second)
    }

    @Test func targetInfoAndScopes() throws {
        var a = assembler()
        let text = """
            # TYPE target info
            target_info{job="api",instance="x",env="prod",region="eu"} 1
            # TYPE otel_scope info
            otel_scope_info{otel_scope_name="lib",otel_scope_version="2",mascot="bear"} 1
            # TYPE c counter
            c_total{otel_scope_name="lib",otel_scope_version="2",job="api",instance="x",k="v"} 1
            # EOF
            """
        let data = a.assemble(try families(text, .openMetrics), at: t0)
        let rm = data.resourceMetrics[0]
        #expect(rm.resource.attributes[key: "env"] == .string("prod"))
        #expect(rm.resource.attributes[key: "service.name"] == .string("api"))
        #expect(rm.scopeMetrics.count == 1)
        #expect(rm.scopeMetrics[0].scope == InstrumentationScope(name: "lib", version: "2", attributes: [KeyValue("mascot", .string("bear"))]))
        #expect(rm.scopeMetrics[0].metrics.map(\.name) == ["c_total"])
        #expect(numbers(rm.scopeMetrics[0].metrics[0])[0].attributes == [KeyValue("k", .string("v"))])
    }

    @Test func exemplarTraceIDs() throws {
        var a = assembler()
        let text = "# TYPE c counter\nc_total 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\",user=\"u\"} 1 1700000000.5\n# EOF\n"
        let e = numbers(metrics(a.assemble(try families(text, .openMetrics), at: t0))["c_total"])[0].exemplars[0]
        #expect(e.traceID == TraceID(hex: "4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(e.spanID == SpanID(hex: "00f067aa0ba902b7"))
        #expect(e.filteredAttributes == [KeyValue("user", .string("u"))])
        #expect(e.timeUnixNano == 1_700_000_000_500_000_000)
    }

    @Test func units() {
        #expect(ScrapeAssembler.otelUnit("seconds") == "s")
        #expect(ScrapeAssembler.otelUnit("bytes") == "By")
        #expect(ScrapeAssembler.otelUnit("ratio") == "1")
        #expect(ScrapeAssembler.otelUnit("meters_per_second") == "m/s")
        #expect(ScrapeAssembler.otelUnit("widgets") == "widgets")
    }
}

@Suite struct RelabelingTests {
    func sample(_ name: String, _ labels: [(String, String)]) -> ExpositionSample {
        ExpositionSample(name: name, labels: labels.map { ExpositionLabel($0.0, $0.1) }, value: 1)
    }

    @Test func replaceWithGroupsAndNamedGroups() throws {
        var labels = [ExpositionLabel("__name__", "http_requests_total"), ExpositionLabel("path", "/api/v2/users")]
        let r = try RelabelRule(sourceLabels: ["__name__", "path"], regex: "http_(\\w+);/api/(?P<ver>v[0-9]+)/.*", targetLabel: "x", replacement: "$1-${ver}")
        #expect(r.apply(to: &labels))
        #expect(labels.last == ExpositionLabel("x", "requests_total-v2"))
        // No match: unchanged. Go's Expand: "$1x" names group "1x", which is empty.
        var l2 = [ExpositionLabel("a", "zzz")]
        #expect(try RelabelRule(sourceLabels: ["a"], regex: "y+", targetLabel: "b").apply(to: &l2) && l2.count == 1)
        var l3 = [ExpositionLabel("a", "q")]
        _ = try RelabelRule(sourceLabels: ["a"], regex: "(q)", targetLabel: "b", replacement: "$1x").apply(to: &l3)
        #expect(l3.count == 1)
        // An empty replacement removes the target label.
        var l4 = [ExpositionLabel("a", "q"), ExpositionLabel("b", "old")]
        _ = try RelabelRule(sourceLabels: ["a"], regex: ".*", targetLabel: "b", replacement: "").apply(to: &l4)
        #expect(l4 == [ExpositionLabel("a", "q")])
    }

    @Test func keepDropAreAnchored() throws {
        var labels = [ExpositionLabel("__name__", "go_gc_duration_seconds")]
        #expect(!(try RelabelRule(sourceLabels: ["__name__"], regex: "go_.*", action: .drop).apply(to: &labels)))
        #expect(try RelabelRule(sourceLabels: ["__name__"], regex: "gc", action: .drop).apply(to: &labels))  // anchored: no match
        #expect(!(try RelabelRule(sourceLabels: ["__name__"], regex: "gc", action: .keep).apply(to: &labels)))
    }

    @Test func labeldropLabelkeepLabelmap() throws {
        var labels = [ExpositionLabel("__name__", "m"), ExpositionLabel("pod_name", "p"), ExpositionLabel("tmp_x", "1"), ExpositionLabel("k", "v")]
        _ = try RelabelRule(regex: "tmp_.*", action: .labeldrop).apply(to: &labels)
        #expect(labels.map(\.name) == ["__name__", "pod_name", "k"])
        _ = try RelabelRule(regex: "pod_(.*)", replacement: "kube_$1", action: .labelmap).apply(to: &labels)
        #expect(labels.last == ExpositionLabel("kube_name", "p"))
        _ = try RelabelRule(regex: "k|kube_.*", action: .labelkeep).apply(to: &labels)
        #expect(labels.map(\.name) == ["__name__", "k", "kube_name"])
    }

    @Test func targetLabelsHonorAndRename() throws {
        let fams = [ExpositionFamily(name: "m", samples: [sample("m", [("job", "scraped"), ("a", "1")])])]
        let target = [ExpositionLabel("job", "api"), ExpositionLabel("instance", "h:1"), ExpositionLabel("env", "prod")]
        let renamed = ScrapeLabeling.apply(fams, targetLabels: target, honorLabels: false, rules: [])
        // Added labels go before the first greater name (this sample's labels came unsorted).
        #expect(renamed[0].samples[0].labels == [
            .init("env", "prod"), .init("exported_job", "scraped"), .init("instance", "h:1"), .init("job", "api"), .init("a", "1"),
        ])
        let sorted = [ExpositionFamily(name: "m", samples: [sample("m", [("a", "1"), ("z", "2")])])]
        #expect(ScrapeLabeling.apply(sorted, targetLabels: target, honorLabels: false, rules: [])[0].samples[0].labels.map(\.name) == [
            "a", "env", "instance", "job", "z",
        ])
        let honored = ScrapeLabeling.apply(fams, targetLabels: target, honorLabels: true, rules: [])
        #expect(honored[0].samples[0].label("job") == "scraped")
    }

    /// Without rules, target labels are added by a shortcut that keeps the parse's strings; it must give
    /// what the general path (here forced by a rule that keeps everything) gives, clashes included.
    @Test func targetLabelsShortcutMatchesTheGeneralPath() throws {
        let text = "# TYPE c counter\nc{job=\"scraped\",b=\"1\"} 1\nc{a=\"x\",instance=\"\"} 2\n# TYPE g gauge\ng 3\ng{z=\"9\",env=\"dev\"} 4\n"
        let keepAll = [try RelabelRule(sourceLabels: ["__name__"], regex: ".*", action: .keep)]
        let target = [ExpositionLabel("job", "api"), ExpositionLabel("instance", "h:1"), ExpositionLabel("env", "prod"), ExpositionLabel("empty", "")]
        for fams in [try families(text), try families(OpenMetricsParserTests.golden, .openMetrics)] {
            for honor in [false, true] {
                // Compared as text: the golden exposition has a NaN sample, which `==` never finds equal.
                func text(_ fs: [ExpositionFamily]) -> [String] {
                    fs.flatMap { f in
                        ["\(f.name) \(f.type) \(f.help ?? "-") \(f.unit ?? "-")"]
                            + f.samples.map { "\($0.name)\($0.labels) \($0.value.bitPattern) \(String(describing: $0.exemplar)) \($0.line)" }
                    }
                }
                let shortcut = ScrapeLabeling.apply(fams, targetLabels: target, honorLabels: honor, rules: [])
                let general = ScrapeLabeling.apply(fams, targetLabels: target, honorLabels: honor, rules: keepAll)
                #expect(text(shortcut) == text(general), "honor_labels \(honor)")
            }
        }
        let fams = try families(text)
        let out = ScrapeLabeling.apply(fams, targetLabels: target, honorLabels: false, rules: [])
        #expect(out[0].samples[0].labels.map { "\($0.name)=\($0.value)" } == ["env=prod", "exported_job=scraped", "instance=h:1", "job=api", "b=1"])
        #expect(out[0].samples[1].label("instance") == "h:1" && out[0].samples[1].label("exported_instance") == nil)
        // The input is untouched.
        #expect(fams[0].samples[0].labels.map(\.name) == ["job", "b"])
    }

    @Test func rulesDropAndRenameSamples() throws {
        let fams = [
            ExpositionFamily(name: "a", type: .gauge, samples: [sample("a", [("x", "1")]), sample("a", [("x", "2")])]),
            ExpositionFamily(name: "b", type: .gauge, samples: [sample("b", [])]),
        ]
        let rules = [
            try RelabelRule(sourceLabels: ["x"], regex: "2", action: .drop),
            try RelabelRule(sourceLabels: ["__name__"], regex: "b", targetLabel: "__name__", replacement: "renamed"),
        ]
        let out = ScrapeLabeling.apply(fams, targetLabels: [], honorLabels: false, rules: rules)
        #expect(out.map(\.name) == ["a", "renamed"])
        #expect(out[0].samples.count == 1)
        #expect(out[1].samples[0].name == "renamed" && out[1].type == .unknown)
    }

    @Test func badRegexThrows() {
        #expect(throws: (any Error).self) { try RelabelRule(regex: "(") }
    }
}
