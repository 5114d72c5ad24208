import Logging
import NIOCore
import NIOHTTP1
import SextantGRPC
import SextantHTTP
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantSecurity
import Synchronization

/// The `otlp` receiver: OTLP/gRPC and OTLP/HTTP per the OTLP specification.
///
/// Both transports share one path: decode (our `SextantOTLP` codec) → hand to the pipeline → answer.
/// - gRPC: `TraceService/Export`, `MetricsService/Export`, `LogsService/Export`, gzip; malformed data
///   → `INVALID_ARGUMENT`, overload → `RESOURCE_EXHAUSTED`, failing pipeline → `UNAVAILABLE`.
/// - HTTP: `POST` with `application/x-protobuf` or `application/json` (optionally gzip); 200 with an
///   `Export*ServiceResponse`, 400 with a `google.rpc.Status` for malformed data, 413 for oversized
///   bodies, 415 for other media types, 429/503 (with `Retry-After`) when the pipeline refuses.
/// Items with invalid IDs are dropped and reported in `partial_success` with 200/OK.
public final class OTLPReceiver: Component {
    /// What became of one export request.
    enum Outcome {
        case accepted(PartialSuccess?)
        case refused(ConsumerError)
    }

    private let config: OTLPReceiverConfig
    private let consumers: [Signal: any Consumer]
    /// Canonical protobuf trace requests travel as their bytes when nothing downstream reads the model
    /// (README, "OTLP trace requests kept as received").
    private let keepsTraces: Bool
    private let settings: ComponentSettings
    private let logger: Logger
    private let httpMetrics: TransportMetrics
    private let grpcMetrics: TransportMetrics
    private let httpServer = Mutex<HTTPServer?>(nil)
    private let grpcServer = Mutex<OTLPGRPCServer?>(nil)

    public init(_ config: OTLPReceiverConfig, settings: ComponentSettings, consumers: [Signal: any Consumer]) {
        self.config = config
        self.consumers = consumers
        self.keepsTraces = consumers[.traces].map { !$0.readsTraceModel } ?? false
        self.settings = settings
        self.logger = settings.logger
        self.httpMetrics = TransportMetrics(settings, transport: "http", keepsTraces: keepsTraces)
        self.grpcMetrics = TransportMetrics(settings, transport: "grpc", keepsTraces: keepsTraces)
    }

    /// What one transport counts: items accepted and refused, and spans passed on as received.
    private struct TransportMetrics: Sendable {
        let items: ReceiverMetrics
        /// Only for a receiver that keeps trace requests.
        let keptSpans: SelfTelemetry.Counter?

        init(_ settings: ComponentSettings, transport: String, keepsTraces: Bool) {
            items = ReceiverMetrics(settings, transport: transport)
            keptSpans =
                keepsTraces
                ? settings.telemetry.counter(
                    "sextant_receiver_kept_encoded_spans_total",
                    help: "Spans accepted in their canonical OTLP protobuf encoding and passed on without being decoded.",
                    labels: [("receiver", settings.id.description), ("transport", transport)])
                : nil
        }
    }

    /// The bound HTTP port (after `start`).
    public var httpPort: Int? { httpServer.withLock { $0?.port } }
    /// The bound gRPC port (after `start`).
    public var grpcPort: Int? { grpcServer.withLock { $0?.port } }

    public func start() async throws {
        if let grpc = config.grpc { try await startGRPC(grpc) }
        if let http = config.http { try await startHTTP(http) }
    }

    public func shutdown() async {
        await httpServer.withLock { $0 }?.shutdown()
        await grpcServer.withLock { $0 }?.close()
    }

    /// Hands a decoded request to the pipeline, counting what was accepted and refused.
    private func deliver(_ signal: Signal, _ decoded: DecodeResult<Telemetry>, to consumer: any Consumer, metrics: TransportMetrics) async
        -> Outcome
    {
        if decoded.rejected > 0 { metrics.items.refused(signal, decoded.rejected) }
        let n = decoded.data.itemCount
        if n > 0 {
            do {
                try await consumer.consume(decoded.data)
                metrics.items.accepted(signal, n)
                if case .traces(let t) = decoded.data, t.encoded != nil { metrics.keptSpans?.add(n) }
            } catch {
                metrics.items.refused(signal, n)
                return .refused(ConsumerError.classify(error))
            }
        }
        return .accepted(decoded.partialSuccess)
    }

    // MARK: HTTP

    private func startHTTP(_ http: OTLPReceiverConfig.HTTP) async throws {
        let routes: [String: Signal] = [http.tracesPath: .traces, http.metricsPath: .metrics, http.logsPath: .logs]
        var serverConfig = HTTPServerConfiguration(
            host: http.host, port: http.port, maxRequestBodySize: http.maxRequestBodySize,
            errorResponder: { status, message, head in
                OTLPHTTPResponses.error(status, message, json: OTLPHTTPResponses.isJSON(head.headers))
            })
        try serverConfig.secure(http.security, settings: settings)
        serverConfig.limitConnections(settings)
        let s = try await HTTPServer.start(serverConfig, logger: logger) { [self] request in
            await handle(request, routes: routes)
        }
        httpServer.withLock { $0 = s }
        logger.info("OTLP/HTTP receiver listening", metadata: http.security.logMetadata(endpoint: "\(http.host):\(s.port)"))
    }

