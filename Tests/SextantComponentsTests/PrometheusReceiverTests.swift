import Logging
import NIOCore
import NIOHTTP1
import SextantCollector
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantReceivers
import SextantTesting
import Synchronization
import Testing

/// The `prometheus` receiver against local HTTP targets: content negotiation, both formats, gzip, relabeling,
/// synthetic series, failures (malformed exposition, HTTP 500, oversized body, timeout) isolated per target,
/// staleness, and config errors.
@Suite(.serialized) struct PrometheusReceiverComponentTests {
    /// A target whose answer can be changed while the test runs; it records the request headers it saw.
    final class Target: Sendable {
        struct Answer: Sendable {
            var status: HTTPResponseStatus = .ok
            var contentType = "text/plain; version=0.0.4; charset=utf-8"
            var body = ""
            var gzip = false
            var delay: Duration = .zero
        }
        final class State: Sendable {
            let answer = Mutex(Answer())
            let seen = Mutex<[HTTPHeaders]>([])
        }
        let state = State()
        let server: HTTPServer

        init() async throws {
            let state = self.state
            server = try await HTTPServer.start(HTTPServerConfiguration(host: "127.0.0.1", port: 0), logger: Logger(label: "target")) { request in
                state.seen.withLock { $0.append(request.head.headers) }
                let a = state.answer.withLock { $0 }
                if a.delay > .zero { try? await Task.sleep(for: a.delay) }
                var headers = HTTPHeaders([("content-type", a.contentType)])
                var body = Array(a.body.utf8)
                if a.gzip {
                    body = Inflater.gzip(body)
                    headers.add(name: "content-encoding", value: "gzip")
                }
                return HTTPResponse(status: a.status, headers: headers, body: ByteBuffer(bytes: body))
            }
        }

        var address: String { "127.0.0.1:\(server.port)" }
        func set(_ change: (inout Answer) -> Void) { state.answer.withLock { change(&$0) } }
    }

    static let text = """
        # HELP http_requests_total Requests.
        # TYPE http_requests_total counter
        http_requests_total{code="200",path="/a"} 10
        http_requests_total{code="500",path="/a"} 2
        # TYPE latency_seconds histogram
        latency_seconds_bucket{le="0.1"} 1
        latency_seconds_bucket{le="1"} 3
        latency_seconds_bucket{le="+Inf"} 4
        latency_seconds_sum 2.5
        latency_seconds_count 4
        # TYPE go_goroutines gauge
        go_goroutines 7

        """

    static let openMetrics = """
        # TYPE jobs counter
        # HELP jobs Jobs run.
        jobs_total{queue="q1"} 5 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 1
        jobs_created{queue="q1"} 1700000000.5
        # TYPE build info
        build_info{version="1.2"} 1
        # EOF

        """

    func collector(_ scrapeConfigs: String) async throws -> Running {
        try await start(
            """
            receivers:
              prometheus:
                config:
                  scrape_configs:
            \(scrapeConfigs)
            exporters:
              testexp:
            service:
              pipelines:
                metrics: {receivers: [prometheus], exporters: [testexp]}
            """)
    }

    /// All metrics received so far, per `service.instance.id`, flattened.
    func received(_ c: Running) -> [(instance: String, metric: Metric)] {
        c.harness.exporter("testexp").batches.flatMap { b -> [(String, Metric)] in
            guard case .metrics(let m) = b else { return [] }
            return m.resourceMetrics.flatMap { rm in
                let instance = rm.resource.attributes[key: "service.instance.id"]?.asString ?? ""
                return rm.scopeMetrics.flatMap { $0.metrics.map { (instance, $0) } }
            }
        }
    }

    func values(_ c: Running, _ name: String, instance: String) -> [NumberDataPoint] {
        received(c).filter { $0.instance == instance && $0.metric.name == name }.flatMap { m -> [NumberDataPoint] in
            switch m.metric.data {
            case .gauge(let p), .sum(let p, _, _): return p
            default: return []
            }
        }
    }

