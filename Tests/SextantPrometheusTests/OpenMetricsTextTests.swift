import SextantModel
import SextantPrometheus
import Testing

/// Shared inputs for the exposition and remote-write goldens.
enum Fixtures {
    static let resource = Resource(attributes: [
        KeyValue("service.name", .string("checkout")), KeyValue("service.instance.id", .string("pod-1")),
        KeyValue("k8s.pod.name", .string("checkout-abc")),
    ])
    static let trace = TraceID(high: 0x0102_0304_0506_0708, low: 0x090a_0b0c_0d0e_0f10)
    static let t0: UInt64 = 1_700_000_000_000_000_000
    static let t1: UInt64 = 1_700_000_010_500_000_000

    static func data() -> MetricsData {
        MetricsData(resourceMetrics: [
            ResourceMetrics(resource: resource, scopeMetrics: [ScopeMetrics(metrics: [
                Metric(
                    name: "http.server.requests", description: "Requests \"served\".", unit: "{request}",
                    data: .sum([
                        NumberDataPoint(
                            attributes: [KeyValue("code", .string("200"))], startTimeUnixNano: t0, timeUnixNano: t1, value: .int(40),
                            exemplars: [Exemplar(timeUnixNano: t1, value: .int(1), spanID: SpanID(0xabc), traceID: trace)])
                    ], temporality: .cumulative, isMonotonic: true)),
                Metric(name: "queue.size", unit: "By", data: .gauge([NumberDataPoint(timeUnixNano: t1, value: .double(3.5))])),
                Metric(
                    name: "http.server.duration", unit: "s",
                    data: .histogram([
                        HistogramDataPoint(
                            startTimeUnixNano: t0, timeUnixNano: t1, count: 5, sum: 1.25, bucketCounts: [1, 3, 1], explicitBounds: [0.1, 1],
                            exemplars: [Exemplar(timeUnixNano: t1, value: .double(0.5), spanID: SpanID(0xdef), traceID: trace)])
                    ], temporality: .cumulative)),
                Metric(name: "rpc.latency", unit: "s", data: .summary([
                    SummaryDataPoint(timeUnixNano: t1, count: 4, sum: 2, quantileValues: [.init(quantile: 0.5, value: 0.25)])
                ])),
            ])])
        ])
    }
}

@Suite struct OpenMetricsTextTests {
    @Test func negativeCountersAreLeftOutOfOpenMetricsOnly() {
        let data = MetricsData(resourceMetrics: [
            ResourceMetrics(resource: Fixtures.resource, scopeMetrics: [ScopeMetrics(metrics: [
                Metric(name: "broken", data: .sum([
                    NumberDataPoint(attributes: [KeyValue("k", .string("neg"))], timeUnixNano: Fixtures.t1, value: .double(-1)),
                    NumberDataPoint(attributes: [KeyValue("k", .string("ok"))], timeUnixNano: Fixtures.t1, value: .double(2)),
                ], temporality: .cumulative, isMonotonic: true))
            ])])
        ])
        let om = OpenMetricsText.render([data])
        #expect(om.contains("broken_total{") && om.contains("k=\"ok\"") && !om.contains("k=\"neg\""))
        #expect(PrometheusText.render([data]).contains("k=\"neg\""))
    }

    /// A gauge `h_created` beside a histogram `h` (and `s_count` beside a summary `s`): each pair would
    /// expose one series name twice, which Prometheus refuses for the whole scrape. The family that sorts
    /// first keeps the name; the other is left out — in OpenMetrics only where only OpenMetrics collides.
    @Test func familiesWhoseNamesCollideAreLeftOut() {
        let t = Fixtures.t1
        let data = MetricsData(resourceMetrics: [
            ResourceMetrics(resource: Fixtures.resource, scopeMetrics: [ScopeMetrics(metrics: [
                Metric(name: "h", data: .histogram([
                    HistogramDataPoint(startTimeUnixNano: Fixtures.t0, timeUnixNano: t, count: 1, sum: 1, bucketCounts: [1, 0], explicitBounds: [1])
                ], temporality: .cumulative)),
                Metric(name: "h_created", data: .gauge([NumberDataPoint(timeUnixNano: t, value: .double(7))])),
                Metric(name: "s", data: .summary([SummaryDataPoint(timeUnixNano: t, count: 4, sum: 2, quantileValues: [])])),
                Metric(name: "s_count", data: .gauge([NumberDataPoint(timeUnixNano: t, value: .double(9))])),
            ])])
        ])
        let labels = #"{instance="pod-1",job="checkout"}"#
        let om = OpenMetricsText.render([data])
        #expect(om.contains("h_created\(labels) 1700000000\n") && !om.contains("# TYPE h_created") && !om.contains("} 7\n"))
        #expect(om.contains("s_count\(labels) 4\n") && !om.contains("} 9\n"))
        let text = PrometheusText.render([data])
        #expect(text.contains("# TYPE h_created gauge\nh_created\(labels) 7\n"))
        #expect(text.contains("s_count\(labels) 4\n") && !text.contains("} 9\n"))
    }

