import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantHTTP
import SextantJaeger
import SextantModel
import SextantPipeline
import SextantSecurity
import SextantThrift
import Synchronization

/// `jaeger` receiver config: `protocols: {thrift_http, thrift_compact, thrift_binary}` (OTel names).
public struct JaegerReceiverConfig: ComponentConfig {
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int
    }

    public var thriftHTTP: Endpoint?
    public var thriftCompact: Endpoint?
    public var thriftBinary: Endpoint?
    public var maxRequestBodySize = 20 << 20
    /// Datagrams being processed at once per UDP listener; more are dropped (and counted).
    public var udpQueueSize = 1000
    public var maxPacketSize = 65_000
    /// `tls` and `auth` of `protocols::thrift_http`.
    public var thriftHTTPSecurity = ServerSecurity()
}

public struct JaegerReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "jaeger"
    public let signals: Set<Signal> = [.traces]
    public let summary = "Jaeger thrift: HTTP /api/traces (binary), agent UDP compact (6831) and binary (6832)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = JaegerReceiverConfig()
        var p = r.section("protocols")
        func endpoint(_ key: String, _ defaultEndpoint: String, udp: Bool) -> JaegerReceiverConfig.Endpoint? {
            guard p.keys.contains(key) else { return nil }
            var s = p.section(key)
            defer { s.finish() }
            let (host, port) = s.endpoint("endpoint", default: defaultEndpoint)
            if udp {
                var server = s.section("server")
                c.udpQueueSize = server.int("queue_size", default: c.udpQueueSize, min: 1)
                c.maxPacketSize = server.int("max_packet_size", default: c.maxPacketSize, min: 512, max: 65_535)
                _ = server.int("workers", default: 10, min: 1)
                server.finish()
            } else {
                c.maxRequestBodySize = s.byteSize("max_request_body_size", default: c.maxRequestBodySize, min: 1)
                c.thriftHTTPSecurity = ServerSecurity.parse(&s)
            }
            return .init(host: host, port: port)
        }
        c.thriftHTTP = endpoint("thrift_http", "localhost:14268", udp: false)
        c.thriftCompact = endpoint("thrift_compact", "localhost:6831", udp: true)
        c.thriftBinary = endpoint("thrift_binary", "localhost:6832", udp: true)
        if p.keys.contains("grpc") {
            _ = p.raw("grpc")
            p.error("grpc", "\(p.qualified("grpc")): Jaeger's gRPC protocol is not supported; Jaeger clients and agents ≥ 1.35 can send OTLP to the otlp receiver")
        }
        if c.thriftHTTP == nil && c.thriftCompact == nil && c.thriftBinary == nil && !p.keys.contains("grpc") {
            p.error(nil, "\(r.path) must enable at least one protocol (thrift_http, thrift_compact, thrift_binary)")
        }
        p.finish()
        return c
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        JaegerReceiver(config as! JaegerReceiverConfig, settings: settings, next: consumers[.traces]!)
    }
}

/// Receives what Jaeger clients and agents send, decodes it with our thrift codec and the OTel
/// Collector's Jaeger→OTLP mapping (`SextantJaeger`).
/// - HTTP: `POST /api/traces` with a binary-protocol `Batch` → 202, or 400 with the reason.
/// - UDP: one `Agent.emitBatch` message per datagram (compact on 6831, binary on 6832). A bad
///   datagram is dropped, logged and counted; the listener keeps serving.
public final class JaegerReceiver: Component {
    private let config: JaegerReceiverConfig
    private let next: any Consumer
    private let settings: ComponentSettings
    private let logger: Logger
    private let httpMetrics: ReceiverMetrics
    private let udpMetrics: ReceiverMetrics
    private let badDatagrams: SelfTelemetry.Counter
    private let droppedDatagrams: SelfTelemetry.Counter
    private let http = Mutex<HTTPServer?>(nil)
    private let udp = Mutex<[ThriftProtocolKind: any Channel]>([:])

    public init(_ config: JaegerReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.config = config
        self.next = next
        self.settings = settings
        self.logger = settings.logger
        httpMetrics = ReceiverMetrics(settings, transport: "thrift_http")
        udpMetrics = ReceiverMetrics(settings, transport: "udp")
        badDatagrams = settings.telemetry.counter(
            "sextant_receiver_malformed_datagrams_total", help: "UDP datagrams that could not be decoded.",
            labels: [("receiver", settings.id.description)])
        droppedDatagrams = settings.telemetry.counter(
            "sextant_receiver_dropped_datagrams_total", help: "UDP datagrams dropped because too many were being processed.",
            labels: [("receiver", settings.id.description)])
    }

    public var httpPort: Int? { http.withLock { $0?.port } }
    public func udpPort(_ kind: ThriftProtocolKind) -> Int? { udp.withLock { $0[kind]?.localAddress?.port } }

