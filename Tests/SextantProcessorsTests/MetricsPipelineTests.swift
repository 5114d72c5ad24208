import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

/// Config diagnostics of the metrics processors: every error, with its position.
@Suite struct MetricsProcessorConfigTests {
    func config(_ processors: String, _ names: String) -> String {
        """
        receivers:
          testrecv:
        processors:
        \(processors)
        exporters:
          testexp:
        service:
          pipelines:
            metrics: {receivers: [testrecv], processors: [\(names)], exporters: [testexp]}
        """
    }

    static let table: [(String, String, String, [String])] = [
        (
            "valid configs",
            """
              cumulativetodelta:
                include: {match_type: strict, metrics: [a, b], metric_types: [sum, histogram]}
                exclude: {match_type: regexp, metrics: ["^go_"]}
                max_staleness: 10m
                initial_value: keep
                max_streams: 0
              deltatocumulative: {max_stale: 1m, max_streams: 10}
              cardinalityguard: {max_series_per_metric: 50, metric_expiration: 1m, overflow_attribute: overflow}
            """, "cumulativetodelta, deltatocumulative, cardinalityguard", []
        ),
        (
            "unknown keys, with suggestions",
            """
              cumulativetodelta:
                max_stalenes: 10m
                include: {match_type: strict, metric: [a]}
              deltatocumulative: {max_stale: 1m, max_stream: 10}
              cardinalityguard: {max_series: 50}
            """, "cumulativetodelta, deltatocumulative, cardinalityguard",
            [
                "c.yaml:5:5: error: unknown key 'max_stalenes' in processors::cumulativetodelta (did you mean 'max_staleness'?)",
                "c.yaml:6:35: error: unknown key 'metric' in processors::cumulativetodelta::include (did you mean 'metrics'?)",
                "c.yaml:7:38: error: unknown key 'max_stream' in processors::deltatocumulative (did you mean 'max_streams'?)",
                "c.yaml:8:22: error: unknown key 'max_series' in processors::cardinalityguard",
            ]
        ),
        (
            "bad values",
            """
              cumulativetodelta:
                initial_value: sometimes
                include: {metrics: [a]}
                exclude: {match_type: regexp, metrics: ["(unclosed"], metric_types: [gauge]}
                max_streams: -1
              deltatocumulative: {max_stale: 0s}
              cardinalityguard: {max_series_per_metric: 0, metric_expiration: soon, overflow_attribute: ""}
            """, "cumulativetodelta, deltatocumulative, cardinalityguard",
            [
                "c.yaml:5:20: error: processors::cumulativetodelta::initial_value: 'sometimes' is not one of auto, keep, drop",
                "c.yaml:6:14: error: processors::cumulativetodelta::include::match_type is required when metrics are listed (strict or regexp)",
                "c.yaml:7:44: error: processors::cumulativetodelta::exclude::metrics: invalid regular expression '(unclosed': ",
                "c.yaml:7:73: error: processors::cumulativetodelta::exclude::metric_types: 'gauge' is not one of histogram, sum",
                "c.yaml:8:18: error: processors::cumulativetodelta::max_streams must be at least 0, found -1",
                "c.yaml:9:34: error: processors::deltatocumulative::max_stale must be greater than zero",
                "c.yaml:10:45: error: processors::cardinalityguard::max_series_per_metric must be at least 1, found 0",
                "c.yaml:10:67: error: processors::cardinalityguard::metric_expiration must be a duration such as 200ms, 5s or 1m30s, found 'soon'",
                "c.yaml:10:93: error: processors::cardinalityguard::overflow_attribute must not be empty",
            ]
        ),
        (
            "metrics-only processors in a traces pipeline",
            """
              cardinalityguard:
            """, "cardinalityguard", ["traces"]
        ),
    ]

    @Test(arguments: table)
    func diagnostics(_ row: (String, String, String, [String])) {
        var yaml = config(row.1, row.2)
        if row.3 == ["traces"] {
            yaml = yaml.replacingOccurrences(of: "metrics: {receivers", with: "traces: {receivers")
            let got = configErrors(yaml)
            #expect(got.count == 1 && got[0].contains("cardinalityguard") && got[0].contains("traces"), "\(got)")
            return
        }
        let got = configErrors(yaml)
        // Regex compiler messages vary; compare up to the cause.
        let trimmed = got.map { g in row.3.first { g.hasPrefix($0) && $0.hasSuffix("': ") } ?? g }
        #expect(trimmed == row.3, "\(row.0): \(got)")
    }
}

