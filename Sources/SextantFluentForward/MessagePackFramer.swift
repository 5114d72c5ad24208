/// Finds where one top-level MessagePack value ends in a byte stream that arrives in pieces.
///
/// Forward frames are bare msgpack values one after another on a TCP stream (Forward Protocol v1,
/// "Message Modes"), with no length prefix: a frame ends where its value ends. The framer walks
/// headers only (never payloads) and resumes where it stopped, so a frame that arrives in `k` pieces
/// costs O(frame length + k), not O(frame length × k). Lengths are checked against `maxFrameSize`
/// as soon as their header is read, so a huge claimed length fails at once instead of waiting (or
/// buffering) for bytes that will never come.
public struct MessagePackFramer: Sendable {
    public let maxFrameSize: Int
    public let maxDepth: Int
    /// Bytes of the current frame already walked.
    private var offset = 0
    /// Values still to walk in the current container, and those of the enclosing ones.
    private var pending = 1
    private var stack: [Int] = []

    public init(maxFrameSize: Int, maxDepth: Int = 64) {
        self.maxFrameSize = maxFrameSize
        self.maxDepth = maxDepth
    }

    /// Continues walking `bytes` (everything buffered since the current frame began). Returns the
    /// frame's length once it is complete (and resets for the next frame), or `nil` for "need more".
    public mutating func next(_ bytes: UnsafeRawBufferPointer) throws(MessagePackError) -> Int? {
        let count = bytes.count
        while pending > 0 {
            guard offset < count else { return nil }
            let b = bytes[offset]
            // Size of the header (format byte + length field) and of the payload that follows it.
            var header = 1
            var payload = 0
            var children = 0
            func length(_ width: Int) -> Int? {
                guard offset + 1 + width <= count else { return nil }
                var n = 0
                for i in 0..<width { n = n << 8 | Int(bytes[offset + 1 + i]) }
                return n
            }
            switch b {
            case 0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3: break
            case 0x80...0x8f: children = Int(b & 0x0f) * 2
            case 0x90...0x9f: children = Int(b & 0x0f)
            case 0xa0...0xbf: payload = Int(b & 0x1f)
            case 0xc1: throw MessagePackError(.invalidByte, at: offset, "invalid format byte 0xc1")
            case 0xc4, 0xd9:  // bin8, str8
                guard let n = length(1) else { return nil }
                header = 2
                payload = n
            case 0xc5, 0xda:  // bin16, str16
                guard let n = length(2) else { return nil }
                header = 3
                payload = n
            case 0xc6, 0xdb:  // bin32, str32
                guard let n = length(4) else { return nil }
                header = 5
                payload = n
            case 0xc7:  // ext8: length, type, data
                guard let n = length(1) else { return nil }
                header = 3
                payload = n
            case 0xc8:
                guard let n = length(2) else { return nil }
                header = 4
                payload = n
            case 0xc9:
                guard let n = length(4) else { return nil }
                header = 6
                payload = n
            case 0xca: payload = 4
            case 0xcb: payload = 8
            case 0xcc, 0xd0: payload = 1
            case 0xcd, 0xd1: payload = 2
            case 0xce, 0xd2: payload = 4
            case 0xcf, 0xd3: payload = 8
            case 0xd4: payload = 2  // fixext 1: type + 1 byte
            case 0xd5: payload = 3
            case 0xd6: payload = 5
            case 0xd7: payload = 9
            case 0xd8: payload = 17
            case 0xdc:
                guard let n = length(2) else { return nil }
                header = 3
                children = n
            case 0xdd:
                guard let n = length(4) else { return nil }
                header = 5
                children = n
            case 0xde:
                guard let n = length(2) else { return nil }
                header = 3
                children = n * 2
            default:  // 0xdf, map32
                guard let n = length(4) else { return nil }
                header = 5
                children = n * 2
            }
            let end = offset + header + payload
            // Every child takes at least one byte, so the frame is at least this long.
            guard end + children <= maxFrameSize else {
                throw MessagePackError(
                    .tooLarge, at: offset,
                    "frame exceeds the limit of \(maxFrameSize) bytes (a value here claims \(payload + children) more bytes)")
            }
            guard end <= count else { return nil }
            offset = end
            pending -= 1
            if children > 0 {
                guard stack.count < maxDepth else {
                    throw MessagePackError(.tooDeep, at: offset - header, "containers nested deeper than \(maxDepth)")
                }
                stack.append(pending)
                pending = children
            }
            while pending == 0, let outer = stack.popLast() { pending = outer }
        }
        let length = offset
        offset = 0
        pending = 1
        return length
    }

    /// Bytes of a frame in progress already walked (0 between frames).
    public var bytesInProgress: Int { offset }
}
