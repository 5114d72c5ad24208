import GRPCCore
import GRPCNIOTransportHTTP2
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
    private let settings: ComponentSettings
    private let logger: Logger
    private let httpMetrics: ReceiverMetrics
    private let grpcMetrics: ReceiverMetrics
    private let httpServer = Mutex<HTTPServer?>(nil)
    /// The running gRPC server (plaintext and TLS servers have different transport types).
    private let grpcServer = Mutex<(stop: @Sendable () -> Void, task: Task<String?, Never>, port: Int)?>(nil)

    public init(_ config: OTLPReceiverConfig, settings: ComponentSettings, consumers: [Signal: any Consumer]) {
        self.config = config
        self.consumers = consumers
        self.settings = settings
        self.logger = settings.logger
        self.httpMetrics = ReceiverMetrics(settings, transport: "http")
        self.grpcMetrics = ReceiverMetrics(settings, transport: "grpc")
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
        if let g = grpcServer.withLock({ $0 }) {
            g.stop()
            _ = await g.task.value
        }
    }

    /// Hands a decoded request to the pipeline, counting what was accepted and refused.
    private func deliver(_ signal: Signal, _ decoded: DecodeResult<Telemetry>, to consumer: any Consumer, metrics: ReceiverMetrics) async
        -> Outcome
    {
        if decoded.rejected > 0 { metrics.refused(signal, decoded.rejected) }
        let n = decoded.data.itemCount
        if n > 0 {
            do {
                try await consumer.consume(decoded.data)
                metrics.accepted(signal, n)
            } catch {
                metrics.refused(signal, n)
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
                try json ? OTLPJSON.decode(signal, bytes) : OTLPProtobuf.decode(signal, bytes)
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


    /// Starts serving in a task; returns how to stop it and the task, whose value says why serving
    /// failed (e.g. the port is taken), or nil after a graceful stop.
    private static func serve<T: ServerTransport>(_ server: GRPCServer<T>, _ logger: Logger) -> (@Sendable () -> Void, Task<String?, Never>) {
        let task = Task<String?, Never> {
            do { try await server.serve() } catch {
                logger.error("OTLP/gRPC server stopped: \(error)")
                return "\(error)"
            }
            return nil
        }
        return ({ server.beginGracefulShutdown() }, task)
    }
    private func startGRPC(_ grpc: OTLPReceiverConfig.GRPC) async throws {
        var transportConfig = HTTP2ServerTransport.Posix.Config.defaults
        transportConfig.compression.enabledAlgorithms = .all
        transportConfig.channelDebuggingCallbacks.limitConnections(settings)
        // The transport resets streams over its limit without a status (grpc-swift-nio-transport), so
        // it gets headroom and the configured limit is enforced in the handler, where an oversized
        // message gets RESOURCE_EXHAUSTED as gRPC clients expect. Past 4× the limit the transport's
        // reset still applies, which keeps memory bounded.
        transportConfig.rpc.maxRequestPayloadSize = grpc.maxRecvMsgSize * 4
        let limit = grpc.maxRecvMsgSize
        let service = OTLPGRPCService(signals: Set(consumers.keys)) { [self] signal, bytes in
            guard bytes.count <= limit else {
                grpcMetrics.refused(signal, 0)
                throw RPCError(code: .resourceExhausted, message: "message of \(bytes.count) bytes exceeds max_recv_msg_size_mib (\(limit) bytes)")
            }
            return try await handleGRPC(signal, bytes)
        }
        var interceptors: [any ServerInterceptor] = []
        if let check = try grpc.security.requestCheck(settings, transport: "grpc") {
            interceptors.append(AuthenticatingServerInterceptor(check))
        }
        let logger = self.logger
        let stop: @Sendable () -> Void
        /// Serves until shutdown; returns why serving failed, if it did (e.g. the port is taken).
        let task: Task<String?, Never>
        let listening: @Sendable () async throws -> GRPCNIOTransportCore.SocketAddress?
        if let tls = grpc.security.tls {
            // gRPC requires ALPN h2 over TLS (gRPC over HTTP/2, "Protocol negotiation").
            let context = try tls.makeContext(applicationProtocols: ["h2", "grpc-exp"])
            let config = HTTP2ServerTransport.Custom<TLSListenerFactory>.Config(
                compression: transportConfig.compression, connection: transportConfig.connection, http2: transportConfig.http2,
                rpc: transportConfig.rpc, channelDebuggingCallbacks: transportConfig.channelDebuggingCallbacks)
            let transport = HTTP2ServerTransport.Custom(
                listenerFactory: TLSListenerFactory(host: grpc.host, port: grpc.port, context: context), config: config)
            (stop, task) = Self.serve(GRPCServer(transport: transport, services: [service], interceptors: interceptors), logger)
            listening = { await transport.listeningAddress }
        } else {
            let address: GRPCNIOTransportCore.SocketAddress =
                grpc.host.contains(":") ? .ipv6(host: grpc.host, port: grpc.port) : .ipv4(host: grpc.host, port: grpc.port)
            let transport = HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext, config: transportConfig)
            (stop, task) = Self.serve(GRPCServer(transport: transport, services: [service], interceptors: interceptors), logger)
            listening = { try await transport.listeningAddress }
        }
        let port: Int
        do {
            guard let bound = try await listening() else {
                // The TLS transport reports no address when its bind failed; the serve task knows why.
                stop()
                let reason = await task.value ?? "stopped"
                throw RuntimeError(code: .serverIsStopped, message: "OTLP/gRPC cannot listen on \(grpc.host):\(grpc.port): \(reason)")
            }
            port = bound.ipv4?.port ?? bound.ipv6?.port ?? grpc.port
        } catch {
            stop()
            _ = await task.value
            throw error
        }
        grpcServer.withLock { $0 = (stop, task, port) }
        logger.info("OTLP/gRPC receiver listening", metadata: grpc.security.logMetadata(endpoint: "\(grpc.host):\(port)"))
    }

    private func handleGRPC(_ signal: Signal, _ bytes: [UInt8]) async throws -> [UInt8] {
        let decoded: DecodeResult<Telemetry>
        do {
            decoded = try bytes.withUnsafeBytes { try OTLPProtobuf.decode(signal, $0) }
        } catch {
            logger.debug("rejecting malformed OTLP/gRPC request", metadata: ["error": "\(error)"])
            throw RPCError(code: .invalidArgument, message: "malformed protobuf \(signal) request: \(error)")
        }
        switch await deliver(signal, decoded, to: consumers[signal]!, metrics: grpcMetrics) {
        case .accepted(let partial):
            return OTLPProtobuf.encodeExportResponse(signal, partialSuccess: partial)
        case .refused(let e):
            switch e.kind {
            case .permanent: throw RPCError(code: .invalidArgument, message: e.message)
            case .retryable: throw RPCError(code: .unavailable, message: e.message)
            case .overloaded: throw RPCError(code: .resourceExhausted, message: e.message)
            }
        }
    }
}

/// Registers `Export` for each signal the receiver has a pipeline for; other methods answer
/// UNIMPLEMENTED (grpc-swift's router does that for unknown methods).
struct OTLPGRPCService: RegistrableRPCService {
    let signals: Set<Signal>
    let handle: @Sendable (Signal, [UInt8]) async throws -> [UInt8]

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let methods: [(Signal, MethodDescriptor)] = [
            (.traces, OTLPGRPCMethods.traces), (.metrics, OTLPGRPCMethods.metrics), (.logs, OTLPGRPCMethods.logs),
        ]
        for (signal, method) in methods where signals.contains(signal) {
            let handle = self.handle
            router.registerHandler(forMethod: method, deserializer: RawBytesCoding(), serializer: RawBytesCoding()) { request, _ in
                let single = try await ServerRequest(stream: request)
                let response = try await handle(signal, single.message)
                return StreamingServerResponse(single: ServerResponse(message: response))
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
