import SextantModel

/// One event: its time and record (Forward Protocol v1, "Entry": `[time, record]`).
public struct ForwardEntry: Sendable, Equatable {
    public var timeUnixNano: UInt64
    public var record: [KeyValue]

    public init(timeUnixNano: UInt64, record: [KeyValue]) {
        self.timeUnixNano = timeUnixNano
        self.record = record
    }
}

/// The options map that may end a frame (spec v1, "Option"). Unknown keys are ignored.
public struct ForwardOption: Sendable, Equatable {
    /// `chunk`: asks the server to answer `{"ack": chunk}` once the events are stored.
    public var chunk: String?
    /// `size`: the number of events the client says it sent (informational).
    public var size: Int?
    /// `compressed`: `"gzip"` for CompressedPackedForward; `"text"` or absent for the others.
    public var compressed: String?

    public init(chunk: String? = nil, size: Int? = nil, compressed: String? = nil) {
        self.chunk = chunk
        self.size = size
        self.compressed = compressed
    }
}

/// The event modes of spec v1, "Event Modes".
public enum ForwardMode: String, Sendable, Equatable {
    /// `[tag, time, record, option?]`
    case message
    /// `[tag, [[time, record], ...], option?]`
    case forward
    /// `[tag, bin|str of concatenated msgpack entries, option?]`
    case packedForward
    /// PackedForward whose stream is gzip (`option.compressed == "gzip"`), possibly several members.
    case compressedPackedForward
}

/// Events of one frame, all under one tag.
public struct ForwardEvents: Sendable, Equatable {
    public var mode: ForwardMode
    public var tag: String
    public var entries: [ForwardEntry]
    public var option: ForwardOption

    public init(mode: ForwardMode, tag: String, entries: [ForwardEntry], option: ForwardOption = ForwardOption()) {
        self.mode = mode
        self.tag = tag
        self.entries = entries
        self.option = option
    }
}

/// What a client sends on an established connection.
public enum ForwardMessage: Sendable, Equatable {
    /// A bare `nil`: the TCP heartbeat (spec v1, "Heartbeat Message"); nothing to answer.
    case heartbeat
    case events(ForwardEvents)
}

/// Decoding limits for untrusted input.
public struct ForwardLimits: Sendable, Equatable {
    /// Nesting limit of msgpack containers, counted from the frame.
    public var maxDepth = 64
    /// Upper bound of a decompressed CompressedPackedForward stream.
    public var maxDecompressedSize = 64 << 20

    public init(maxDepth: Int = 64, maxDecompressedSize: Int = 64 << 20) {
        self.maxDepth = maxDepth
        self.maxDecompressedSize = maxDecompressedSize
    }
}

/// Decodes and encodes Fluentd Forward Protocol v1 frames
/// (https://github.com/fluent/fluentd/wiki/Forward-Protocol-Specification-v1).
public enum ForwardCodec {
    /// The EventTime extension type (spec v1, "EventTime Ext Format").
    public static let eventTimeExtType: Int8 = 0

    /// Inflates a CompressedPackedForward stream; the receiver supplies one bounded by `maxSize`.
    public typealias Inflate = (_ compressed: UnsafeRawBufferPointer, _ maxSize: Int) throws -> [UInt8]

