import NIOCore
import SextantFluentForward

/// Splits a Forward TCP stream into frames, one complete top-level msgpack value each (spec v1:
/// frames are bare msgpack values back to back). The walk resumes where the last read stopped, so any
/// split of the stream costs the same; a frame over `maxFrameSize` or nested over `maxDepth` fails the
/// stream as soon as its header shows it.
public struct ForwardFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    private var framer: MessagePackFramer

    public init(maxFrameSize: Int, maxDepth: Int = 64) {
        framer = MessagePackFramer(maxFrameSize: maxFrameSize, maxDepth: maxDepth)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let length = try buffer.withUnsafeReadableBytes { raw throws(MessagePackError) in try framer.next(raw) }
        guard let length, let frame = buffer.readSlice(length: length) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if seenEOF && buffer.readableBytes > 0 {
            throw MessagePackError(
                .truncated, at: buffer.readableBytes, "connection closed inside a frame (\(buffer.readableBytes) bytes of it received)")
        }
        return .needMoreData
    }
}
