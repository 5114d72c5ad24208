import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SextantHTTP
import SextantModel
import SextantPipeline
import SextantSecurity
import Synchronization

/// `syslog` receiver config (the OTel Collector's names): `protocol`, `location`, `tcp` (with an optional
/// `tls` block), `udp`.
public struct SyslogReceiverConfig: ComponentConfig {
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public var protocolKind: SyslogProtocol = .rfc5424
    public var location: SyslogTimeZone = .utc
    public var tcp: Endpoint?
    public var udp: Endpoint?
    /// `tcp::tls`: syslog over TLS (RFC 5425), mutual with `client_ca_file`. UDP stays plain text
    /// (DTLS, RFC 6012, is not offered).
    public var tls: TLSSettings?
    /// Largest message accepted on TCP (framed either way); UDP is bounded by the datagram size.
    public var maxLogSize = 1 << 20

    public init() {}
}

public struct SyslogReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "syslog"
    public let signals: Set<Signal> = [.logs]
    public let summary = "syslog RFC 5424 / RFC 3164 over TCP (octet counting or LF framing, RFC 6587; TLS per RFC 5425) and UDP"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = SyslogReceiverConfig()
        c.protocolKind = SyslogProtocol(rawValue: r.choice("protocol", ["rfc5424", "rfc3164"], default: "rfc5424")) ?? .rfc5424
        let loc = r.string("location", default: "UTC")
        if let z = SyslogTimeZone(identifier: loc) {
            c.location = z
        } else {
            r.error("location", "\(r.qualified("location")): unknown time zone '\(loc)' (use an IANA name such as Europe/Berlin)")
        }
        if r.has("tcp") {
            var t = r.section("tcp")
            let (host, port) = t.endpoint("listen_address", default: "localhost:54526")
            c.tcp = .init(host: host, port: port)
            c.maxLogSize = t.byteSize("max_log_size", default: c.maxLogSize, min: 64)
            c.tls = TLSSettings.parseServer(&t)
            t.finish()
        }
        if r.has("udp") {
            var u = r.section("udp")
            let (host, port) = u.endpoint("listen_address", default: "localhost:54526")
            c.udp = .init(host: host, port: port)
            u.finish()
        }
        if c.tcp == nil && c.udp == nil { r.error(nil, "\(r.path) needs tcp or udp (with listen_address)") }
        r.finish()
        return c
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        SyslogReceiver(config as! SyslogReceiverConfig, settings: settings, next: consumers[.logs]!)
    }
}

/// Receives syslog over TCP and UDP and emits one OTLP log record per message, mapped as the OTel
/// Collector's syslog receiver does: severity from PRI, attributes `appname`, `hostname`, `proc_id`,
/// `msg_id`, `facility`, `priority`, `version`, `structured_data`; the body is MSG.
///
/// A message that does not parse is counted (`sextant_receiver_malformed_messages_total`) and logged
/// at debug; its connection or listener keeps going. A malformed octet count closes only its connection.
public final class SyslogReceiver: Component {
    private let config: SyslogReceiverConfig
    private let next: any Consumer
    private let logger: Logger
    private let tcpMetrics: ReceiverMetrics
    private let udpMetrics: ReceiverMetrics
    private let malformed: SelfTelemetry.Counter
    private let tcpServer = Mutex<(channel: (any Channel)?, task: Task<Void, Never>?)>((nil, nil))
    private let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let udpChannel = Mutex<(any Channel)?>(nil)
    private let udpGate = InFlightGate(limit: 1000)
    private let connectionLimit: ConnectionLimit

    public init(_ config: SyslogReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.config = config
        self.next = next
        self.logger = settings.logger
        tcpMetrics = ReceiverMetrics(settings, transport: "tcp")
        udpMetrics = ReceiverMetrics(settings, transport: "udp")
        connectionLimit = ConnectionLimit(settings)
        malformed = settings.telemetry.counter(
            "sextant_receiver_malformed_messages_total", help: "Messages that could not be parsed.",
            labels: [("receiver", settings.id.description)])
    }

    public var tcpPort: Int? { tcpServer.withLock { $0.channel?.localAddress?.port } }
    public var udpPort: Int? { udpChannel.withLock { $0?.localAddress?.port } }
    /// Messages that failed to parse or frame so far.
    public var malformedCount: Int { Int(malformed.current) }