    /// Decodes one complete frame (as split off by `MessagePackFramer`).
    public static func decode(_ frame: UnsafeRawBufferPointer, limits: ForwardLimits = ForwardLimits(), inflate: Inflate) throws
        -> ForwardMessage
    {
        var r = MessagePackReader(frame, maxDepth: limits.maxDepth)
        if try r.readNil() {
            try expectEnd(r)
            return .heartbeat
        }
        let arrayStart = r.position
        let count = try r.readArrayHeader()
        guard (2...4).contains(count) else {
            throw r.error(.unexpectedType, "a Forward frame is an array of 2 to 4 elements, found \(count)", at: arrayStart)
        }
        let tag = try readTag(&r)
        let second = try r.peekByte()
        let events: ForwardEvents
        switch second {
        case 0x90...0x9f, MessagePackFormat.array16, MessagePackFormat.array32:
            // Forward mode: [tag, [entry...], option?]
            guard count <= 3 else { throw r.error(.unexpectedType, "Forward mode takes 2 or 3 elements, found \(count)", at: arrayStart) }
            let n = try r.readArrayHeader()
            var entries: [ForwardEntry] = []
            entries.reserveCapacity(Swift.min(n, 4096))
            for _ in 0..<n { entries.append(try readEntry(&r)) }
            let option = count == 3 ? try readOption(&r) : ForwardOption()
            events = ForwardEvents(mode: .forward, tag: tag, entries: entries, option: option)
        case 0xa0...0xbf, MessagePackFormat.str8, MessagePackFormat.str16, MessagePackFormat.str32, MessagePackFormat.bin8,
            MessagePackFormat.bin16, MessagePackFormat.bin32:
            // (Compressed)PackedForward: [tag, stream, option?]
            guard count <= 3 else {
                throw r.error(.unexpectedType, "PackedForward mode takes 2 or 3 elements, found \(count)", at: arrayStart)
            }
            let streamOffset = r.position
            let stream = try r.readStringOrBinaryBytes()
            let streamStart = frame.count - r.remaining - stream.count
            let option = count == 3 ? try readOption(&r) : ForwardOption()
            let entries: [ForwardEntry]
            let mode: ForwardMode
            switch option.compressed {
            case nil, "text":
                mode = .packedForward
                entries = try decodeEntries(stream, maxDepth: limits.maxDepth - 1, baseOffset: streamStart)
            case "gzip":
                mode = .compressedPackedForward
                let inflated: [UInt8]
                do {
                    inflated = try inflate(stream, limits.maxDecompressedSize)
                } catch let e as MessagePackError {
                    throw e
                } catch {
                    throw MessagePackError(.unexpectedType, at: streamOffset, "cannot decompress the gzip entry stream: \(error)")
                }
                do {
                    entries = try inflated.withUnsafeBytes { raw in try decodeEntries(raw, maxDepth: limits.maxDepth - 1, baseOffset: 0) }
                } catch let e as MessagePackError {
                    throw MessagePackError(e.kind, at: e.offset, "in the decompressed entry stream: \(e.message)")
                }
            case .some(let other):
                throw r.error(.unexpectedType, "unsupported option compressed \"\(other)\" (only \"gzip\" and \"text\")")
            }
            events = ForwardEvents(mode: mode, tag: tag, entries: entries, option: option)
        default:
            // Message mode: [tag, time, record, option?]
            guard count >= 3 else {
                throw r.error(.unexpectedType, "Message mode takes 3 or 4 elements, found \(count)", at: arrayStart)
            }
            let time = try readTime(&r)
            let record = try readRecord(&r)
            let option = count == 4 ? try readOption(&r) : ForwardOption()
            events = ForwardEvents(mode: .message, tag: tag, entries: [ForwardEntry(timeUnixNano: time, record: record)], option: option)
        }
        try expectEnd(r)
        return .events(events)
    }

    /// Convenience for tests and tools: decodes a frame held in an array.
    public static func decode(_ frame: [UInt8], limits: ForwardLimits = ForwardLimits(), inflate: Inflate) throws -> ForwardMessage {
        try frame.withUnsafeBytes { try decode($0, limits: limits, inflate: inflate) }
    }

    /// Decodes a PackedForward entry stream: msgpack `[time, record]` arrays back to back.
    public static func decodeEntries(_ stream: UnsafeRawBufferPointer, maxDepth: Int = 63, baseOffset: Int = 0) throws(MessagePackError)
        -> [ForwardEntry]
    {
        var r = MessagePackReader(stream, maxDepth: maxDepth, baseOffset: baseOffset)
        var entries: [ForwardEntry] = []
        while !r.isAtEnd { entries.append(try readEntry(&r)) }
        return entries
    }

    static func expectEnd(_ r: MessagePackReader) throws(MessagePackError) {
        guard r.isAtEnd else { throw r.error(.unexpectedType, "\(r.remaining) bytes after the end of the frame") }
    }

    static func readTag(_ r: inout MessagePackReader) throws(MessagePackError) -> String {
        let start = r.position
        do {
            return try r.readString()
        } catch where error.kind == .unexpectedType {
            throw r.error(.unexpectedType, "the tag must be a string", at: start)
        }
    }

    /// `[time, record]`. Fluent Bit's newer `[[time, metadata], record]` entries are accepted too
    /// (the metadata map is skipped).
    static func readEntry(_ r: inout MessagePackReader) throws(MessagePackError) -> ForwardEntry {
        let start = r.position
        let n = try r.readArrayHeader()
        guard n == 2 else { throw r.error(.unexpectedType, "an entry is [time, record], found an array of \(n)", at: start) }
        let time: UInt64
        switch try r.peekByte() {
        case 0x90...0x9f, MessagePackFormat.array16, MessagePackFormat.array32:
            let headerStart = r.position
            let m = try r.readArrayHeader()
            guard m == 2 else { throw r.error(.unexpectedType, "an entry header is [time, metadata], found \(m) elements", at: headerStart) }
            time = try readTime(&r)
            try r.skipValue()
        default:
            time = try readTime(&r)
        }
        return ForwardEntry(timeUnixNano: time, record: try readRecord(&r))
    }