    @Test func rendersEveryTypeWithExemplarsAndCreated() {
        let text = OpenMetricsText.render([Fixtures.data()])
        let want = """
            # TYPE http_server_duration_seconds histogram
            # UNIT http_server_duration_seconds seconds
            # HELP http_server_duration_seconds http.server.duration
            http_server_duration_seconds_bucket{instance="pod-1",job="checkout",le="0.1"} 1
            http_server_duration_seconds_bucket{instance="pod-1",job="checkout",le="1"} 4 # {trace_id="0102030405060708090a0b0c0d0e0f10",span_id="0000000000000def"} 0.5 1700000010.5
            http_server_duration_seconds_bucket{instance="pod-1",job="checkout",le="+Inf"} 5
            http_server_duration_seconds_count{instance="pod-1",job="checkout"} 5
            http_server_duration_seconds_sum{instance="pod-1",job="checkout"} 1.25
            http_server_duration_seconds_created{instance="pod-1",job="checkout"} 1700000000
            # TYPE http_server_requests counter
            # HELP http_server_requests Requests \\"served\\".
            http_server_requests_total{code="200",instance="pod-1",job="checkout"} 40 # {trace_id="0102030405060708090a0b0c0d0e0f10",span_id="0000000000000abc"} 1 1700000010.5
            http_server_requests_created{code="200",instance="pod-1",job="checkout"} 1700000000
            # TYPE queue_size_bytes gauge
            # UNIT queue_size_bytes bytes
            # HELP queue_size_bytes queue.size
            queue_size_bytes{instance="pod-1",job="checkout"} 3.5
            # TYPE rpc_latency_seconds summary
            # UNIT rpc_latency_seconds seconds
            # HELP rpc_latency_seconds rpc.latency
            rpc_latency_seconds{instance="pod-1",job="checkout",quantile="0.5"} 0.25
            rpc_latency_seconds_count{instance="pod-1",job="checkout"} 4
            rpc_latency_seconds_sum{instance="pod-1",job="checkout"} 2
            # TYPE target info
            # HELP target Target metadata
            target_info{instance="pod-1",job="checkout",k8s_pod_name="checkout-abc"} 1
            # EOF

            """
        #expect(text == want)
    }

    @Test func latestPointWinsAndStaleRemoves() {
        func gauge(_ v: Double, at t: UInt64, flags: UInt32 = 0, _ name: String = "g") -> MetricsData {
            MetricsData(resourceMetrics: [
                ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
                    Metric(name: name, data: .gauge([NumberDataPoint(timeUnixNano: t, value: .double(v), flags: flags)]))
                ])])
            ])
        }
        #expect(OpenMetricsText.render([gauge(2, at: 20), gauge(1, at: 10)]).contains("\ng 2\n"))
        #expect(OpenMetricsText.render([gauge(2, at: 20), gauge(0, at: 30, flags: DataPointFlags.noRecordedValue)]) == "# EOF\n")
        #expect(PrometheusText.render([gauge(1, at: 10), gauge(2, at: 10)]).hasSuffix("\ng 2\n"))
    }

    @Test func exemplarLabelSetIsBoundedAndTimestampsExact() {
        let long = String(repeating: "x", count: 100)
        let e = Exemplar(
            filteredAttributes: [KeyValue("user", .string("ann")), KeyValue("blob", .string(long))], timeUnixNano: 1_000_000_001,
            value: .int(3), spanID: SpanID(1), traceID: Fixtures.trace)
        let data = MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
            Metric(name: "c", data: .sum([NumberDataPoint(value: .int(3), exemplars: [e])], temporality: .cumulative, isMonotonic: true))
        ])])])
        let text = OpenMetricsText.render([data])
        #expect(text.contains(#"c_total 3 # {trace_id="0102030405060708090a0b0c0d0e0f10",span_id="0000000000000001",user="ann"} 3 1.000000001"#))
    }
}
