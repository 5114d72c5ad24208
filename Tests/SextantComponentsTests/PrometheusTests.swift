import Logging
import NIOCore
import NIOHTTP1
import SextantExporters
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantReceivers
import SextantSnappy
import SextantTesting
import Synchronization
import Testing

private func counter(_ name: String, _ value: Int64, at t: UInt64, start: UInt64 = 1_000_000_000, temporality: AggregationTemporality = .cumulative)
    -> Telemetry
{
    .metrics(
        MetricsData(resourceMetrics: [
            ResourceMetrics(
                resource: Resource(attributes: [KeyValue("service.name", .string("shop")), KeyValue("host.name", .string("h1"))]),
                scopeMetrics: [ScopeMetrics(metrics: [
                    Metric(
                        name: name, unit: "{request}",
                        data: .sum(
                            [NumberDataPoint(attributes: [KeyValue("code", .string("200"))], startTimeUnixNano: start, timeUnixNano: t, value: .int(value))],
                            temporality: temporality, isMonotonic: true))
                ])])
        ]))
}

private func get(_ port: Int, _ headers: [String] = []) throws -> RawHTTPClient.Response {
    let c = try RawHTTPClient(port: port)
    c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    return try c.readResponse()
}

/// The `prometheus` exporter: what it serves after being fed, negotiation, accumulation, expiry.
@Suite(.serialized) struct PrometheusExporterTests {
    func exporter(_ extra: String = "") async throws -> (Running, Int) {
        let r = try await start(
            """
            receivers:
              testrecv:
            exporters:
              prometheus: {endpoint: "127.0.0.1:0", enable_open_metrics: true, const_labels: {mesh: m1}\(extra)}
            service:
              pipelines:
                metrics: {receivers: [testrecv], exporters: [prometheus]}
            """)
        return (r, r.component("exporter/prometheus", as: PrometheusExporter.self).port!)
    }

