import AsyncHTTPClient
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

    public init(_ config: OTLPExporterConfig, settings: ComponentSettings) {
        let logger = settings.logger
        self.helper = ExporterHelper(config.helper, component: settings) { batch in
            let json = config.encoding == .json
            var body = json ? OTLPJSON.encode(batch) : OTLPProtobuf.encode(batch)
            var request = HTTPClientRequest(url: config.url(for: batch.signal))
            request.method = .POST
            request.headers.add(name: "Content-Type", value: json ? "application/json" : "application/x-protobuf")
            request.headers.add(name: "User-Agent", value: "sextant")
            if config.compression == .gzip {
                body = Inflater.gzip(body)
                request.headers.add(name: "Content-Encoding", value: "gzip")
            }
            for (k, v) in config.headers { request.headers.replaceOrAdd(name: k, value: v) }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(config.helper.timeout))
            } catch {
                throw ConsumerError.retryable("POST \(config.url(for: batch.signal)) failed: \(error)")
            }
            let reply = try await response.body.collect(upTo: 1 << 20)
            let bytes = reply.getBytes(at: reply.readerIndex, length: reply.readableBytes) ?? []
            let status = response.status.code
            if (200..<300).contains(status) {
                let partial = try? (json ? OTLPJSON.decodeExportResponse(bytes) : OTLPProtobuf.decodeExportResponse(bytes))
                if let p = partial ?? nil, p.rejected > 0 || !p.errorMessage.isEmpty {
                    logger.warning("partial success from OTLP server", metadata: ["rejected": "\(p.rejected)", "message": "\(p.errorMessage)"])
                }
                return
            }
            let message = Self.statusMessage(bytes, json: response.headers.first(name: "content-type")?.contains("json") == true)
            let detail = "HTTP \(status) from \(config.url(for: batch.signal)): \(message)"
            switch status {
            case 429, 502, 503, 504:
                throw ConsumerError.retryable(detail, after: response.headers.first(name: "retry-after").flatMap(Int.init).map { .seconds($0) })
            default:
                throw ConsumerError.permanent(detail)
            }
        }
    }

    static func statusMessage(_ body: [UInt8], json: Bool) -> String {
        if let s = try? (json ? OTLPJSON.decodeStatus(body) : OTLPProtobuf.decodeStatus(body)), !s.message.isEmpty { return s.message }
        return String(decoding: body.prefix(256), as: UTF8.self)
    }

    public func start() async throws { helper.start() }
    public func shutdown() async { await helper.shutdown() }
    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}