    func handle(_ request: HTTPRequest, routes: [String: Signal]) async -> HTTPResponse {
        // The spec asks for a Status body on every 4xx; before the media type is known it is JSON
        // only if the client said so.
        let wantsJSON = request.mediaType == "application/json"
        guard let signal = routes[String(request.path)], consumers[signal] != nil else {
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
                try json
                    ? OTLPJSON.decode(signal, bytes)
                    : keepsTraces ? OTLPProtobuf.decode(signal, keepingCopyOf: bytes) : OTLPProtobuf.decode(signal, bytes)
            }
        } catch {
            logger.debug("rejecting malformed OTLP request", metadata: ["error": "\(error)"])
            return OTLPHTTPResponses.error(.badRequest, "malformed \(json ? "JSON" : "protobuf") \(signal) request: \(error)", json: json)
        }
        switch await deliver(signal, decoded, to: consumers[signal]!, metrics: httpMetrics) {
        case .accepted(let partial):
            let body =
                json
                ? OTLPJSON.encodeExportResponse(signal, partialSuccess: partial)
                : OTLPProtobuf.encodeExportResponse(signal, partialSuccess: partial)
            return HTTPResponse(
                status: .ok, headers: ["content-type": json ? "application/json" : "application/x-protobuf"], body: ByteBuffer(bytes: body))
        case .refused(let e):
            switch e.kind {
            case .permanent: return OTLPHTTPResponses.error(.badRequest, e.message, json: json)
            case .retryable: return OTLPHTTPResponses.error(.serviceUnavailable, e.message, json: json, retryAfter: e.retryAfter ?? .seconds(1))
            case .overloaded: return OTLPHTTPResponses.error(.tooManyRequests, e.message, json: json, retryAfter: e.retryAfter ?? .seconds(1))
            }
        }
    }

    // MARK: gRPC


    private func startGRPC(_ grpc: OTLPReceiverConfig.GRPC) async throws {
        var methods: [String: Signal] = [:]
        for signal in consumers.keys { methods[OTLPGRPCNames.exportPath(signal)] = signal }
        let metrics = grpcMetrics.items
        let settings = OTLPGRPCServer.Settings(
            methods: methods, maxMessageBytes: grpc.maxRecvMsgSize,
            authenticate: try grpc.security.requestCheck(self.settings, transport: "grpc"),
            handle: { [self] signal, bytes throws(GRPCStatus) in try await handleGRPC(signal, bytes) },
            onOversized: { metrics.refused($0, 0) })
        // gRPC requires ALPN h2 over TLS (gRPC over HTTP/2, "Protocol negotiation").
        let context = try grpc.security.tls.map { try $0.makeContext(applicationProtocols: ["h2", "grpc-exp"]) }
        let server = try await OTLPGRPCServer.start(
            host: grpc.host, port: grpc.port, tls: context, connectionLimit: ConnectionLimit(self.settings), settings: settings)
        grpcServer.withLock { $0 = server }
        logger.info("OTLP/gRPC receiver listening", metadata: grpc.security.logMetadata(endpoint: "\(grpc.host):\(server.port)"))
    }

    private func handleGRPC(_ signal: Signal, _ bytes: [UInt8]) async throws(GRPCStatus) -> [UInt8] {
        let decoded: DecodeResult<Telemetry>
        do {
            decoded = try keepsTraces ? OTLPProtobuf.decode(signal, keeping: bytes) : OTLPProtobuf.decode(signal, bytes)
        } catch {
            logger.debug("rejecting malformed OTLP/gRPC request", metadata: ["error": "\(error)"])
            throw GRPCStatus(code: GRPCStatus.invalidArgument, message: "malformed protobuf \(signal) request: \(error)")
        }
        switch await deliver(signal, decoded, to: consumers[signal]!, metrics: grpcMetrics) {
        case .accepted(let partial):
            return OTLPProtobuf.encodeExportResponse(signal, partialSuccess: partial)
        case .refused(let e):
            switch e.kind {
            case .permanent: throw GRPCStatus(code: GRPCStatus.invalidArgument, message: e.message)
            case .retryable: throw GRPCStatus(code: GRPCStatus.unavailable, message: e.message)
            case .overloaded: throw GRPCStatus(code: GRPCStatus.resourceExhausted, message: e.message)
            }
        }
    }
}

/// Response bodies shaped as the OTLP/HTTP spec asks.
enum OTLPHTTPResponses {
    static func isJSON(_ headers: HTTPHeaders) -> Bool {
        headers.first(name: "content-type")?.lowercased().hasPrefix("application/json") == true
    }

    /// An error with a `google.rpc.Status` body in the request's encoding. gRPC codes follow the usual
    /// HTTP↔gRPC mapping: 400/415 → INVALID_ARGUMENT (3), 401 → UNAUTHENTICATED (16), 404 → NOT_FOUND (5), 405 → UNIMPLEMENTED (12),
    /// 413/429 → RESOURCE_EXHAUSTED (8), 503 → UNAVAILABLE (14).
    static func error(_ status: HTTPResponseStatus, _ message: String, json: Bool, retryAfter: Duration? = nil) -> HTTPResponse {
        let code: Int32
        switch status {
        case .badRequest, .unsupportedMediaType: code = 3
        case .unauthorized: code = 16
        case .notFound: code = 5
        case .methodNotAllowed: code = 12
        case .payloadTooLarge, .tooManyRequests: code = 8
        case .serviceUnavailable: code = 14
        default: code = 2
        }
        let body = json ? OTLPJSON.encodeStatus(code: code, message: message) : OTLPProtobuf.encodeStatus(code: code, message: message)
        var headers: HTTPHeaders = ["content-type": json ? "application/json" : "application/x-protobuf"]
        if let retryAfter { headers.add(name: "retry-after", value: String(max(1, retryAfter.components.seconds))) }
        return HTTPResponse(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }
}