    public func start() async throws {
        if let e = config.thriftHTTP {
            var serverConfig = HTTPServerConfiguration(host: e.host, port: e.port, maxRequestBodySize: config.maxRequestBodySize)
            try serverConfig.secure(config.thriftHTTPSecurity, settings: settings)
            serverConfig.limitConnections(settings)
            let s = try await HTTPServer.start(serverConfig, logger: logger) { [self] request in await handle(request) }
            http.withLock { $0 = s }
            logger.info("Jaeger thrift_http receiver listening", metadata: config.thriftHTTPSecurity.logMetadata(endpoint: "\(e.host):\(s.port)"))
        }
        for (kind, endpoint) in [(ThriftProtocolKind.compact, config.thriftCompact), (.binary, config.thriftBinary)] {
            guard let endpoint else { continue }
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let handler = JaegerDatagramHandler(kind: kind, receiver: self, limit: config.udpQueueSize, eventLoop: loop)
            let channel = try await DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: config.maxPacketSize))
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
                .bind(host: endpoint.host, port: endpoint.port).get()
            udp.withLock { $0[kind] = channel }
            logger.info("Jaeger thrift_\(kind.rawValue) UDP receiver listening", metadata: ["endpoint": "\(endpoint.host):\(channel.localAddress?.port ?? 0)"])
        }
    }

    public func shutdown() async {
        for c in udp.withLock({ Array($0.values) }) { try? await c.close() }
        await http.withLock { $0 }?.shutdown()
    }

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.path == "/api/traces" else { return .text(.notFound, "unknown path \(request.path); use /api/traces") }
        guard request.head.method == .POST else { return .text(.methodNotAllowed, "use POST") }
        guard let type = request.mediaType, ["application/x-thrift", "application/vnd.apache.thrift.binary"].contains(type) else {
            return .text(.unsupportedMediaType, "unsupported content type '\(request.mediaType ?? "")'; use application/x-thrift")
        }
        let batch: JaegerBatch
        do {
            batch = try request.body.withUnsafeReadableBytes { try JaegerThrift.decodeBatch($0, protocol: .binary) }
        } catch {
            return .text(.badRequest, "Unable to process request body: \(error)")
        }
        switch await deliver([batch], metrics: httpMetrics) {
        case nil: return HTTPResponse(status: .accepted)
        case .some(let e): return .refusal(e)
        }
    }

    /// Translates and hands spans on; returns the refusal, if any.
    func deliver(_ batches: [JaegerBatch], metrics: ReceiverMetrics) async -> ConsumerError? {
        let outcome = JaegerTranslator.toTraces(batches)
        if outcome.rejectedSpans > 0 {
            metrics.refused(.traces, outcome.rejectedSpans)
            logger.warning("dropped invalid Jaeger spans", metadata: ["rejected": "\(outcome.rejectedSpans)", "reason": "\(outcome.rejectionReason ?? "")"])
        }
        let n = outcome.traces.spanCount
        guard n > 0 else { return nil }
        do {
            try await next.consume(.traces(outcome.traces))
            metrics.accepted(.traces, n)
            return nil
        } catch {
            metrics.refused(.traces, n)
            return ConsumerError.classify(error)
        }
    }

    /// One datagram: decoded on the event loop, delivered asynchronously (bounded by `gate`) with that
    /// loop as the task executor (`executor`): a task on the global pool would cost two thread wake-ups
    /// per datagram.
    func datagram(_ bytes: ByteBuffer, kind: ThriftProtocolKind, gate: InFlightGate, executor: EventLoopTaskExecutor) {
        let batches: [JaegerBatch]
        do {
            batches = try bytes.withUnsafeReadableBytes { try JaegerThrift.decodeAgentMessage($0, protocol: kind) }
        } catch {
            badDatagrams.increment()
            logger.debug("dropping malformed Jaeger datagram", metadata: ["protocol": "\(kind.rawValue)", "error": "\(error)"])
            return
        }
        guard gate.tryEnter() else {
            droppedDatagrams.increment()
            udpMetrics.refused(.traces, batches.reduce(0) { $0 + $1.spans.count })
            return
        }
        Task(executorPreference: executor) { [self] in
            if let e = await deliver(batches, metrics: udpMetrics) {
                // Counted as refused in deliver(); logged at debug only, as this can happen per datagram.
                logger.debug("Jaeger UDP spans refused downstream (UDP cannot push back)", metadata: ["error": "\(e.message)"])
            }
            gate.leave()
        }
    }
}

/// Feeds UDP datagrams to the receiver; stateless apart from its in-flight gate.
final class JaegerDatagramHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let kind: ThriftProtocolKind
    let receiver: JaegerReceiver
    let gate: InFlightGate
    let executor: EventLoopTaskExecutor

    init(kind: ThriftProtocolKind, receiver: JaegerReceiver, limit: Int, eventLoop: any EventLoop) {
        self.kind = kind
        self.receiver = receiver
        self.gate = InFlightGate(limit: limit)
        self.executor = EventLoopTaskExecutor(eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receiver.datagram(unwrapInboundIn(data).data, kind: kind, gate: gate, executor: executor)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP read error (e.g. ICMP port unreachable) must not close the listener.
    }
}
