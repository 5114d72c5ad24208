import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantOTLP
import SextantPipeline

public struct OTLPHTTPExporterFactory: ExporterFactory {
    public init() {}
    public let type = "otlphttp"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "sends OTLP over HTTP (protobuf or JSON, gzip) to <endpoint>/v1/<signal>"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { OTLPExporterConfig.parse(&r, grpc: false) }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        OTLPHTTPExporter(config as! OTLPExporterConfig, settings: settings)
    }
}

/// `otlphttp` exporter: POSTs each batch to `<endpoint>/v1/<signal>`.
///
/// Responses per the OTLP/HTTP spec §"Failures": 429, 502, 503 and 504 are retried (honouring
/// `Retry-After`); any other non-2xx drops the batch, logging the `google.rpc.Status` message.
public final class OTLPHTTPExporter: ConsumingComponent {
    private let helper: ExporterHelper<ContinuousClock>
    private let client: HTTPExportClient
    /// With `encoding: proto` it sends the OTLP protobuf encoding, which a kept batch already is.
    public let readsTraceModel: Bool

    public init(_ config: OTLPExporterConfig, settings: ComponentSettings) {
        let logger = settings.logger
        let client = HTTPExportClient(config.security, configured: config.tlsConfigured, settings: settings)
        self.client = client
        self.readsTraceModel = config.encoding == .json
        self.helper = ExporterHelper(config.helper, component: settings) { batch in
            let json = config.encoding == .json
            let url = config.url(for: batch.signal)
            let reply = try await HTTPPoster.post(
                url, contentType: json ? "application/json" : "application/x-protobuf",
                body: json ? OTLPJSON.encode(batch) : OTLPProtobuf.encode(batch), gzip: config.compression == .gzip, gzipLevel: config.gzipLevel,
                headers: config.headers, timeout: config.helper.timeout, via: client)
            let replyJSON = reply.headers.first(name: "content-type")?.contains("json") == true
            try HTTPPoster.check(reply, url: url, detail: Self.statusMessage(reply.body, json: replyJSON)) { [429, 502, 503, 504].contains($0) }
            let partial = try? (json ? OTLPJSON.decodeExportResponse(reply.body) : OTLPProtobuf.decodeExportResponse(reply.body))
            if let p = partial ?? nil, p.rejected > 0 || !p.errorMessage.isEmpty {
                logger.warning("partial success from OTLP server", metadata: ["rejected": "\(p.rejected)", "message": "\(p.errorMessage)"])
            }
        }
    }

    static func statusMessage(_ body: [UInt8], json: Bool) -> String {
        if let s = try? (json ? OTLPJSON.decodeStatus(body) : OTLPProtobuf.decodeStatus(body)), !s.message.isEmpty { return s.message }
        return String(decoding: body.prefix(256), as: UTF8.self)
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