    @Test func scrapesTextAndOpenMetricsWithRelabeling() async throws {
        let a = try await Target()
        a.set { $0.body = Self.text }
        let b = try await Target()
        b.set {
            $0.body = Self.openMetrics
            $0.contentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
            $0.gzip = true
        }
        let c = try await collector(
            """
                    - job_name: api
                      scrape_interval: 200ms
                      scrape_timeout: 150ms
                      static_configs:
                        - targets: ["\(a.address)", "\(b.address)"]
                          labels: {env: prod}
                      metric_relabel_configs:
                        - {source_labels: [__name__], regex: "go_.*", action: drop}
                        - {source_labels: [code], regex: "5(..)", target_label: class, replacement: "server-$1"}
            """)
        #expect(await eventually { !values(c, "up", instance: a.address).isEmpty && !values(c, "up", instance: b.address).isEmpty })
        let headers = try #require(a.state.seen.withLock { $0.first })
        #expect(headers.first(name: "accept") == "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        #expect(headers.first(name: "accept-encoding") == "gzip")
        #expect(headers.first(name: "x-prometheus-scrape-timeout-seconds") == "0.15")

        let requests = values(c, "http_requests_total", instance: a.address)
        #expect(requests.count >= 2)
        let failed = try #require(requests.first { $0.attributes[key: "code"] == .string("500") })
        #expect(failed.attributes[key: "class"] == .string("server-00"))
        #expect(failed.attributes[key: "env"] == .string("prod"))
        #expect(failed.attributes[key: "job"] == nil && failed.attributes[key: "instance"] == nil)
        #expect(values(c, "go_goroutines", instance: a.address).isEmpty)  // dropped by relabeling
        #expect(values(c, "up", instance: a.address).first?.value == .double(1))
        #expect(values(c, "scrape_samples_scraped", instance: a.address).first?.value == .double(8))
        #expect(values(c, "scrape_samples_post_metric_relabeling", instance: a.address).first?.value == .double(7))
        #expect(values(c, "scrape_series_added", instance: a.address).first?.value == .double(3))
        let histogram = received(c).first { $0.instance == a.address && $0.metric.name == "latency_seconds" }?.metric
        guard case .histogram(let h, .cumulative)? = histogram?.data else {
            Issue.record("no histogram")
            return
        }
        #expect(h[0].explicitBounds == [0.1, 1] && h[0].bucketCounts == [1, 2, 1] && h[0].count == 4 && h[0].sum == 2.5)

        // The OpenMetrics target (gzip): counter with _created start time and exemplar, info as a sum.
        let jobs = values(c, "jobs_total", instance: b.address)
        #expect(jobs.first?.value == .double(5))
        #expect(jobs.first?.startTimeUnixNano == 1_700_000_000_500_000_000)
        #expect(jobs.first?.exemplars.first?.traceID == TraceID(hex: "4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(values(c, "build_info", instance: b.address).first?.attributes[key: "version"] == .string("1.2"))
        let resource = c.harness.exporter("testexp").batches.compactMap { b -> Resource? in
            guard case .metrics(let m) = b else { return nil }
            return m.resourceMetrics.first?.resource
        }.first { $0.attributes[key: "service.instance.id"] == .string(b.address) }
        #expect(resource?.attributes[key: "service.name"] == .string("api"))
        #expect(resource?.attributes[key: "server.port"] == .int(Int64(b.server.port)))
        #expect(resource?.attributes[key: "url.scheme"] == .string("http"))

        await c.graph.shutdown()
        await a.server.shutdown()
        await b.server.shutdown()
    }