    @Test func servesLatestStateWithNegotiation() async throws {
        let (r, port) = try await exporter()
        try await r.harness.send(counter("http.requests", 5, at: 2_000_000_000), via: "testrecv")
        try await r.harness.send(counter("http.requests", 9, at: 3_000_000_000), via: "testrecv")
        try await r.harness.send(counter("http.requests", 7, at: 2_500_000_000), via: "testrecv")  // older: ignored
        let text = try get(port)
        #expect(text.status == 200 && text.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(
            text.text == """
                # HELP http_requests_total http.requests
                # TYPE http_requests_total counter
                http_requests_total{code="200",job="shop",mesh="m1"} 9
                # HELP target_info Target metadata
                # TYPE target_info gauge
                target_info{host_name="h1",job="shop"} 1

                """)
        let om = try get(port, ["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"])
        #expect(om.header("content-type") == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        #expect(om.text.contains("# TYPE http_requests counter\n") && om.text.contains("http_requests_created{code=\"200\",job=\"shop\",mesh=\"m1\"} 1\n"))
        #expect(om.text.hasSuffix("# EOF\n"))
        // OpenMetrics only with a non-zero q.
        #expect(try get(port, ["Accept: application/openmetrics-text;q=0, text/plain"]).header("content-type")!.hasPrefix("text/plain"))
        let zipped = try get(port, ["Accept-Encoding: br, gzip"])
        #expect(zipped.header("content-encoding") == "gzip" && zipped.body.starts(with: [0x1F, 0x8B]))
        let c = try RawHTTPClient(port: port)
        c.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try c.readResponse().status == 404)
        c.post("/metrics", body: [])
        #expect(try c.readResponse().status == 405)
        await r.graph.shutdown()
    }

    @Test func openMetricsOnlyWhenEnabled() async throws {
        let r = try await start(
            """
            receivers:
              testrecv:
            exporters:
              prometheus: {endpoint: "127.0.0.1:0", namespace: app}
            service:
              pipelines:
                metrics: {receivers: [testrecv], exporters: [prometheus]}
            """)
        let port = r.component("exporter/prometheus", as: PrometheusExporter.self).port!
        try await r.harness.send(counter("hits", 1, at: 2_000_000_000), via: "testrecv")
        let resp = try get(port, ["Accept: application/openmetrics-text;version=1.0.0"])
        #expect(resp.header("content-type")!.hasPrefix("text/plain") && resp.text.contains("app_hits_total{code=\"200\",job=\"shop\"} 1\n"))
        await r.graph.shutdown()
    }

    @Test func accumulatesDeltasAndExpires() async throws {
        let (r, port) = try await exporter(", metric_expiration: 2s")
        try await r.harness.send(counter("d", 2, at: 2_000_000_000, start: 1_000_000_000, temporality: .delta), via: "testrecv")
        try await r.harness.send(counter("d", 3, at: 3_000_000_000, start: 2_000_000_000, temporality: .delta), via: "testrecv")
        let om = try get(port, ["Accept: application/openmetrics-text"])
        #expect(om.text.contains("d_total{code=\"200\",job=\"shop\",mesh=\"m1\"} 5\n"), "\(om.text)")
        #expect(om.text.contains("d_created{code=\"200\",job=\"shop\",mesh=\"m1\"} 1\n"))
        // Delta histograms add up bucket by bucket.
        func histogram(_ counts: [UInt64], at t: UInt64) -> Telemetry {
            .metrics(MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [
                Metric(
                    name: "lat", unit: "s",
                    data: .histogram(
                        [HistogramDataPoint(startTimeUnixNano: t - 1_000_000_000, timeUnixNano: t, count: counts.reduce(0, +), sum: 1, bucketCounts: counts, explicitBounds: [1])],
                        temporality: .delta))
            ])])]))
        }
        try await r.harness.send(histogram([1, 2], at: 2_000_000_000), via: "testrecv")
        try await r.harness.send(histogram([3, 0], at: 3_000_000_000), via: "testrecv")
        let text = try get(port).text
        #expect(text.contains("lat_seconds_bucket{mesh=\"m1\",le=\"1\"} 4\n") && text.contains("lat_seconds_bucket{mesh=\"m1\",le=\"+Inf\"} 6\n"), "\(text)")
        #expect(text.contains("lat_seconds_sum{mesh=\"m1\"} 2\n") && text.contains("lat_seconds_count{mesh=\"m1\"} 6\n"))
        // Expiry long enough that a loaded machine does not expire the series between the sends and the
        // scrapes above (300 ms once did), short enough to wait out here.
        try await Task.sleep(for: .milliseconds(2300))
        #expect(try get(port).text == "")
        #expect(r.telemetry.value("sextant_exporter_prometheus_series", labels: [("exporter", "prometheus")]) == 3)
        await r.graph.shutdown()
    }
}

/// A scripted remote-write endpoint: answers each request with the next status, records what it got.
final class ScriptedEndpoint: Sendable {
    struct Got: Sendable {
        var headers: HTTPHeaders
        var request: RemoteWrite.WriteRequest?
    }

    final class Script: Sendable {
        let statuses: Mutex<[Int]>
        let got = Mutex<[Got]>([])
        init(_ statuses: [Int]) { self.statuses = Mutex(statuses) }
    }

    let script: Script
    let server: HTTPServer

    init(_ statuses: [Int]) async throws {
        let script = Script(statuses)
        self.script = script
        server = try await HTTPServer.start(
            HTTPServerConfiguration(host: "127.0.0.1", port: 0, decompress: false), logger: Logger(label: "endpoint")
        ) { request in
            let body = request.body.getBytes(at: request.body.readerIndex, length: request.body.readableBytes) ?? []
            let decoded = (try? Snappy.decompress(body, maxLength: 1 << 24)).flatMap { try? RemoteWrite.WriteRequest.decode($0) }
            script.got.withLock { $0.append(Got(headers: request.head.headers, request: decoded)) }
            let status = script.statuses.withLock { $0.isEmpty ? 204 : $0.removeFirst() }
            return HTTPResponse(status: HTTPResponseStatus(statusCode: status))
        }
    }

