import Logging
import SextantConnectors
import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

/// Runs `processor` (YAML body) in a traces/logs/metrics pipeline between the test receiver and exporter.
func runPipeline(_ signal: String, processor: String, send: [Telemetry]) async throws -> RecordingConsumer {
    let r = try await start(
        """
        receivers:
          testrecv:
        processors:
          \(processor)
        exporters:
          testexp:
        service:
          pipelines:
            \(signal): {receivers: [testrecv], processors: [\(processor.split(separator: ":")[0])], exporters: [testexp]}
        """)
    for t in send { try await r.harness.send(t, via: "testrecv") }
    await r.graph.shutdown()
    return r.harness.exporter("testexp")
}

func span(_ name: String, trace: UInt64 = 1, id: UInt64 = 1, kind: SpanKind = .server, attrs: [KeyValue] = [], status: SpanStatus.Code = .unset,
    start: UInt64 = 1_000_000, end: UInt64 = 2_000_000) -> Span
{
    Span(traceID: TraceID(high: 7, low: trace), spanID: SpanID(id), name: name, kind: kind, startTimeUnixNano: start, endTimeUnixNano: end,
        attributes: attrs, status: SpanStatus(code: status))
}

func traces(_ spans: [Span], service: String = "checkout") -> Telemetry {
    .traces(TracesData(resourceSpans: [
        ResourceSpans(resource: Resource(attributes: [KeyValue("service.name", .string(service))]), scopeSpans: [ScopeSpans(spans: spans)])
    ]))
}

@Suite(.serialized) struct AttributeProcessorTests {
    @Test func actionsRunInOrderOnSelectedSpans() async throws {
        let got = try await runPipeline(
            "traces",
            processor: """
                attributes:
                    include: {match_type: regexp, span_names: ["^GET "]}
                    actions:
                      - {key: env, value: prod, action: insert}
                      - {key: http.status_code, action: convert, converted_type: int}
                      - {key: user.email, action: hash}
                      - {key: password, action: delete}
                      - {key: http.url, pattern: "^/api/(?P<version>v[0-9]+)/(?P<resource>[a-z]+)", action: extract}
                      - {key: copy, from_attribute: env, action: upsert}
                      - {key: retries, value: 3, action: upsert}
                      - {key: missing, value: x, action: update}
                """,
            send: [
                traces([
                    span("GET /api", attrs: [
                        KeyValue("http.status_code", .string("200")), KeyValue("user.email", .string("a@b.c")),
                        KeyValue("password", .string("hunter2")), KeyValue("http.url", .string("/api/v2/items/5")),
                    ]),
                    span("POST /api", id: 2, attrs: [KeyValue("password", .string("kept"))]),
                ])
            ])
        let spans = got.spans
        #expect(spans.count == 2)
        let a = spans[0].attributes
        #expect(a[key: "env"] == .string("prod"))
        #expect(a[key: "http.status_code"] == .int(200))
        #expect(a[key: "user.email"] == .string("e2d6a40c8b4d3e6a2779ba1802ef29d13940a051"))  // sha1("a@b.c")
        #expect(a[key: "password"] == nil)
        #expect(a[key: "version"] == .string("v2") && a[key: "resource"] == .string("items"))
        #expect(a[key: "copy"] == .string("prod"))
        #expect(a[key: "retries"] == .int(3))
        #expect(a[key: "missing"] == nil)
        #expect(spans[1].attributes == [KeyValue("password", .string("kept"))])  // not selected by include
    }

    @Test func resourceProcessor() async throws {
        let got = try await runPipeline(
            "traces",
            processor: """
                resource:
                    attributes:
                      - {key: deployment.environment, value: staging, action: upsert}
                      - {key: service.name, action: delete}
                """, send: [traces([span("x")])])
        guard case .traces(let t) = got.batches[0] else { return }
        #expect(t.resourceSpans[0].resource.attributes == [KeyValue("deployment.environment", .string("staging"))])
    }
}

