import NIOCore

/// Splits a syslog TCP stream into messages per RFC 6587, detecting the framing of each message from
/// its first byte: a digit starts octet counting (§3.4.1, `MSG-LEN SP SYSLOG-MSG`), anything else is
/// non-transparent framing (§3.4.2) ended by LF — or NUL, which some senders (Python's `SysLogHandler`)
/// use. A trailing CR before LF is dropped.
///
/// A malformed or oversized octet count cannot be resynchronised, so it is a fatal error for the
/// connection. An over-long LF-framed message is reported once and skipped up to its trailer.
public struct SyslogFrameDecoder: Sendable {
    public enum Event: Equatable, Sendable {
        case message([UInt8])
        /// A non-transparent frame longer than the limit was skipped.
        case oversized(Int)
    }

    public struct FramingError: Error, CustomStringConvertible, Equatable, Sendable {
        public var reason: String
        public var description: String { reason }
    }

    public let maxMessageSize: Int
    /// Bytes of an over-long LF-framed message being skipped, or nil when in sync.
    private var discarding: Int?

    public init(maxMessageSize: Int) { self.maxMessageSize = maxMessageSize }

    /// The next event in `buffer`, consuming its bytes; `nil` when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(FramingError) -> Event? {
        while true {
            if let skipped = discarding {
                guard let end = trailer(in: buffer) else {
                    discarding = skipped + buffer.readableBytes
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                    return nil
                }
                buffer.moveReaderIndex(forwardBy: end + 1)
                discarding = nil
                return .oversized(skipped + end)
            }
            guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
            if first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") {
                return try octetCounted(&buffer)
            }
            if first == 0x0A || first == 0x00 || first == 0x0D || first == 0x20 {
                // Empty frames and stray separators between messages carry nothing.
                buffer.moveReaderIndex(forwardBy: 1)
                continue
            }
            guard let end = trailer(in: buffer) else {
                if buffer.readableBytes > maxMessageSize {
                    discarding = buffer.readableBytes
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                }
                return nil
            }
            if end > maxMessageSize {
                buffer.moveReaderIndex(forwardBy: end + 1)
                return .oversized(end)
            }
            var bytes = buffer.readBytes(length: end)!
            buffer.moveReaderIndex(forwardBy: 1)
            if bytes.last == 0x0D { bytes.removeLast() }
            return .message(bytes)
        }
    }

    /// §3.4.1: `MSG-LEN = NONZERO-DIGIT *DIGIT`, then one space, then exactly MSG-LEN octets.
    private func octetCounted(_ buffer: inout ByteBuffer) throws(FramingError) -> Event? {
        let digitsLimit = String(maxMessageSize).count
        var length = 0
        var i = 0
        let view = buffer.readableBytesView
        for b in view {
            if b == 0x20 { break }
            guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else {
                throw FramingError(reason: "octet counting: MSG-LEN must be digits followed by a space (found byte 0x\(String(b, radix: 16)))")
            }
            if i == 0 && b == UInt8(ascii: "0") { throw FramingError(reason: "octet counting: MSG-LEN must not start with 0") }
            length = length * 10 + Int(b - UInt8(ascii: "0"))
            i += 1
            if i > digitsLimit || length > maxMessageSize {
                throw FramingError(reason: "octet counting: MSG-LEN exceeds the \(maxMessageSize)-byte message limit")
            }
        }
        guard i < view.count else { return nil }  // the space has not arrived yet
        guard buffer.readableBytes >= i + 1 + length else { return nil }  // wait for the whole message; never allocated up front
        buffer.moveReaderIndex(forwardBy: i + 1)
        return .message(buffer.readBytes(length: length)!)
    }

    /// Offset of the first LF or NUL in the readable bytes.
    private func trailer(in buffer: ByteBuffer) -> Int? {
        buffer.readableBytesView.firstIndex { $0 == 0x0A || $0 == 0x00 }.map { $0 - buffer.readerIndex }
    }
}
