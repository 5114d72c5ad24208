import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantSecurity
import Synchronization

/// `prometheus` exporter config (as in the OTel Collector's `prometheusexporter`).
public struct PrometheusExporterConfig: ComponentConfig {
    public var host = "127.0.0.1"
    public var port = 8889
    public var samples = PrometheusSamples.Options()
    public var enableOpenMetrics = false
    public var metricExpiration: Duration = .seconds(300)
    public var helper = ExporterHelperSettings.synchronous
    /// `tls`: serve `/metrics` over HTTPS (OTel's `configtls` server block; mutual with `client_ca_file`).
    public var tls: TLSSettings?
}

public struct PrometheusExporterFactory: ExporterFactory {
    public init() {}
    public let type = "prometheus"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "serves the latest metrics on /metrics for Prometheus to scrape: text 0.0.4 or OpenMetrics 1.0, gzip"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = PrometheusExporterConfig()
        (c.host, c.port) = r.endpoint("endpoint", default: "localhost:8889")
        c.samples.namespace = r.string("namespace", default: "")
        c.samples.constLabels = r.stringMap("const_labels")
        var conversion = r.section("resource_to_telemetry_conversion")
        c.samples.resourceToTelemetry = conversion.bool("enabled", default: false)
        conversion.finish()
        c.enableOpenMetrics = r.bool("enable_open_metrics", default: false)
        c.metricExpiration = r.duration("metric_expiration", default: c.metricExpiration, allowZero: false)
        c.tls = TLSSettings.parseServer(&r)
        c.helper = ExporterHelperSettings.parse(&r, defaults: c.helper)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        PrometheusExporter(config as! PrometheusExporterConfig, settings: settings)
    }
}

/// Keeps the latest point of every series it is fed and serves them on `GET /metrics` for Prometheus
/// to scrape (OTel `prometheusexporter` semantics):
/// - cumulative points replace older ones of the same series; delta sums and delta histograms are
///   accumulated into cumulative ones (the OTel exporter's accumulator), and reset when a histogram's
///   bounds change;
/// - a series not updated for `metric_expiration` disappears; a `NO_RECORDED_VALUE` point removes it;
/// - the answer is OpenMetrics 1.0 when `enable_open_metrics` is set and the `Accept` header asks for
///   `application/openmetrics-text`, else text 0.0.4; gzip when `Accept-Encoding` allows it.
public final class PrometheusExporter: ConsumingComponent {
    private let config: PrometheusExporterConfig
    private let logger: Logger
    private let helper: ExporterHelper<ContinuousClock>
    private let store: PrometheusSeriesStore
    private let server = Mutex<HTTPServer?>(nil)

    public init(_ config: PrometheusExporterConfig, settings: ComponentSettings) {
        self.config = config
        self.logger = settings.logger
        let labels = [("exporter", settings.id.description)]
        let seriesGauge = settings.telemetry.gauge(
            "sextant_exporter_prometheus_series", help: "Series held by the prometheus exporter for scraping.", labels: labels)
        let skipped = settings.telemetry.counter(
            "sextant_exporter_prometheus_skipped_points_total", help: "Points with no Prometheus form (exponential histograms) dropped.",
            labels: labels)
        let store = PrometheusSeriesStore(options: config.samples, expiration: config.metricExpiration)
        self.store = store
        let logger = settings.logger
        helper = ExporterHelper(config.helper, component: settings) { batch in
            guard case .metrics(let m) = batch else { throw ConsumerError.permanent("prometheus exports metrics only") }
            let result = store.update(m, now: .now)
            seriesGauge.set(result.series)
            if result.skipped.points > 0 {
                skipped.add(result.skipped.points)
                logger.debug("points without a Prometheus form dropped", metadata: ["reasons": "\(result.skipped.reasons.sorted())"])
            }
        }
    }

    public var port: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        let store = self.store
        let openMetrics = config.enableOpenMetrics
        var serverConfig = HTTPServerConfiguration(host: config.host, port: config.port, maxRequestBodySize: 1 << 16)
        serverConfig.tls = try config.tls?.makeContext(applicationProtocols: ["http/1.1"])
        let s = try await HTTPServer.start(serverConfig, logger: logger) { request in
            guard request.path == "/metrics" else { return .text(.notFound, "unknown path \(request.path); use /metrics") }
            guard request.head.method == .GET || request.head.method == .HEAD else {
                var r = HTTPResponse.text(.methodNotAllowed, "use GET")
                r.headers.add(name: "allow", value: "GET, HEAD")
                return r
            }
            return Self.scrape(request, store: store, openMetrics: openMetrics)
        }
        server.withLock { $0 = s }
        helper.start()
        logger.info("Prometheus exporter listening", metadata: ["endpoint": "\(config.tls == nil ? "http" : "https")://\(config.host):\(s.port)/metrics"])
    }

    static func scrape(_ request: HTTPRequest, store: PrometheusSeriesStore, openMetrics: Bool) -> HTTPResponse {
        let families = store.snapshot(now: .now)
        let useOpenMetrics = openMetrics && ContentNegotiation.accepts(request.head.headers[canonicalForm: "accept"], "application/openmetrics-text")
        let text = useOpenMetrics ? OpenMetricsText.render(families) : PrometheusText.render(families)
        var headers: HTTPHeaders = ["content-type": useOpenMetrics ? OpenMetricsText.contentType : PrometheusText.contentType]
        var body = Array(text.utf8)
        if ContentNegotiation.accepts(request.head.headers[canonicalForm: "accept-encoding"], "gzip") {
            body = Inflater.gzip(body)
            headers.add(name: "content-encoding", value: "gzip")
        }
        headers.add(name: "vary", value: "Accept, Accept-Encoding")
        return HTTPResponse(status: .ok, headers: headers, body: request.head.method == .HEAD ? ByteBuffer() : ByteBuffer(bytes: body))
    }

    public func shutdown() async {
        await helper.shutdown()
        await server.withLock { $0 }?.shutdown()
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}

/// HTTP `Accept`/`Accept-Encoding` lists (RFC 9110 §12.5): whether `token` is listed with a non-zero
/// `q` (a media type matches with or without parameters such as `version`).
enum ContentNegotiation {
    static func accepts(_ values: [Substring], _ token: String) -> Bool {
        for value in values {
            for item in value.split(separator: ",") {
                let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: " \t").lowercased() }
                guard parts.first == token else { continue }
                let q = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
                if q > 0 { return true }
            }
        }
        return false
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
