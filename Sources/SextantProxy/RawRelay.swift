import NIOCore
import NIOHTTP1

/// After a successful HTTP/1.1 `Upgrade` (WebSocket, RFC 6455 §4; RFC 9110 §7.8), bytes flow unchanged
/// between the downstream and the upstream connection. One relay sits in each pipeline; each writes what
/// it reads into its partner's channel and mirrors backpressure and closes.
final class RawRelay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: RawRelay?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    /// Two relays that forward to each other.
    static func pair() -> (RawRelay, RawRelay) {
        let a = RawRelay()
        let b = RawRelay()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    private func write(_ buffer: ByteBuffer) { context?.write(wrapOutboundOut(buffer), promise: nil) }
    private func flush() { context?.flush() }
    private func close() { context?.close(promise: nil) }
    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func setReading(_ on: Bool) {
        context?.channel.setOption(ChannelOptions.autoRead, value: on).whenComplete { _ in }
    }

    /// Bytes read from this relay's channel (for telemetry).
    private(set) var bytesRead = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytesRead += buffer.readableBytes
        partner?.write(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close()
        partner = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Our channel's send buffer fills: stop reading from the other side until it drains.
        partner?.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension RawRelay: Sendable {}
