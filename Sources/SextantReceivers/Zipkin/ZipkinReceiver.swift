import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantSecurity
import SextantZipkin
import Synchronization

/// `zipkin` receiver config (as in the OTel Collector).
public struct ZipkinReceiverConfig: ComponentConfig {
    public var host = "127.0.0.1"
    public var port = 9411
    public var maxRequestBodySize = 20 << 20
    /// `tls` and `auth` (top level, as the OTel Collector's zipkin receiver has them).
    public var security = ServerSecurity()
}

public struct ZipkinReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "zipkin"
    public let signals: Set<Signal> = [.traces]
    public let summary = "Zipkin v2 spans: POST /api/v2/spans, JSON or protobuf ListOfSpans, gzip"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = ZipkinReceiverConfig()
        (c.host, c.port) = r.endpoint("endpoint", default: "localhost:9411")
        c.maxRequestBodySize = r.byteSize("max_request_body_size", default: c.maxRequestBodySize, min: 1)
        c.security = ServerSecurity.parse(&r)
        return c
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        ZipkinReceiver(config as! ZipkinReceiverConfig, settings: settings, next: consumers[.traces]!)
    }
}

/// Accepts what Zipkin clients and the OpenTelemetry Zipkin exporters send: `POST /api/v2/spans` with
/// a JSON array (`application/json`) or a protobuf `ListOfSpans` (`application/x-protobuf`).
/// Answers 202 like a Zipkin server; malformed bodies get 400 with the reason. Zipkin has no partial
/// success: spans with invalid IDs are dropped and counted (refused), and the rest are accepted —
/// unless nothing valid remains, which is a 400.
public final class ZipkinReceiver: Component {
    private let config: ZipkinReceiverConfig
    private let next: any Consumer
    private let settings: ComponentSettings
    private let logger: Logger
    private let metrics: ReceiverMetrics
    private let server = Mutex<HTTPServer?>(nil)

    public init(_ config: ZipkinReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.config = config
        self.next = next
        self.settings = settings
        self.logger = settings.logger
        self.metrics = ReceiverMetrics(settings, transport: "http")
    }

    public var port: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        var serverConfig = HTTPServerConfiguration(host: config.host, port: config.port, maxRequestBodySize: config.maxRequestBodySize)
        try serverConfig.secure(config.security, settings: settings)
        serverConfig.limitConnections(settings)
        let s = try await HTTPServer.start(serverConfig, logger: logger) { [self] request in await handle(request) }
        server.withLock { $0 = s }
        logger.info("Zipkin receiver listening", metadata: config.security.logMetadata(endpoint: "\(config.host):\(s.port)"))
    }

    public func shutdown() async { await server.withLock { $0 }?.shutdown() }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.path == "/api/v2/spans" else { return .text(.notFound, "unknown path \(request.path); use /api/v2/spans") }
        guard request.head.method == .POST else {
            var r = HTTPResponse.text(.methodNotAllowed, "use POST")
            r.headers.add(name: "allow", value: "POST")
            return r
        }
        let proto: Bool
        switch request.mediaType {
        case "application/json", nil: proto = false
        case "application/x-protobuf", "application/protobuf": proto = true
        case let other?: return .text(.unsupportedMediaType, "unsupported content type '\(other)'; use application/json or application/x-protobuf")
        }
        let decoded: ZipkinDecodeResult
        do {
            decoded = try request.body.withUnsafeReadableBytes { try proto ? ZipkinV2.decodeProto($0) : ZipkinV2.decodeJSON($0) }
        } catch {
            return .text(.badRequest, "malformed Zipkin \(proto ? "protobuf" : "JSON") spans: \(error)")
        }
        if decoded.rejected > 0 {
            metrics.refused(.traces, decoded.rejected)
            logger.warning("dropped invalid Zipkin spans", metadata: ["rejected": "\(decoded.rejected)", "reason": "\(decoded.rejectionReason ?? "")"])
        }
        let n = decoded.data.spanCount
        if n == 0 && decoded.rejected > 0 {
            return .text(.badRequest, "no valid spans: \(decoded.rejectionReason ?? "invalid span")")
        }
        if n > 0 {
            do {
                try await next.consume(.traces(decoded.data))
                metrics.accepted(.traces, n)
            } catch {
                metrics.refused(.traces, n)
                return .refusal(ConsumerError.classify(error))
            }
        }
        return HTTPResponse(status: .accepted)
    }
}
