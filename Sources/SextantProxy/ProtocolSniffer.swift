import NIOCore
import NIOHTTP1
import NIOHTTP2

/// Picks HTTP/1.1 or HTTP/2 for a downstream connection from its first bytes, as Istio's protocol
/// sniffing does: the HTTP/2 connection preface (RFC 9113 §3.4, "prior knowledge") selects HTTP/2,
/// anything else is parsed as HTTP/1.1. Installs the chosen handlers, replays the bytes, and removes itself.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?
    private let makeHandler: @Sendable () -> DownstreamHandler

    init(makeHandler: @escaping @Sendable () -> DownstreamHandler) { self.makeHandler = makeHandler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        let bytes = buffered!.readableBytesView
        let n = min(bytes.count, Self.preface.count)
        let isPrefix = bytes.prefix(n).elementsEqual(Self.preface.prefix(n))
        if isPrefix && n < Self.preface.count { return }
        do {
            let sync = context.pipeline.syncOperations
            if isPrefix {
                let make = makeHandler
                _ = try sync.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: .init(), streamConfiguration: .init(), position: .last
                ) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                        try stream.pipeline.syncOperations.addHandler(make())
                    }
                }
            } else {
                // Pipelined requests are queued by `DownstreamHandler` itself, and header values come from
                // a parsed request or from validated config, so only the codec is needed. Bytes after an
                // `Upgrade` request are kept (`.forwardBytes`) for the WebSocket relay.
                try sync.addHandler(HTTPResponseEncoder())
                try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
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