    var got: [Got] { script.got.withLock { $0 } }
    var count: Int { got.count }
    var url: String { "http://127.0.0.1:\(server.port)/api/v1/write" }
}

@Suite(.serialized) struct PrometheusRemoteWriteTests {
    func front(_ url: String, _ extra: String = "") async throws -> Running {
        try await start(
            """
            receivers:
              testrecv:
            exporters:
              prometheusremotewrite:
                endpoint: "\(url)"
                headers: {X-Scope-OrgID: tenant-1}
                external_labels: {cluster: c1}
                retry_on_failure: {initial_interval: 10ms, max_interval: 20ms, randomization_factor: 0}\(extra)
            service:
              pipelines:
                metrics: {receivers: [testrecv], exporters: [prometheusremotewrite]}
            """)
    }

    /// 5xx and 429 are retried, other 4xx drop the batch (Remote-Write 1.0 spec, "Retries & Backoff").
    @Test(arguments: [(500, true), (503, true), (429, true), (400, false), (404, false), (413, false)])
    func retryMatrix(_ status: Int, _ retried: Bool) async throws {
        let endpoint = try await ScriptedEndpoint([status])
        let r = try await front(endpoint.url)
        try await r.harness.send(counter("hits", 4, at: 2_000_000_000), via: "testrecv")
        #expect(await eventually { endpoint.count == (retried ? 2 : 1) })
        try await Task.sleep(for: .milliseconds(100))
        #expect(endpoint.count == (retried ? 2 : 1))
        let labels = [("exporter", "prometheusremotewrite"), ("signal", "metrics")]
        #expect(r.telemetry.value("sextant_exporter_retries_total", labels: labels) == (retried ? 1 : 0))
        let first = try #require(endpoint.got.first)
        #expect(first.headers.first(name: "content-encoding") == "snappy")
        #expect(first.headers.first(name: "content-type") == "application/x-protobuf")
        #expect(first.headers.first(name: "x-prometheus-remote-write-version") == "0.1.0")
        #expect(first.headers.first(name: "x-scope-orgid") == "tenant-1")
        let series = try #require(first.request?.timeseries)
        #expect(series.map { $0.metricName } == ["hits_total", "target_info"])
        #expect(series[0].labels.map { "\($0.name)=\($0.value)" } == ["__name__=hits_total", "cluster=c1", "code=200", "job=shop"])
        #expect(series[0].samples == [.init(value: 4, timestamp: 2000)])
        await r.graph.shutdown()
        await endpoint.server.shutdown()
    }

    @Test func splitsByMaxBatchSize() async throws {
        let endpoint = try await ScriptedEndpoint([])
        let r = try await front(endpoint.url, "\n    max_batch_size_bytes: 1024")
        let points = (0..<60).map { i in NumberDataPoint(attributes: [KeyValue("i", .int(Int64(i)))], timeUnixNano: 5_000_000, value: .int(Int64(i))) }
        try await r.harness.send(
            .metrics(MetricsData(resourceMetrics: [ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [Metric(name: "g", data: .gauge(points))])])])),
            via: "testrecv")
        #expect(await eventually { endpoint.got.reduce(0) { $0 + ($1.request?.timeseries.count ?? 0) } == 60 })
        #expect(endpoint.count > 1)
        #expect(endpoint.got.allSatisfy { $0.request != nil })
        await r.graph.shutdown()
        await endpoint.server.shutdown()
    }
}

/// Our remote-write exporter into our receiver, and the receiver's answers to bad input.
@Suite(.serialized) struct PrometheusRemoteWriteReceiverTests {
    func back() async throws -> (Running, Int) {
        let r = try await start(
            """
            receivers:
              prometheusremotewrite: {endpoint: "127.0.0.1:0", max_request_body_size: 4096}
            exporters:
              testexp:
            service:
              pipelines:
                metrics: {receivers: [prometheusremotewrite], exporters: [testexp]}
            """)
        return (r, r.component("receiver/prometheusremotewrite", as: PrometheusRemoteWriteReceiver.self).port!)
    }

