import Logging
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantSecurity
import SextantSnappy

/// `prometheusremotewrite` exporter config (as in the OTel Collector's exporter of that name).
public struct PrometheusRemoteWriteExporterConfig: ComponentConfig {
    public var endpoint = ""
    public var headers: [(String, String)] = []
    /// Naming, labels, metadata and `target_info` (`conversion.targetInfo`).
    public var conversion = RemoteWrite.ConversionOptions()
    public var maxBatchSizeBytes = 3_000_000
    public var helper = ExporterHelperSettings()
    /// `tls` (used with an `https://` endpoint) and `auth`.
    public var security = ClientSecurity()
    var tlsConfigured = false
}

public struct PrometheusRemoteWriteExporterFactory: ExporterFactory {
    public init() {}
    public let type = "prometheusremotewrite"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "Prometheus remote write 1.0: snappy-compressed protobuf WriteRequest to /api/v1/write"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = PrometheusRemoteWriteExporterConfig()
        c.endpoint = r.string("endpoint", default: "")
        if c.endpoint.isEmpty {
            r.error("endpoint", "\(r.path)::endpoint is required (e.g. http://127.0.0.1:9090/api/v1/write)")
        } else if URLParts.parse(c.endpoint) == nil {
            r.error("endpoint", "\(r.path)::endpoint must be an http:// or https:// URL, found '\(c.endpoint)'")
        }
        c.headers = r.stringMap("headers")
        (c.security, c.tlsConfigured) = ClientSecurity.parseHTTP(&r)
        c.conversion.samples.namespace = r.string("namespace", default: "")
        c.conversion.externalLabels = r.stringMap("external_labels")
        var conversion = r.section("resource_to_telemetry_conversion")
        c.conversion.samples.resourceToTelemetry = conversion.bool("enabled", default: false)
        conversion.finish()
        var targetInfo = r.section("target_info")
        c.conversion.targetInfo = targetInfo.bool("enabled", default: true)
        targetInfo.finish()
        c.conversion.sendMetadata = r.bool("send_metadata", default: false)
        // Remote write 1.0 mandates Snappy block compression; the key exists for OTel configs that spell it.
        _ = r.choice("compression", ["snappy"], default: "snappy")
        c.maxBatchSizeBytes = r.byteSize("max_batch_size_bytes", default: c.maxBatchSizeBytes, min: 1024)
        // One queue consumer by default: Prometheus refuses a series' samples older than the newest it
        // holds ("out of order sample", a 400 that cannot be retried), so batches must arrive in the order
        // they were queued, also when a backlog drains after an outage. Several consumers deliver the
        // backlog in whatever order their retries succeed, and the samples that lose the race are lost.
        var defaults = ExporterHelperSettings()
        defaults.queue.numConsumers = 1
        c.helper = ExporterHelperSettings.parse(&r, defaults: defaults)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        PrometheusRemoteWriteExporter(config as! PrometheusRemoteWriteExporterConfig, settings: settings)
    }
}

/// Converts each batch to remote-write series (`RemoteWrite.convert`), splits it into requests of at
/// most `max_batch_size_bytes` (encoded, before compression), and POSTs each with the headers the
/// remote-write 1.0 spec requires (`Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
/// `X-Prometheus-Remote-Write-Version: 0.1.0`). Per the spec, 5xx and 429 are retried (through the
/// shared queue/retry helper, honouring `Retry-After`), any other 4xx drops the batch. When a later
/// request of a split batch fails, the retry resends the whole batch; Prometheus accepts the repeated
/// identical samples.
public final class PrometheusRemoteWriteExporter: ConsumingComponent {
    private let helper: ExporterHelper<ContinuousClock>
    private let client: HTTPExportClient

    public init(_ config: PrometheusRemoteWriteExporterConfig, settings: ComponentSettings) {
        let client = HTTPExportClient(config.security, configured: config.tlsConfigured, settings: settings)
        self.client = client
        let labels = [("exporter", settings.id.description)]
        let skipped = settings.telemetry.counter(
            "sextant_exporter_prometheusremotewrite_skipped_points_total",
            help: "Points with no remote-write form (delta temporality, exponential histograms) dropped.", labels: labels)
        let logger = settings.logger
        var headers = config.headers
        headers.append(("Content-Encoding", "snappy"))
        headers.append(("X-Prometheus-Remote-Write-Version", "0.1.0"))
        let fixedHeaders = headers
        // The labels of the series converted recently, for the next batches of the same series.
        let labelCache = RemoteWrite.LabelCache()
        helper = ExporterHelper(config.helper, component: settings) { batch in
            guard case .metrics(let metrics) = batch else { throw ConsumerError.permanent("prometheusremotewrite exports metrics only") }
            let conversion = RemoteWrite.convert([metrics], options: config.conversion, cache: labelCache)
            if conversion.skipped.points > 0 {
                skipped.add(conversion.skipped.points)
                logger.debug("points without a remote-write form dropped", metadata: ["reasons": "\(conversion.skipped.reasons.sorted())"])
            }
            for request in conversion.encodedRequests(maxBytes: config.maxBatchSizeBytes) {
                let reply = try await HTTPPoster.post(
                    config.endpoint, contentType: "application/x-protobuf", body: Snappy.compress(request), gzip: false,
                    headers: fixedHeaders, timeout: config.helper.timeout, via: client)
                try HTTPPoster.check(
                    reply, url: config.endpoint, detail: String(decoding: reply.body.prefix(256), as: UTF8.self),
                    retryable: { $0 == 429 || $0 >= 500 })
            }
        }
    }

    public func start() async throws {
        try client.start()
        helper.start()
    }

    public func shutdown() async {
        await helper.shutdown()
        await client.shutdown()
    }
    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
