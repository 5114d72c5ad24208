import Logging
import SextantModel
import SextantPipeline
import SextantSecurity
import SextantZipkin

/// `zipkin` exporter config (as in the OTel Collector).
public struct ZipkinExporterConfig: ComponentConfig {
    public enum Format: String, Sendable {
        case json
        case proto
    }

    public var endpoint = ""
    public var format: Format = .json
    public var compression = false
    public var headers: [(String, String)] = []
    public var helper = ExporterHelperSettings()
    /// `tls` (used with an `https://` endpoint) and `auth`.
    public var security = ClientSecurity()
    var tlsConfigured = false
}

public struct ZipkinExporterFactory: ExporterFactory {
    public init() {}
    public let type = "zipkin"
    public let signals: Set<Signal> = [.traces]
    public let summary = "sends spans to a Zipkin server: POST /api/v2/spans, JSON or protobuf"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = ZipkinExporterConfig()
        c.endpoint = r.string("endpoint", default: "")
        if c.endpoint.isEmpty {
            r.error("endpoint", "\(r.path)::endpoint is required (e.g. http://127.0.0.1:9411/api/v2/spans)")
        } else if URLParts.parse(c.endpoint) == nil {
            r.error("endpoint", "\(r.path)::endpoint must be an http:// or https:// URL, found '\(c.endpoint)'")
        }
        c.format = .init(rawValue: r.choice("format", ["json", "proto"], default: "json"))!
        c.compression = r.choice("compression", ["gzip", "none"], default: "none") == "gzip"
        c.headers = r.stringMap("headers")
        (c.security, c.tlsConfigured) = ClientSecurity.parseHTTP(&r)
        c.helper = ExporterHelperSettings.parse(&r)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        ZipkinExporter(config as! ZipkinExporterConfig, settings: settings)
    }
}

/// Posts spans in Zipkin v2 form; the mapping (`SextantZipkin`) follows the OTel Collector's.
/// A Zipkin server answers 202; 429 and 5xx are retried, other statuses drop the batch.
public final class ZipkinExporter: ConsumingComponent {
    private let helper: ExporterHelper<ContinuousClock>
    private let client: HTTPExportClient

    public init(_ config: ZipkinExporterConfig, settings: ComponentSettings) {
        let client = HTTPExportClient(config.security, configured: config.tlsConfigured, settings: settings)
        self.client = client
        helper = ExporterHelper(config.helper, component: settings) { batch in
            guard case .traces(let traces) = batch else { throw ConsumerError.permanent("zipkin exports traces only") }
            let proto = config.format == .proto
            let reply = try await HTTPPoster.post(
                config.endpoint, contentType: proto ? "application/x-protobuf" : "application/json",
                body: proto ? ZipkinV2.encodeProto(traces) : ZipkinV2.encodeJSON(traces), gzip: config.compression,
                headers: config.headers, timeout: config.helper.timeout, via: client)
            try HTTPPoster.check(reply, url: config.endpoint, detail: String(decoding: reply.body.prefix(256), as: UTF8.self))
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
