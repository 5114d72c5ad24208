import NIOCore
import SextantHTTP

/// gRPC's Length-Prefixed-Message ("gRPC over HTTP2": a 1-byte Compressed-Flag, a 4-byte big-endian
/// Message-Length, the message), for the one message each side of a unary call carries.
public enum GRPCMessageFrame {
    /// Why a unary call's body is not one acceptable message; each side words its own status.
    public enum Failure: Error {
        /// Fewer than the 5 prefix bytes.
        case missing
        /// The prefix declares more than the limit.
        case declaredTooLarge(length: UInt32)
        /// The body is not exactly one message of the declared length.
        case lengthMismatch
        /// The flag says compressed but the call negotiated no usable `grpc-encoding`.
        case compressedWithoutEncoding
        /// Inflating failed: `.tooLarge` past the limit, or corrupt data.
        case inflate(Inflater.Failure)
    }

    /// `message` (already compressed when `compressed`) behind its 5-byte prefix.
    public static func encode(_ message: [UInt8], compressed: Bool, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        encode(parts: CollectionOfOne(message), compressed: compressed, allocator: allocator)
    }

    /// A message given as consecutive parts (e.g. concatenated protobuf encodings), framed in one buffer
    /// without joining them first.
    public static func encode(
        parts: some Collection<[UInt8]>, compressed: Bool = false, allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        let length = parts.reduce(0) { $0 + $1.count }
        var buffer = allocator.buffer(capacity: length + 5)
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(length))
        for part in parts { buffer.writeBytes(part) }
        return buffer
    }

    /// The single message in `body` (a whole stream's DATA), inflated when its flag is set and `inflatable`
    /// (gzip, RFC 1952, or gRPC's "deflate", the zlib format of RFC 1950: both are detected). `limit` bounds
    /// the declared length and the inflated size.
    public static func decodeSingle(_ body: ByteBuffer, inflatable: Bool, limit: Int) throws(Failure) -> [UInt8] {
        var buffer = body
        guard let flag = buffer.readInteger(as: UInt8.self), let length = buffer.readInteger(as: UInt32.self) else { throw .missing }
        guard Int(length) <= limit else { throw .declaredTooLarge(length: length) }
        guard buffer.readableBytes == Int(length) else { throw .lengthMismatch }
        if flag == 0 { return buffer.readBytes(length: buffer.readableBytes) ?? [] }
        guard inflatable else { throw .compressedWithoutEncoding }
        do throws(Inflater.Failure) {
            return Array(try Inflater.inflate(buffer, format: .gzipOrZlib, limit: limit).readableBytesView)
        } catch {
            throw .inflate(error)
        }
    }
}
