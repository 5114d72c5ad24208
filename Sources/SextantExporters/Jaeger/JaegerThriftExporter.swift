import SextantJaeger
import SextantModel
import SextantPipeline
import SextantSecurity

/// `jaeger_thrift` exporter: posts jaeger.thrift `Batch`es (binary protocol) to a Jaeger collector's
/// `/api/traces`, one batch per resource, mapped as the OTel Collector maps OTLP to Jaeger.
public struct JaegerThriftExporterFactory: ExporterFactory {
    struct Config: ComponentConfig {
        var endpoint = ""
        var headers: [(String, String)] = []
        var helper = ExporterHelperSettings()
        var security = ClientSecurity()
        var tlsConfigured = false
    }

    public init() {}
    public let type = "jaeger_thrift"
    public let signals: Set<Signal> = [.traces]
    public let summary = "sends jaeger.thrift Batches (binary) over HTTP to a Jaeger collector's /api/traces"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        c.endpoint = r.string("endpoint", default: "")
        if c.endpoint.isEmpty {
            r.error("endpoint", "\(r.path)::endpoint is required (e.g. http://127.0.0.1:14268/api/traces)")
        } else if URLParts.parse(c.endpoint) == nil {
            r.error("endpoint", "\(r.path)::endpoint must be an http:// or https:// URL, found '\(c.endpoint)'")
        }
        c.headers = r.stringMap("headers")
        (c.security, c.tlsConfigured) = ClientSecurity.parseHTTP(&r)
        c.helper = ExporterHelperSettings.parse(&r)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        let c = config as! Config
        let client = HTTPExportClient(c.security, configured: c.tlsConfigured, settings: settings)
        let helper = ExporterHelper(c.helper, component: settings) { batch in
            guard case .traces(let traces) = batch else { throw ConsumerError.permanent("jaeger_thrift exports traces only") }
            for jaegerBatch in JaegerTranslator.fromTraces(traces) {
                let reply = try await HTTPPoster.post(
                    c.endpoint, contentType: "application/x-thrift", body: JaegerThrift.encodeBatch(jaegerBatch, protocol: .binary),
                    gzip: false, headers: c.headers, timeout: c.helper.timeout, via: client)
                try HTTPPoster.check(reply, url: c.endpoint, detail: String(decoding: reply.body.prefix(256), as: UTF8.self))
            }
        }
        return JaegerThriftExporter(helper: helper, client: client)
    }
}

/// Queues each resource's spans as its own batch, so a retry resends only the Jaeger `Batch` that
/// failed, never one the collector already accepted.
struct JaegerThriftExporter: ConsumingComponent {
    let helper: ExporterHelper<ContinuousClock>
    let client: HTTPExportClient

    func start() async throws {
        try client.start()
        helper.start()
    }

    func shutdown() async {
        await helper.shutdown()
        await client.shutdown()
    }

    func consume(_ telemetry: Telemetry) async throws {
        guard case .traces(let t) = telemetry, t.resourceSpans.count > 1 else { return try await helper.consume(telemetry) }
        for rs in t.resourceSpans { try await helper.consume(.traces(TracesData(resourceSpans: [rs]))) }
    }
}

/// An exporter that is nothing but its `ExporterHelper`.
struct HelperBackedExporter: ConsumingComponent {
    let helper: ExporterHelper<ContinuousClock>
    var readsTraceModel = true
    func start() async throws { helper.start() }
    func shutdown() async { await helper.shutdown() }
    func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