    @Test func exporterToReceiver() async throws {
        let (b, port) = try await back()
        let f = try await start(
            """
            receivers:
              testrecv:
            exporters:
              prometheusremotewrite: {endpoint: "http://127.0.0.1:\(port)/api/v1/write"}
            service:
              pipelines:
                metrics: {receivers: [testrecv], exporters: [prometheusremotewrite]}
            """)
        try await f.harness.send(counter("hits", 4, at: 2_000_000_000), via: "testrecv")
        let got = b.harness.exporter("testexp")
        #expect(await eventually { got.itemCount == 2 })  // hits_total and target_info
        guard case .metrics(let m)? = got.batches.first else { return }
        #expect(m.resourceMetrics[0].resource.attributes[key: "service.name"] == .string("shop"))
        let metrics = m.resourceMetrics[0].scopeMetrics[0].metrics
        #expect(metrics.map(\.name) == ["hits_total", "target_info"])
        guard case .sum(let points, .cumulative, true) = metrics[0].data else {
            Issue.record("hits_total is \(metrics[0].data.typeName)")
            return
        }
        #expect(points[0].value == .double(4) && points[0].timeUnixNano == 2_000_000_000)
        #expect(points[0].attributes[key: "code"] == .string("200"))
        await f.graph.shutdown()
        await b.graph.shutdown()
    }

    @Test func badInput() async throws {
        let (b, port) = try await back()
        let c = try RawHTTPClient(port: port)
        let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")]
        c.post("/api/v1/write", body: [5, 0x10, 0x61], headers: headers)
        let corrupt = try c.readResponse()
        #expect(corrupt.status == 400 && corrupt.text.contains("snappy: literal of 5 bytes at offset 1 runs past the end of the input"))
        c.post("/api/v1/write", body: Snappy.compress([0x0A, 9, 0x0A]), headers: headers)
        let proto = try c.readResponse()
        #expect(proto.status == 400 && proto.text.contains("malformed remote-write WriteRequest: truncated length-delimited field 1"))
        // Inflates to 64 KiB: above the 4 KiB limit though the body (about 3 KiB) is within it.
        let zeros = Snappy.compress([UInt8](repeating: 0, count: 1 << 16))
        #expect(zeros.count < 4096)
        c.post("/api/v1/write", body: zeros, headers: headers)
        let inflated = try c.readResponse()
        #expect(inflated.status == 413 && inflated.text.contains("exceeds the limit of 4096 bytes"))
        c.post("/api/v1/write", body: [1, 2], headers: [("Content-Encoding", "gzip")])
        #expect(try c.readResponse().status == 415)
        // A declared body over the limit is refused before it is read (the head alone is sent).
        let big = try RawHTTPClient(port: port)
        big.send("POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nContent-Encoding: snappy\r\n\r\n")
        #expect(try big.readResponse().status == 413)
        #expect(b.harness.exporter("testexp").itemCount == 0)
        await b.graph.shutdown()
    }

    @Test func overloadIs429() async throws {
        let (b, port) = try await back()
        b.harness.exporter("testexp").failNext([.overloaded("memory limit")])
        let req = RemoteWrite.WriteRequest(timeseries: [.init(labels: [.init("__name__", "up")], samples: [.init(value: 1, timestamp: 1)])])
        let c = try RawHTTPClient(port: port)
        c.post("/api/v1/write", body: Snappy.compress(req.encode()), headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")])
        let resp = try c.readResponse()
        #expect(resp.status == 429 && resp.header("retry-after") != nil)
        c.post("/api/v1/write", body: Snappy.compress(req.encode()), headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy")])
        #expect(try c.readResponse().status == 204)
        await b.graph.shutdown()
    }
}