    /// Integer seconds, EventTime (ext 0: uint32 seconds + uint32 nanoseconds, big-endian), or a float.
    static func readTime(_ r: inout MessagePackReader) throws(MessagePackError) -> UInt64 {
        let start = r.position
        switch try r.peekByte() {
        case 0xd4...0xd8, MessagePackFormat.ext8, MessagePackFormat.ext16, MessagePackFormat.ext32:
            let (type, data) = try r.readExt()
            guard type == eventTimeExtType, data.count == 8 else {
                throw r.error(.unexpectedType, "a time extension must be EventTime (type 0, 8 bytes), found type \(type) with \(data.count) bytes", at: start)
            }
            var sec: UInt64 = 0
            var nsec: UInt64 = 0
            for i in 0..<4 { sec = sec << 8 | UInt64(data[i]) }
            for i in 4..<8 { nsec = nsec << 8 | UInt64(data[i]) }
            return sec * 1_000_000_000 + nsec
        default:
            switch try r.readValue() {
            case .int(let s) where s >= 0 && s < 1 << 33: return UInt64(s) * 1_000_000_000
            case .float(let d) where d >= 0 && d < Double(1 << 33): return UInt64((d * 1e9).rounded())
            default: throw r.error(.unexpectedType, "the time must be a non-negative integer, a float or an EventTime", at: start)
            }
        }
    }

    static func readRecord(_ r: inout MessagePackReader) throws(MessagePackError) -> [KeyValue] {
        let start = r.position
        let b = try r.peekByte()
        guard (0x80...0x8f).contains(b) || b == MessagePackFormat.map16 || b == MessagePackFormat.map32 else {
            throw r.error(.unexpectedType, "the record must be a map, found \(MessagePackReader.describe(b))", at: start)
        }
        return try r.readKeyValues()
    }

    static func readOption(_ r: inout MessagePackReader) throws(MessagePackError) -> ForwardOption {
        let start = r.position
        if try r.readNil() { return ForwardOption() }
        let value = try r.readValue()
        guard case .map(let pairs) = value else { throw r.error(.unexpectedType, "the option must be a map", at: start) }
        var option = ForwardOption()
        for p in pairs {
            switch p.key.text {
            case "chunk":
                guard let c = p.value.text else { throw r.error(.unexpectedType, "option chunk must be a string", at: start) }
                option.chunk = c
            case "size":
                guard case .int(let n) = p.value, n >= 0 else { throw r.error(.unexpectedType, "option size must be a non-negative integer", at: start) }
                option.size = Int(n)
            case "compressed":
                guard let c = p.value.text else { throw r.error(.unexpectedType, "option compressed must be a string", at: start) }
                option.compressed = c
            default: continue
            }
        }
        return option
    }

    // MARK: Encoding (what the exporter sends, and the server's answers)

    /// Appends `[EventTime, record]` to a PackedForward entry stream; the caller writes the record map.
    public static func appendEntry(to w: inout MessagePackWriter, timeUnixNano: UInt64, record: (inout MessagePackWriter) -> Void) {
        w.writeArrayHeader(2)
        appendEventTime(to: &w, timeUnixNano: timeUnixNano)
        record(&w)
    }

    /// EventTime: ext type 0 (fixext 8), uint32 seconds and uint32 nanoseconds, big-endian.
    public static func appendEventTime(to w: inout MessagePackWriter, timeUnixNano: UInt64) {
        let sec = UInt32(truncatingIfNeeded: timeUnixNano / 1_000_000_000)
        let nsec = UInt32(timeUnixNano % 1_000_000_000)
        w.bytes.append(MessagePackFormat.fixext8)
        w.bytes.append(UInt8(bitPattern: eventTimeExtType))
        w.bigEndian(sec)
        w.bigEndian(nsec)
    }

    /// A PackedForward frame (or CompressedPackedForward when `compressed` is set; the stream must
    /// then already be gzip), with the entry stream as msgpack bin.
    public static func packedForward(tag: String, stream: [UInt8], entryCount: Int, chunk: String?, compressed: Bool) -> [UInt8] {
        var w = MessagePackWriter(capacity: stream.count + tag.utf8.count + 64)
        w.writeArrayHeader(3)
        w.write(tag)
        w.write(binary: stream)
        w.writeMapHeader(1 + (chunk == nil ? 0 : 1) + (compressed ? 1 : 0))
        w.write("size")
        w.write(Int64(entryCount))
        if let chunk {
            w.write("chunk")
            w.write(chunk)
        }
        if compressed {
            w.write("compressed")
            w.write("gzip")
        }
        return w.bytes
    }

    /// The server's acknowledgement `{"ack": chunk}` (spec v1, "Response").
    public static func ack(_ chunk: String) -> [UInt8] {
        var w = MessagePackWriter(capacity: chunk.utf8.count + 8)
        w.writeMapHeader(1)
        w.write("ack")
        w.write(chunk)
        return w.bytes
    }

    /// The chunk id in an ack response, or `nil` when `frame` is not one.
    public static func decodeAck(_ frame: [UInt8]) -> String? {
        guard let v = try? MessagePack.decode(frame), let chunk = v["ack"]?.text else { return nil }
        return chunk
    }
}