/// The processors through a real pipeline graph, and the existing `filter`/`attributes` processors on
/// metric names and label values (issue 4).
@Suite struct MetricsPipelineTests {
    @Test func cumulativeToDeltaThenCardinalityGuardInOnePipeline() async throws {
        let p = try await MetricsPipeline(
            processors: """
                  cumulativetodelta: {initial_value: keep}
                  cardinalityguard: {max_series_per_metric: 2}
                """, names: ["cumulativetodelta", "cardinalityguard"])
        let users = ["a", "b", "c", "d"]
        for (round, time) in [(Int64(1), t(1)), (3, t(2))] {
            try await p.send(batch(sum("requests", users.map { point(round, start: s0, time: time, [KeyValue("user", .string($0))]) })))
        }
        await p.graph.shutdown()
        guard case .metrics(let last)? = p.output.batches.last else {
            Issue.record("nothing exported")
            return
        }
        let metrics = last.resourceMetrics.flatMap { $0.scopeMetrics.flatMap(\.metrics) }
        let points = metrics.flatMap { m -> [NumberDataPoint] in
            guard case .sum(let p, .delta, true) = m.data else { return [] }
            return p
        }
        // Two users pass as deltas of 2; c and d fold into one overflow delta of 4.
        #expect(points.map(\.value) == [.int(2), .int(2), .int(4)])
        #expect(points.last?.attributes == [KeyValue("otel_metric_overflow", .bool(true))])
        #expect(points.allSatisfy { $0.startTimeUnixNano == t(1) && $0.timeUnixNano == t(2) })
        #expect(
            p.telemetry.value(
                "sextant_processor_cardinalityguard_overflow_points_total", labels: [("processor", "cardinalityguard"), ("pipeline", "metrics")]) == 4)
    }

    static let codes: [NumberDataPoint] = [
        NumberDataPoint(attributes: [KeyValue("code", .string("200"))], value: .int(1)),
        NumberDataPoint(attributes: [KeyValue("code", .string("500"))], value: .int(2)),
    ]
    static let twoMetrics = Telemetry.metrics(
        MetricsData(resourceMetrics: [
            ResourceMetrics(
                resource: resource("svc"),
                scopeMetrics: [
                    ScopeMetrics(metrics: [
                        Metric(name: "http_requests", data: .sum(codes, temporality: .cumulative, isMonotonic: true)),
                        Metric(name: "grpc_requests", data: .sum(codes, temporality: .cumulative, isMonotonic: true)),
                    ])
                ])
        ]))

    func run(_ processor: String, _ name: String) async throws -> [String: [[KeyValue]]] {
        let p = try await MetricsPipeline(processors: processor, names: [name])
        try await p.send(Self.twoMetrics)
        await p.graph.shutdown()
        var out: [String: [[KeyValue]]] = [:]
        for case .metrics(let m) in p.output.batches {
            for rm in m.resourceMetrics {
                for sm in rm.scopeMetrics {
                    for metric in sm.metrics {
                        if case .sum(let points, _, _) = metric.data { out[metric.name, default: []] += points.map(\.attributes) }
                    }
                }
            }
        }
        return out
    }

    @Test func filterExcludesPointsByMetricNameAndLabelValueTogether() async throws {
        // Both criteria must hold: only http_requests' code=500 point goes.
        let got = try await run(
            """
              filter/m:
                metrics:
                  exclude:
                    match_type: strict
                    metric_names: [http_requests]
                    attributes: [{key: code, value: "500"}]
            """, "filter/m")
        #expect(got["http_requests"] == [[KeyValue("code", .string("200"))]])
        #expect(got["grpc_requests"] == Self.codes.map(\.attributes))
    }

    @Test func filterIncludesPointsByMetricNameRegexAndLabelValue() async throws {
        let got = try await run(
            """
              filter/m:
                metrics:
                  include:
                    match_type: regexp
                    metric_names: ["^http_"]
                    attributes: [{key: code, value: "^5"}]
            """, "filter/m")
        #expect(got == ["http_requests": [[KeyValue("code", .string("500"))]]])
    }

    @Test func attributesActOnPointsSelectedByMetricNameAndLabelValue() async throws {
        let got = try await run(
            """
              attributes/m:
                include:
                  match_type: strict
                  metric_names: [grpc_requests]
                  attributes: [{key: code, value: "500"}]
                actions:
                  - {key: code, value: server_error, action: update}
                  - {key: team, value: payments, action: insert}
            """, "attributes/m")
        #expect(got["http_requests"] == Self.codes.map(\.attributes))
        #expect(
            got["grpc_requests"] == [
                [KeyValue("code", .string("200"))], [KeyValue("code", .string("server_error")), KeyValue("team", .string("payments"))],
            ])
    }
}