    @Test func failuresAreIsolatedAndMarkSeriesStale() async throws {
        let good = try await Target()
        good.set { $0.body = "# TYPE g gauge\ng 1\n" }
        let bad = try await Target()
        bad.set { $0.body = "# TYPE g gauge\ng 1\n" }
        let c = try await collector(
            """
                    - job_name: pair
                      scrape_interval: 150ms
                      scrape_timeout: 100ms
                      static_configs: [{targets: ["\(good.address)", "\(bad.address)"]}]
            """)
        #expect(await eventually { values(c, "g", instance: bad.address).count >= 1 })
        // Malformed: line 2 has no value. The bad target goes down and its series get a staleness marker.
        bad.set { $0.body = "# TYPE g gauge\ng\n" }
        #expect(await eventually { values(c, "up", instance: bad.address).contains { $0.value == .double(0) } })
        #expect(values(c, "g", instance: bad.address).contains { $0.flags == DataPointFlags.noRecordedValue })
        // The good target's scrapes run on their own schedule: wait for its first, then check none failed.
        #expect(await eventually { !values(c, "up", instance: good.address).isEmpty })
        #expect(values(c, "up", instance: good.address).allSatisfy { $0.value == .double(1) })
        // HTTP 500, a timeout and an oversized body are failures too.
        for change: (inout Target.Answer) -> Void in [
            { $0.status = .internalServerError },
            { $0.delay = .milliseconds(300) },
        ] {
            bad.set {
                $0 = Target.Answer(body: "# TYPE g gauge\ng 1\n")
                change(&$0)
            }
            let before = values(c, "up", instance: bad.address).count
            #expect(await eventually { values(c, "up", instance: bad.address).count >= before + 2 })
            #expect(values(c, "up", instance: bad.address).last?.value == .double(0))
        }
        await c.graph.shutdown()
        await good.server.shutdown()
        await bad.server.shutdown()
    }

    @Test func bodySizeLimit() async throws {
        let t = try await Target()
        t.set { $0.body = "# TYPE g gauge\n" + (0..<2000).map { "g{i=\"\($0)\"} 1\n" }.joined() }
        let c = try await collector(
            """
                    - job_name: big
                      scrape_interval: 100ms
                      scrape_timeout: 100ms
                      body_size_limit: 1KiB
                      static_configs: [{targets: ["\(t.address)"]}]
            """)
        #expect(await eventually { !values(c, "up", instance: t.address).isEmpty })
        #expect(values(c, "up", instance: t.address).first?.value == .double(0))
        #expect(values(c, "g", instance: t.address).isEmpty)
        await c.graph.shutdown()
        await t.server.shutdown()
    }

    @Test func configErrors() throws {
        let yaml = """
            receivers:
              prometheus:
                config:
                  scrape_configs:
                    - job_name: a
                      scrape_interval: 5s
                      scrape_timeout: 10s
                      scheme: ftp
                      static_configs: [{targets: ["nohost"], labels: {"1bad": x}}]
                      metric_relabel_configs:
                        - {source_labels: [a], regex: "(", action: drop}
                        - {action: replace}
                        - {action: explode, source_labels: [a]}
                      scrape_intreval: 1s
                    - job_name: a
                      static_configs: []
            exporters:
              nop:
            service:
              pipelines:
                metrics: {receivers: [prometheus], exporters: [nop]}
            """
        do {
            _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: BuiltinComponents.registry)
            Issue.record("config accepted")
        } catch let e as ConfigError {
            let all = e.diagnostics.map(\.description).joined(separator: "\n")
            #expect(all.contains("scrape_timeout must not be greater than scrape_interval (5s)"))
            #expect(all.contains("'ftp' is not one of http, https"))
            #expect(all.contains("'nohost' must be host:port"))
            #expect(all.contains("'1bad' is not a valid label name"))
            #expect(all.contains("invalid regular expression '('"))
            #expect(all.contains("target_label is required for action replace"))
            #expect(all.contains("'explode' is not one of"))
            #expect(all.contains("unknown key 'scrape_intreval'"))
            #expect(all.contains("job 'a' is defined twice"))
            #expect(all.contains("c.yaml:"))
        }
    }
}
