import Logging
import NIOCore
import NIOHTTP1
import SextantHTTP
import SextantModel
import SextantOTLP
import SextantPipeline
import Synchronization

/// The `otlp` receiver: OTLP/HTTP per the OTLP specification §"OTLP/HTTP".
///
/// `POST` to the signal's path with `application/x-protobuf` or `application/json` (optionally gzip).
/// Responses follow the spec: 200 with an `Export*ServiceResponse` (with `partial_success` when some
/// items were rejected), 400 with a `google.rpc.Status` for malformed data, 413 for oversized bodies,
/// 415 for other media types, 429/503 (with `Retry-After`) when the pipeline is overloaded or failing.
public final class OTLPReceiver: Component {
    private let config: OTLPReceiverConfig
    private let consumers: [Signal: any Consumer]
    private let logger: Logger
    private let metrics: ReceiverMetrics
    private let server = Mutex<HTTPServer?>(nil)

    public init(_ config: OTLPReceiverConfig, settings: ComponentSettings, consumers: [Signal: any Consumer]) {
        self.config = config
        self.consumers = consumers
        self.logger = settings.logger
        self.metrics = ReceiverMetrics(settings, transport: "http")
    }

    /// The bound HTTP port (after `start`).
    public var httpPort: Int? { server.withLock { $0?.port } }

    public func start() async throws {
        guard let http = config.http else { return }
        let routes: [String: Signal] = [http.tracesPath: .traces, http.metricsPath: .metrics, http.logsPath: .logs]
        let serverConfig = HTTPServerConfiguration(
            host: http.host, port: http.port, maxRequestBodySize: http.maxRequestBodySize,
            errorResponder: { status, message, head in
                OTLPHTTPResponses.error(status, message, json: OTLPHTTPResponses.isJSON(head.headers))
            })
        let s = try await HTTPServer.start(serverConfig, logger: logger) { [self] request in
            await handle(request, routes: routes)
        }
        server.withLock { $0 = s }
        logger.info("OTLP/HTTP receiver listening", metadata: ["endpoint": "\(http.host):\(s.port)"])
    }

    public func shutdown() async {
        await server.withLock { $0 }?.shutdown()
    }

    func handle(_ request: HTTPRequest, routes: [String: Signal]) async -> HTTPResponse {
        // The spec asks for a Status body on every 4xx; before the media type is known it is JSON
        // only if the client said so.
        let wantsJSON = request.mediaType == "application/json"
        guard let signal = routes[String(request.path)], let consumer = consumers[signal] else {
            return OTLPHTTPResponses.error(.notFound, "unknown path \(request.path)", json: wantsJSON)
        }
        guard request.head.method == .POST else {
            var r = OTLPHTTPResponses.error(.methodNotAllowed, "method \(request.head.method) not allowed, supported: POST", json: wantsJSON)
            r.headers.add(name: "allow", value: "POST")
            return r
        }
        let json: Bool
        switch request.mediaType {
        case "application/x-protobuf": json = false
        case "application/json": json = true
        default:
            return OTLPHTTPResponses.error(
                .unsupportedMediaType,
                "unsupported content type '\(request.head.headers.first(name: "content-type") ?? "")', supported: application/x-protobuf, application/json",
                json: false)
        }

        let decoded: DecodeResult<Telemetry>
        do {
            decoded = try request.body.withUnsafeReadableBytes { bytes in
                json ? try OTLPJSON.decode(signal, bytes) : try OTLPProtobuf.decode(signal, bytes)
            }
        } catch {
            logger.debug("rejecting malformed OTLP request", metadata: ["error": "\(error)"])
            metrics.refused(signal, 0)
            return OTLPHTTPResponses.error(.badRequest, "malformed \(json ? "JSON" : "protobuf") \(signal) request: \(error)", json: json)
        }
        if decoded.rejected > 0 { metrics.refused(signal, decoded.rejected) }

        let n = decoded.data.itemCount
        if n > 0 {
            do {
                try await consumer.consume(decoded.data)
                metrics.accepted(signal, n)
            } catch {
                metrics.refused(signal, n)
                let e = ConsumerError.classify(error)
                switch e.kind {
                case .permanent:
                    return OTLPHTTPResponses.error(.badRequest, e.message, json: json)
                case .retryable:
                    return OTLPHTTPResponses.error(.serviceUnavailable, e.message, json: json, retryAfter: e.retryAfter ?? .seconds(1))
                case .overloaded:
                    return OTLPHTTPResponses.error(.tooManyRequests, e.message, json: json, retryAfter: e.retryAfter ?? .seconds(1))
                }
            }
        }
        let partial = decoded.rejected > 0 ? PartialSuccess(rejected: Int64(decoded.rejected), errorMessage: decoded.rejectionReason ?? "") : nil
        let body = json ? OTLPJSON.encodeExportResponse(signal, partialSuccess: partial) : OTLPProtobuf.encodeExportResponse(signal, partialSuccess: partial)
        return HTTPResponse(
            status: .ok, headers: ["content-type": json ? "application/json" : "application/x-protobuf"], body: ByteBuffer(bytes: body))
    }
}

/// Response bodies shaped as the OTLP/HTTP spec asks.
enum OTLPHTTPResponses {
    static func isJSON(_ headers: HTTPHeaders) -> Bool {
        headers.first(name: "content-type")?.lowercased().hasPrefix("application/json") == true
    }

    /// An error with a `google.rpc.Status` body in the request's encoding. gRPC codes follow the usual
    /// HTTP↔gRPC mapping: 400/415 → INVALID_ARGUMENT (3), 404 → NOT_FOUND (5), 405 → UNIMPLEMENTED (12),
    /// 413/429 → RESOURCE_EXHAUSTED (8), 503 → UNAVAILABLE (14).
    static func error(_ status: HTTPResponseStatus, _ message: String, json: Bool, retryAfter: Duration? = nil) -> HTTPResponse {
        let code: Int32
        switch status {
        case .badRequest: code = 3
        case .payloadTooLarge, .tooManyRequests: code = 8
        case .serviceUnavailable: code = 14
        case .unsupportedMediaType: code = 3
        case .notFound: code = 5
        case .methodNotAllowed: code = 12
        default: code = 2
        }
        let body = json ? OTLPJSON.encodeStatus(code: code, message: message) : OTLPProtobuf.encodeStatus(code: code, message: message)
        var headers: HTTPHeaders = ["content-type": json ? "application/json" : "application/x-protobuf"]
        if let retryAfter { headers.add(name: "retry-after", value: String(max(1, retryAfter.components.seconds))) }
        return HTTPResponse(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }
}