    public func start() async throws {
        if let e = config.tcp {
            let maxSize = config.maxLogSize
            // RFC 5425: TLS first, then octet-counted frames (the decoder also takes LF framing).
            let tls = try config.tls?.makeContext()
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: e.host, port: e.port) { child in
                    child.eventLoop.makeCompletedFuture {
                        if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                        try child.pipeline.syncOperations.addHandler(SyslogFramingHandler(maxMessageSize: maxSize))
                        return try NIOAsyncChannel<SyslogFrames, Never>(wrappingChannelSynchronously: child)
                    }
                }
            let channel = server.channel
            let task = Task { [self] in
                do {
                    try await server.executeThenClose { inbound in
                        try await withThrowingDiscardingTaskGroup { group in
                            for try await connection in inbound {
                                group.addTask { await self.serve(connection) }
                            }
                        }
                    }
                } catch {
                    logger.debug("syslog TCP listener closed", metadata: ["error": "\(error)"])
                }
            }
            tcpServer.withLock { $0 = (channel, task) }
            logger.info(
                "syslog TCP receiver listening",
                metadata: [
                    "endpoint": "\(e.host):\(channel.localAddress?.port ?? 0)",
                    "tls": "\(config.tls == nil ? "off" : config.tls!.requiresClientCertificate ? "mutual" : "on")",
                ])
        }
        if let e = config.udp {
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let handler = SyslogDatagramHandler(receiver: self, eventLoop: loop)
            let channel = try await DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
                .bind(host: e.host, port: e.port).get()
            udpChannel.withLock { $0 = channel }
            logger.info("syslog UDP receiver listening", metadata: ["endpoint": "\(e.host):\(channel.localAddress?.port ?? 0)"])
        }
    }

    public func shutdown() async {
        try? await udpChannel.withLock { $0 }?.close()
        let (channel, task) = tcpServer.withLock { $0 }
        try? await channel?.close()
        for c in connections.withLock({ Array($0.values) }) { try? await c.close() }
        await task?.value
        // Let in-flight UDP deliveries finish (bounded).
        for _ in 0..<500 where udpGate.current > 0 { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// One TCP connection: each read's complete frames become one batch of log records.
    private func serve(_ connection: NIOAsyncChannel<SyslogFrames, Never>) async {
        guard connectionLimit.admit(connection.channel) else {
            try? await connection.executeThenClose { _, _ in }
            return
        }
        let id = ObjectIdentifier(connection.channel)
        connections.withLock { $0[id] = connection.channel }
        defer { _ = connections.withLock { $0.removeValue(forKey: id) } }
        do {
            try await connection.executeThenClose { inbound, _ in
                for try await frames in inbound {
                    var records: [LogRecord] = []
                    for event in frames.events {
                        switch event {
                        case .message(let bytes):
                            if let r = record(bytes, transport: "tcp") { records.append(r) }
                        case .oversized(let n):
                            malformed.increment()
                            logger.debug("skipping oversized syslog message", metadata: ["bytes": "\(n)", "limit": "\(config.maxLogSize)"])
                        }
                    }
                    if let error = frames.error {
                        malformed.increment()
                        logger.warning("closing syslog TCP connection", metadata: ["error": "\(error)"])
                    }
                    if !records.isEmpty { await deliver(records, metrics: tcpMetrics, retry: true) }
                }
            }
        } catch {
            logger.debug("syslog TCP connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Parses one message; a bad one is counted, logged and skipped.
    func record(_ bytes: [UInt8], transport: String) -> LogRecord? {
        let now = SystemTime.nowNanos()
        do {
            let m = try SyslogParser.parse(bytes, protocol: config.protocolKind, location: config.location, now: now)
            return m.logRecord(observedTimeUnixNano: now)
        } catch {
            malformed.increment()
            logger.debug(
                "dropping malformed syslog message",
                metadata: ["transport": "\(transport)", "error": "\(error)", "message": "\(String(decoding: bytes.prefix(200), as: UTF8.self))"])
            return nil
        }
    }

    /// Hands records on. TCP senders wait while the pipeline is overloaded (backpressure, bounded retries);
    /// UDP cannot push back, so a refusal is counted.
    func deliver(_ records: [LogRecord], metrics: ReceiverMetrics, retry: Bool) async {
        let logs = LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])])
        var delay = Duration.milliseconds(50)
        for attempt in 0..<(retry ? 20 : 1) {
            do {
                try await next.consume(.logs(logs))
                metrics.accepted(.logs, records.count)
                return
            } catch {
                let e = ConsumerError.classify(error)
                if e.kind == .permanent || attempt == (retry ? 19 : 0) || Task.isCancelled {
                    metrics.refused(.logs, records.count)
                    logger.debug("syslog records refused downstream", metadata: ["records": "\(records.count)", "error": "\(e.message)"])
                    return
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// One message; delivered with the listener's event loop as the task executor (`executor`), so a
    /// datagram costs no thread wake-ups beyond its read.
    func datagram(_ buffer: ByteBuffer, executor: EventLoopTaskExecutor) {
        var bytes = Array(buffer.readableBytesView)
        // Senders end datagrams with LF or NUL (Python's SysLogHandler); neither belongs to MSG.
        while let last = bytes.last, last == 0x00 || last == 0x0A || last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty, let r = record(bytes, transport: "udp") else { return }
        guard udpGate.tryEnter() else {
            udpMetrics.refused(.logs, 1)
            return
        }
        Task(executorPreference: executor) { [self] in
            await deliver([r], metrics: udpMetrics, retry: false)
            udpGate.leave()
        }
    }
}

/// The frames one TCP read completed, and the framing error that ends the connection, if any.
struct SyslogFrames: Sendable {
    var events: [SyslogFrameDecoder.Event]
    var error: SyslogFrameDecoder.FramingError?
}

/// Accumulates TCP bytes and emits every complete frame per read (RFC 6587 framing).
final class SyslogFramingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SyslogFrames

    private var decoder: SyslogFrameDecoder
    private var buffer: ByteBuffer?

    init(maxMessageSize: Int) { decoder = SyslogFrameDecoder(maxMessageSize: maxMessageSize) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer!.writeBuffer(&incoming)
        }
        var frames = SyslogFrames(events: [], error: nil)
        do {
            while let e = try decoder.next(&buffer!) { frames.events.append(e) }
            buffer!.discardReadBytes()
        } catch {
            frames.error = error
        }
        if !frames.events.isEmpty || frames.error != nil { context.fireChannelRead(wrapInboundOut(frames)) }
        if frames.error != nil {
            buffer = nil
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension SyslogFramingHandler: Sendable {}

/// Feeds UDP datagrams (one message each) to the receiver.
final class SyslogDatagramHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let receiver: SyslogReceiver
    let executor: EventLoopTaskExecutor

    init(receiver: SyslogReceiver, eventLoop: any EventLoop) {
        self.receiver = receiver
        executor = EventLoopTaskExecutor(eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receiver.datagram(unwrapInboundIn(data).data, executor: executor)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP read error must not close the listener.
    }
}

extension SyslogMessage {
    /// OTel's syslog severity mapping (pkg/stanza syslog parser): emerg→FATAL, alert→ERROR3, crit→ERROR2,
    /// err→ERROR, warning→WARN, notice→INFO2, info→INFO, debug→DEBUG.
    static let severityNumbers: [Int32] = [21, 19, 18, 17, 13, 10, 9, 5]
    static let severityTexts = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// The OTLP log record for this message.
    public func logRecord(observedTimeUnixNano: UInt64) -> LogRecord {
        var attrs: [KeyValue] = []
        if let appName { attrs.append(KeyValue("appname", .string(appName))) }
        attrs.append(KeyValue("facility", .int(Int64(facility))))
        if let hostname { attrs.append(KeyValue("hostname", .string(hostname))) }
        if let msgID { attrs.append(KeyValue("msg_id", .string(msgID))) }
        attrs.append(KeyValue("priority", .int(Int64(priority))))
        if let procID { attrs.append(KeyValue("proc_id", .string(procID))) }
        if let structuredData, !structuredData.isEmpty {
            attrs.append(
                KeyValue(
                    "structured_data",
                    .kvlist(structuredData.map { e in KeyValue(e.id, .kvlist(e.params.map { KeyValue($0.name, .string($0.value)) })) })))
        }
        if let version { attrs.append(KeyValue("version", .int(Int64(version)))) }
        return LogRecord(
            timeUnixNano: timestamp ?? 0, observedTimeUnixNano: observedTimeUnixNano,
            severityNumber: SeverityNumber(rawValue: Self.severityNumbers[severity]), severityText: Self.severityTexts[severity],
            body: message.map { .string($0) }, attributes: attrs)
    }
}
