import CZlib
import NIOCore

/// Streaming gzip/zlib/deflate decompression with a hard output cap.
///
/// Output is produced in chunks and decompression stops as soon as it passes `limit`, so a
/// "gzip bomb" costs at most `limit` bytes of memory, never its claimed size. Concatenated gzip
/// members (RFC 1952 §2.2) are decoded one after another.
public enum Inflater {
    public enum Format: Sendable {
        /// gzip (RFC 1952) or zlib (RFC 1950), detected from the header.
        case gzipOrZlib
        /// Raw deflate (RFC 1951), as some clients send for `Content-Encoding: deflate`.
        case rawDeflate
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case tooLarge(limit: Int)
        case corrupt(String)

        public var description: String {
            switch self {
            case .tooLarge(let limit): return "decompressed body exceeds the limit of \(limit) bytes"
            case .corrupt(let why): return "invalid compressed body: \(why)"
            }
        }
    }

    /// Inflates `input` into a new buffer of at most `limit` bytes.
    public static func inflate(_ input: ByteBuffer, format: Format = .gzipOrZlib, limit: Int, allocator: ByteBufferAllocator = .init())
        throws(Failure) -> ByteBuffer
    {
        var stream = z_stream()
        let windowBits: Int32 = format == .rawDeflate ? -15 : 15 + 32
        guard inflateInit2_(&stream, windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        var output = allocator.buffer(capacity: min(max(input.readableBytes * 4, 4096), limit + 1))
        var failure: Failure?
        input.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else {
                failure = .corrupt("empty body")
                return
            }
            stream.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(raw.count)
            while true {
                // Never ask zlib for more than one byte past the limit: that byte proves the overflow.
                let chunk = min(limit + 1 - output.readableBytes, 65536)
                var status: Int32 = Z_OK
                let written = output.writeWithUnsafeMutableBytes(minimumWritableBytes: chunk) { out -> Int in
                    stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(chunk)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return chunk - Int(stream.avail_out)
                }
                if output.readableBytes > limit {
                    failure = .tooLarge(limit: limit)
                    return
                }
                switch status {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return }
                    // Another gzip member follows; skip trailing zero padding some writers add.
                    let next = stream.next_in!
                    var allZero = true
                    for i in 0..<Int(stream.avail_in) where next[i] != 0 {
                        allZero = false
                        break
                    }
                    if allZero { return }
                    guard inflateReset(&stream) == Z_OK else {
                        failure = .corrupt("cannot reset zlib")
                        return
                    }
                case Z_OK:
                    if written == 0 && stream.avail_in == 0 {
                        failure = .corrupt("unexpected end of compressed data")
                        return
                    }
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 {
                        failure = .corrupt("unexpected end of compressed data")
                        return
                    }
                default:
                    let msg = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                    failure = .corrupt(msg)
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// gzip-compresses `input` (used by exporters and tests).
    public static func gzip(_ input: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { return [] }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 32)
        var produced = 0
        input.withUnsafeBytes { inp in
            out.withUnsafeMutableBytes { o in
                stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(inp.count)
                stream.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(o.count)
                _ = deflate(&stream, Z_FINISH)
                produced = o.count - Int(stream.avail_out)
            }
        }
        return Array(out[0..<produced])
    }
}
