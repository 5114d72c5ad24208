import NIOCore
import NIOHTTP1
import NIOHTTP2
import SextantIstio

/// What the inbound listener does with TLS (`PeerAuthentication`), looked up per connection so that a
/// reload applies to the next one.
struct InboundTLS: Sendable {
    let credentials: MeshCredentialsStore?
    let state: ProxyState
    /// The workload port (`portLevelMtls` keys): the app's.
    let port: Int

    var mode: PeerAuthentication.Mode { state.table.peerAuthenticationMode(port: port) }
}

/// Picks HTTP/1.1, HTTP/2 or plain TCP for a downstream connection from its first bytes, as Istio's
/// protocol sniffing does: the HTTP/2 connection preface (RFC 9113 §3.4, "prior knowledge") selects
/// HTTP/2; a request line's method token (RFC 9112 §3: uppercase letters then a space) selects HTTP/1.1;
/// anything else is TCP where the listener can relay it (`makeTCP`, the inbound side), else HTTP/1.1 (whose
/// parser answers 400). Installs the chosen handlers, replays the bytes, and removes itself.
///
/// On the inbound listener, mesh TLS comes first (`inboundTLS`): a TLS record (first byte 0x16, a
/// handshake record, RFC 8446 §5.1) gets the TLS server handlers and a second sniffer that looks at the
/// decrypted bytes; anything else is plain text, refused (closed) when `PeerAuthentication` is `STRICT`.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?
    private let makeHandler: @Sendable () -> DownstreamHandler
    private let makeTCP: (@Sendable () -> TCPProxyHandler)?
    private let inboundTLS: InboundTLS?

    init(
        makeHandler: @escaping @Sendable () -> DownstreamHandler, makeTCP: (@Sendable () -> TCPProxyHandler)? = nil,
        inboundTLS: InboundTLS? = nil
    ) {
        self.makeHandler = makeHandler
        self.makeTCP = makeTCP
        self.inboundTLS = inboundTLS
    }

    /// TLS record content type `handshake` (RFC 8446 §5.1), the first byte of a ClientHello.
    static let tlsHandshakeRecord: UInt8 = 0x16

    /// Mesh TLS on the inbound side: returns true when the connection was handed to TLS or closed.
    private func sniffTLS(context: ChannelHandlerContext, first: UInt8) -> Bool {
        guard let tls = inboundTLS else { return false }
        let mode = tls.mode
        if mode == .disable { return false }
        let isTLS = first == Self.tlsHandshakeRecord
        guard isTLS, let credentials = tls.credentials else {
            // STRICT: plain text is refused; so is TLS when this proxy has no certificate to answer with.
            if mode == .strict {
                context.close(promise: nil)
                return true
            }
            return false
        }
        do {
            let (ssl, identity) = credentials.current.serverHandlers()
            let sync = context.pipeline.syncOperations
            try sync.addHandler(ssl)
            try sync.addHandler(identity)
            try sync.addHandler(ProtocolSniffer(makeHandler: makeHandler, makeTCP: makeTCP, inboundTLS: nil))
        } catch {
            context.close(promise: nil)
            return true
        }
        let replay = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(replay))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return true
    }

    /// Longest method token accepted as HTTP (Envoy's sniffer looks at a handful of bytes too).
    static let maxMethodLength = 20

    enum Guess { case http1, tcp, needMore }

    /// Whether `bytes` (not the HTTP/2 preface) start like an HTTP/1.1 request line.
    static func guessHTTP1(_ bytes: some Collection<UInt8>) -> Guess {
        var n = 0
        for b in bytes {
            if b == UInt8(ascii: " ") { return n > 0 ? .http1 : .tcp }
            guard (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") else { return .tcp }
            n += 1
            if n > maxMethodLength { return .tcp }
        }
        return .needMore
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        if inboundTLS != nil, let first = bytes.first, sniffTLS(context: context, first: first) { return }
        let n = min(bytes.count, Self.preface.count)
        let isPrefix = bytes.prefix(n).elementsEqual(Self.preface.prefix(n))
        if isPrefix && n < Self.preface.count { return }
        var tcp = false
        if !isPrefix, makeTCP != nil {
            switch Self.guessHTTP1(bytes) {
            case .needMore: return
            case .tcp: tcp = true
            case .http1: break
            }
        }
        do {
            let sync = context.pipeline.syncOperations
            if tcp, let makeTCP {
                try sync.addHandler(makeTCP())
            } else if isPrefix {
                let make = makeHandler
                _ = try sync.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: .init(), streamConfiguration: .init(), position: .last
                ) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                        try stream.pipeline.syncOperations.addHandler(make())
                    }
                }
                // The HTTP/2 handler reports connection errors after its GOAWAY; closing is ours to do.
                try sync.addHandler(NIOCloseOnErrorHandler())
            } else {
                // Pipelined requests are queued by `DownstreamHandler` itself, and header values come from
                // a parsed request or from validated config, so only the codec is needed. Bytes after an
                // `Upgrade` request are kept by the decoder for the WebSocket relay.
                try sync.addHandler(HTTP1ResponseEncoder())
                try sync.addHandler(HTTP1RequestDecoder())
                try sync.addHandler(makeHandler())
            }
        } catch {
            context.close(promise: nil)
            return
        }
        let replay = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(replay))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension ProtocolSniffer: Sendable {}