@Suite(.serialized) struct FilterAndSamplingTests {
    @Test func filterSpansByNameKindAndAttribute() async throws {
        let got = try await runPipeline(
            "traces",
            processor: """
                filter:
                    spans:
                      exclude:
                        match_type: regexp
                        span_names: ["^health"]
                """,
            send: [traces([span("healthz"), span("GET /", id: 2), span("health-check", id: 3)])])
        #expect(got.spans.map(\.name) == ["GET /"])
        let kinds = try await runPipeline(
            "traces",
            processor: """
                filter:
                    spans:
                      include:
                        match_type: strict
                        span_kinds: [SPAN_KIND_SERVER]
                        attributes: [{key: http.route}]
                """,
            send: [traces([span("a", kind: .client, attrs: [KeyValue("http.route", .string("/"))]), span("b", id: 2, attrs: [KeyValue("http.route", .string("/"))]), span("c", id: 3)])])
        #expect(kinds.spans.map(\.name) == ["b"])
    }

    @Test func filterMetricsByNameAndLabelValue() async throws {
        let points = [
            NumberDataPoint(attributes: [KeyValue("code", .string("200"))], value: .int(1)),
            NumberDataPoint(attributes: [KeyValue("code", .string("500"))], value: .int(2)),
        ]
        let m = Telemetry.metrics(MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "requests", data: .sum(points, temporality: .cumulative, isMonotonic: true)),
            Metric(name: "go_gc_duration", data: .gauge(points)),
        ])])]))
        let got = try await runPipeline(
            "metrics",
            processor: """
                filter/m:
                    metrics:
                      exclude:
                        match_type: regexp
                        metric_names: ["^go_"]
                """, send: [m])
        guard case .metrics(let d) = got.batches[0] else { return }
        #expect(d.resourceMetrics[0].scopeMetrics[0].metrics.map(\.name) == ["requests"])
        let byLabel = try await runPipeline(
            "metrics",
            processor: """
                filter/m:
                    metrics:
                      exclude:
                        match_type: strict
                        attributes: [{key: code, value: "500"}]
                """, send: [m])
        #expect(byLabel.itemCount == 2)
        guard case .metrics(let d2) = byLabel.batches[0] else { return }
        #expect(d2.resourceMetrics[0].scopeMetrics[0].metrics.allSatisfy { $0.data.pointCount == 1 })
    }

    @Test func probabilisticSamplerIsConsistentAndNearTheRate() async throws {
        var all: [Span] = []
        for t in 0..<2000 {
            for s in 0..<3 { all.append(span("op", trace: UInt64(t) &* 0x9E37_79B9_7F4A_7C15, id: UInt64(t * 3 + s + 1))) }
        }
        all.append(span("forced", trace: 0xFFFF, id: 99_999, attrs: [KeyValue("sampling.priority", .int(1))]))
        let got = try await runPipeline(
            "traces", processor: "probabilistic_sampler:\n    sampling_percentage: 25\n    hash_seed: 22", send: [traces(all)])
        let kept = Dictionary(grouping: got.spans.filter { $0.name == "op" }, by: \.traceID)
        // Whole traces only: every kept trace keeps all three spans.
        #expect(kept.values.allSatisfy { $0.count == 3 })
        // 2000 traces at 25 %: expect 500 ± 4σ (σ ≈ 19.4).
        #expect(abs(kept.count - 500) < 78, "kept \(kept.count)")
        #expect(got.spans.contains { $0.name == "forced" })
        let none = try await runPipeline("traces", processor: "probabilistic_sampler:\n    sampling_percentage: 0", send: [traces(Array(all.prefix(30)))])
        #expect(none.itemCount == 0)
    }
}

@Suite struct TailSamplingTests {
    @Test func keepsErrorAndSlowTracesAfterDecisionWait() async throws {
        let d = Diagnostics()
        let node = try #require(YAMLLoader.parse("""
            decision_wait: 10s
            num_traces: 3
            policies:
              - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
              - {name: slow, type: latency, latency: {threshold_ms: 500}}
            """, file: "t", diagnostics: d))
        var r = ConfigReader(node, path: "processors::tail_sampling", diagnostics: d)
        let config = TailSamplingProcessorFactory().parseConfig(&r) as! TailSamplingConfig
        r.finish()
        #expect(d.errors.isEmpty)
        let next = RecordingConsumer()
        let clock = ManualClock()
        let telemetry = SelfTelemetry()
        let p = TailSamplingProcessor(
            config, settings: ComponentSettings(id: ComponentID(type: "tail_sampling"), kind: .processor, logger: Logger(label: "t"), telemetry: telemetry),
            next: next, clock: clock)
        try await p.start()
        try await p.consume(traces([span("a", trace: 1, id: 1), span("b", trace: 2, id: 2)]))
        try await p.consume(traces([span("a2", trace: 1, id: 3, status: .error)]))  // trace 1 gets an error span later
        try await p.consume(traces([span("slow", trace: 3, id: 4, start: 0, end: 600_000_000)]))
        #expect(next.itemCount == 0)
        #expect(await clock.waitForSleepers(1))  // the decision ticker
        clock.advance(by: .seconds(10))
        #expect(await eventually { next.itemCount == 3 })
        #expect(Set(next.spans.map(\.spanID.value)) == [1, 3, 4])
        // A late span follows its trace's decision.
        try await p.consume(traces([span("late", trace: 1, id: 5), span("late-dropped", trace: 2, id: 6)]))
        #expect(next.spans.map(\.name).contains("late") && !next.spans.map(\.name).contains("late-dropped"))
        // Bounded: a fourth pending trace evicts the oldest of four.
        for t in UInt64(10)..<14 { try await p.consume(traces([span("x", trace: t, id: t)])) }
        #expect(telemetry.value("sextant_processor_tail_sampling_traces_total", labels: [("decision", "evicted"), ("processor", "tail_sampling")]) == 1)
        await p.shutdown()
    }
}

@Suite struct SpanMetricsTests {
    @Test func callsAndDurationWithExemplars() async throws {
        let out = RecordingConsumer()
        var config = SpanMetricsConfig()
        config.exemplars = true
        config.dimensions = [.init(name: "http.method", defaultValue: "GET")]
        let c = SpanMetricsConnector(
            config, settings: ComponentSettings(id: ComponentID(type: "spanmetrics"), kind: .connector, logger: Logger(label: "t"), telemetry: SelfTelemetry()),
            output: out, clock: ManualClock(), now: { 42 })
        try await c.consume(traces([
            span("GET /a", trace: 1, id: 1, start: 0, end: 3_000_000),  // 3 ms
            span("GET /a", trace: 2, id: 2, attrs: [KeyValue("http.method", .string("POST"))], start: 0, end: 120_000_000),
            span("GET /a", trace: 3, id: 3, status: .error, start: 0, end: 5_000_000),
            span("GET /a", trace: 4, id: 4, start: 0, end: 1_000_000),  // 1 ms
        ]))
        await c.flush()
        guard case .metrics(let m)? = out.batches.first else {
            Issue.record("no metrics")
            return
        }
        let metrics = m.resourceMetrics[0].scopeMetrics[0].metrics
        #expect(metrics.map(\.name) == ["traces.span.metrics.calls", "traces.span.metrics.duration"])
        guard case .sum(let calls, .cumulative, true) = metrics[0].data, case .histogram(let hist, .cumulative) = metrics[1].data else {
            Issue.record("wrong metric types")
            return
        }
        let getOK = calls.first { $0.attributes[key: "http.method"] == .string("GET") && $0.attributes[key: "status.code"] == .string("STATUS_CODE_UNSET") }
        #expect(getOK?.value == .int(2))
        #expect(getOK?.attributes.map(\.key) == ["service.name", "span.name", "span.kind", "status.code", "http.method"])
        #expect(getOK?.exemplars.map(\.traceID) == [TraceID(high: 7, low: 1), TraceID(high: 7, low: 4)])
        let h = hist.first { $0.attributes[key: "http.method"] == .string("GET") && $0.attributes[key: "status.code"] == .string("STATUS_CODE_UNSET") }!
        #expect(h.count == 2 && h.sum == 4 && h.min == 1 && h.max == 3)
        #expect(h.bucketCounts[0] == 1 && h.bucketCounts[1] == 1)  // ≤2 ms, ≤4 ms
        #expect(calls.count == 3)
        #expect(m.resourceMetrics[0].resource.serviceName == "checkout")
    }
}
