import SextantModel

/// Reads MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md) from borrowed bytes.
///
/// Every length is checked against the bytes that remain before anything is read or allocated, so a
/// claimed length the input does not back fails with `.lengthPastEnd` instead of allocating; array and
/// map counts are checked the same way (each element takes at least one byte). Nesting is limited to
/// `maxDepth`. Errors carry the byte offset (plus `baseOffset`, for readers over a slice of a frame).
///
/// Use it inside `withUnsafeBytes`; it must not outlive the buffer.
public struct MessagePackReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position: Int
    public let maxDepth: Int
    public let baseOffset: Int

    public init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64, baseOffset: Int = 0) {
        self.bytes = bytes
        self.position = 0
        self.maxDepth = maxDepth
        self.baseOffset = baseOffset
    }

    public var isAtEnd: Bool { position >= bytes.count }
    public var remaining: Int { bytes.count - position }

    func error(_ kind: MessagePackError.Kind, _ message: String, at offset: Int? = nil) -> MessagePackError {
        MessagePackError(kind, at: baseOffset + (offset ?? position), message)
    }

    @inline(__always)
    func peekByte() throws(MessagePackError) -> UInt8 {
        guard position < bytes.count else { throw error(.truncated, "unexpected end of data") }
        return bytes[position]
    }

    @inline(__always)
    mutating func byte() throws(MessagePackError) -> UInt8 {
        let b = try peekByte()
        position += 1
        return b
    }

    @inline(__always)
    mutating func bigEndian<T: FixedWidthInteger>(_: T.Type) throws(MessagePackError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw error(.truncated, "unexpected end of data inside a \(n)-byte number") }
        var v: UInt64 = 0
        for i in 0..<n { v = v << 8 | UInt64(bytes[position + i]) }
        position += n
        return T(truncatingIfNeeded: v)
    }

    /// Takes `count` bytes after checking they exist; `start` is where the length prefix began.
    @inline(__always)
    mutating func take(_ count: Int, what: String, start: Int) throws(MessagePackError) -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw error(.lengthPastEnd, "\(what) of \(count) bytes extends past the end of the data (\(remaining) left)", at: start)
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
        position += count
        return slice
    }

    /// Checks that `count` elements (each at least one byte) can still fit.
    @inline(__always)
    func checkCount(_ count: Int, perElement: Int, what: String, start: Int) throws(MessagePackError) {
        guard count <= remaining / perElement else {
            throw error(.lengthPastEnd, "\(what) of \(count) elements cannot fit in the \(remaining) bytes left", at: start)
        }
    }

    // MARK: Typed reads

    /// `true` (and consumed) when the next value is nil.
    public mutating func readNil() throws(MessagePackError) -> Bool {
        guard try peekByte() == MessagePackFormat.null else { return false }
        position += 1
        return true
    }

    /// An array header; the count is checked against the bytes left.
    public mutating func readArrayHeader() throws(MessagePackError) -> Int {
        let start = position
        let b = try byte()
        let n: Int
        switch b {
        case 0x90...0x9f: n = Int(b & 0x0f)
        case MessagePackFormat.array16: n = Int(try bigEndian(UInt16.self))
        case MessagePackFormat.array32: n = Int(try bigEndian(UInt32.self))
        default: throw error(.unexpectedType, "expected an array, found \(Self.describe(b))", at: start)
        }
        try checkCount(n, perElement: 1, what: "array", start: start)
        return n
    }

    /// A map header (number of pairs); the count is checked against the bytes left.
    public mutating func readMapHeader() throws(MessagePackError) -> Int {
        let start = position
        let b = try byte()
        let n: Int
        switch b {
        case 0x80...0x8f: n = Int(b & 0x0f)
        case MessagePackFormat.map16: n = Int(try bigEndian(UInt16.self))
        case MessagePackFormat.map32: n = Int(try bigEndian(UInt32.self))
        default: throw error(.unexpectedType, "expected a map, found \(Self.describe(b))", at: start)
        }
        try checkCount(n, perElement: 2, what: "map", start: start)
        return n
    }

    /// The bytes of a str or bin value (Forward uses both for text and for entry streams).
    public mutating func readStringOrBinaryBytes() throws(MessagePackError) -> UnsafeRawBufferPointer {
        let start = position
        let b = try byte()
        let n: Int
        switch b {
        case 0xa0...0xbf: n = Int(b & 0x1f)
        case MessagePackFormat.str8, MessagePackFormat.bin8: n = Int(try bigEndian(UInt8.self))
        case MessagePackFormat.str16, MessagePackFormat.bin16: n = Int(try bigEndian(UInt16.self))
        case MessagePackFormat.str32, MessagePackFormat.bin32: n = Int(try bigEndian(UInt32.self))
        default: throw error(.unexpectedType, "expected a string or binary, found \(Self.describe(b))", at: start)
        }
        return try take(n, what: "string", start: start)
    }

    /// A str or bin value as text (invalid UTF-8 is replaced, as Forward records are often raw bytes).
    public mutating func readString() throws(MessagePackError) -> String {
        String(decoding: try readStringOrBinaryBytes(), as: UTF8.self)
    }

    /// Any integer that fits in `Int64`.
    public mutating func readInt() throws(MessagePackError) -> Int64 {
        let start = position
        switch try readValue() {
        case .int(let i): return i
        default: throw error(.unexpectedType, "expected an integer", at: start)
        }
    }

    /// Any value, built as a `MessagePackValue`.
    public mutating func readValue() throws(MessagePackError) -> MessagePackValue {
        try readValue(depth: 0)
    }

    mutating func readValue(depth: Int) throws(MessagePackError) -> MessagePackValue {
        let start = position
        let b = try byte()
        switch b {
        case 0x00...0x7f: return .int(Int64(b))
        case 0xe0...0xff: return .int(Int64(Int8(bitPattern: b)))
        case 0xa0...0xbf, MessagePackFormat.str8, MessagePackFormat.str16, MessagePackFormat.str32:
            position = start
            return .string(try readString())
        case MessagePackFormat.bin8, MessagePackFormat.bin16, MessagePackFormat.bin32:
            position = start
            return .binary(Array(try readStringOrBinaryBytes()))
        case 0x90...0x9f, MessagePackFormat.array16, MessagePackFormat.array32:
            guard depth < maxDepth else { throw error(.tooDeep, "containers nested deeper than \(maxDepth)", at: start) }
            position = start
            let n = try readArrayHeader()
            var out: [MessagePackValue] = []
            out.reserveCapacity(Swift.min(n, 1024))
            for _ in 0..<n { out.append(try readValue(depth: depth + 1)) }
            return .array(out)
        case 0x80...0x8f, MessagePackFormat.map16, MessagePackFormat.map32:
            guard depth < maxDepth else { throw error(.tooDeep, "containers nested deeper than \(maxDepth)", at: start) }
            position = start
            let n = try readMapHeader()
            var out: [MessagePackPair] = []
            out.reserveCapacity(Swift.min(n, 1024))
            for _ in 0..<n {
                let k = try readValue(depth: depth + 1)
                out.append(MessagePackPair(k, try readValue(depth: depth + 1)))
            }
            return .map(out)
        case MessagePackFormat.null: return .null
        case MessagePackFormat.false: return .bool(false)
        case MessagePackFormat.true: return .bool(true)
        case MessagePackFormat.uint8: return .int(Int64(try bigEndian(UInt8.self)))
        case MessagePackFormat.uint16: return .int(Int64(try bigEndian(UInt16.self)))
        case MessagePackFormat.uint32: return .int(Int64(try bigEndian(UInt32.self)))
        case MessagePackFormat.uint64:
            let v = try bigEndian(UInt64.self)
            return v <= UInt64(Int64.max) ? .int(Int64(v)) : .uint(v)
        case MessagePackFormat.int8: return .int(Int64(try bigEndian(Int8.self)))
        case MessagePackFormat.int16: return .int(Int64(try bigEndian(Int16.self)))
        case MessagePackFormat.int32: return .int(Int64(try bigEndian(Int32.self)))
        case MessagePackFormat.int64: return .int(try bigEndian(Int64.self))
        case MessagePackFormat.float32: return .float(Double(Float(bitPattern: try bigEndian(UInt32.self))))
        case MessagePackFormat.float64: return .float(Double(bitPattern: try bigEndian(UInt64.self)))
        case MessagePackFormat.fixext1, MessagePackFormat.fixext2, MessagePackFormat.fixext4, MessagePackFormat.fixext8,
            MessagePackFormat.fixext16, MessagePackFormat.ext8, MessagePackFormat.ext16, MessagePackFormat.ext32:
            position = start
            let (type, data) = try readExt()
            return .ext(type: type, data: Array(data))
        default:
            throw error(.invalidByte, "invalid format byte 0xc1", at: start)
        }
    }

    /// An extension value: its type and payload.
    public mutating func readExt() throws(MessagePackError) -> (Int8, UnsafeRawBufferPointer) {
        let start = position
        let b = try byte()
        let n: Int
        switch b {
        case MessagePackFormat.fixext1: n = 1
        case MessagePackFormat.fixext2: n = 2
        case MessagePackFormat.fixext4: n = 4
        case MessagePackFormat.fixext8: n = 8
        case MessagePackFormat.fixext16: n = 16
        case MessagePackFormat.ext8: n = Int(try bigEndian(UInt8.self))
        case MessagePackFormat.ext16: n = Int(try bigEndian(UInt16.self))
        case MessagePackFormat.ext32: n = Int(try bigEndian(UInt32.self))
        default: throw error(.unexpectedType, "expected an extension, found \(Self.describe(b))", at: start)
        }
        let type = Int8(bitPattern: try byte())
        return (type, try take(n, what: "extension", start: start))
    }

    /// Skips one value of any type without building it (depth-limited like `readValue`).
    public mutating func skipValue() throws(MessagePackError) {
        var pending = 1
        var depth = 0
        var stack: [Int] = []
        while pending > 0 {
            pending -= 1
            let start = position
            let b = try byte()
            var children = 0
            switch b {
            case 0x00...0x7f, 0xe0...0xff, MessagePackFormat.null, MessagePackFormat.false, MessagePackFormat.true: break
            case 0x80...0x8f, MessagePackFormat.map16, MessagePackFormat.map32:
                position = start
                children = try readMapHeader() * 2
            case 0x90...0x9f, MessagePackFormat.array16, MessagePackFormat.array32:
                position = start
                children = try readArrayHeader()
            case 0xc1: throw error(.invalidByte, "invalid format byte 0xc1", at: start)
            default:
                position = start
                _ = try readValue(depth: maxDepth)  // scalars only reach here: never recurses
            }
            if children > 0 {
                guard depth < maxDepth else { throw error(.tooDeep, "containers nested deeper than \(maxDepth)", at: start) }
                stack.append(pending)
                pending = children
                depth += 1
            }
            while pending == 0, let outer = stack.popLast() {
                pending = outer
                depth -= 1
            }
        }
    }

    // MARK: Direct decoding into the data model

    /// Any value as an OTLP `AnyValue` (the mapping of the OTel `fluentforward` receiver): str → string,
    /// bin → bytes, integers → int (unsigned above `Int64.max` → double), floats → double,
    /// arrays → array, maps → kvlist (non-string keys rendered as text), nil → empty, ext → bytes.
    public mutating func readAnyValue() throws(MessagePackError) -> AnyValue {
        try readAnyValue(depth: 0)
    }

    mutating func readAnyValue(depth: Int) throws(MessagePackError) -> AnyValue {
        let start = position
        let b = try byte()
        switch b {
        case 0x00...0x7f: return .int(Int64(b))
        case 0xe0...0xff: return .int(Int64(Int8(bitPattern: b)))
        case 0xa0...0xbf:
            return .string(String(decoding: try take(Int(b & 0x1f), what: "string", start: start), as: UTF8.self))
        case MessagePackFormat.str8, MessagePackFormat.str16, MessagePackFormat.str32:
            position = start
            return .string(try readString())
        case MessagePackFormat.bin8, MessagePackFormat.bin16, MessagePackFormat.bin32:
            position = start
            return .bytes(Array(try readStringOrBinaryBytes()))
        case 0x90...0x9f, MessagePackFormat.array16, MessagePackFormat.array32:
            guard depth < maxDepth else { throw error(.tooDeep, "containers nested deeper than \(maxDepth)", at: start) }
            position = start
            let n = try readArrayHeader()
            var out: [AnyValue] = []
            out.reserveCapacity(Swift.min(n, 1024))
            for _ in 0..<n { out.append(try readAnyValue(depth: depth + 1)) }
            return .array(out)
        case 0x80...0x8f, MessagePackFormat.map16, MessagePackFormat.map32:
            guard depth < maxDepth else { throw error(.tooDeep, "containers nested deeper than \(maxDepth)", at: start) }
            position = start
            return .kvlist(try readKeyValues(depth: depth + 1))
        case MessagePackFormat.null: return .empty
        case MessagePackFormat.false: return .bool(false)
        case MessagePackFormat.true: return .bool(true)
        default:
            position = start
            switch try readValue(depth: maxDepth) {
            case .int(let i): return .int(i)
            case .uint(let u): return .double(Double(u))
            case .float(let d): return .double(d)
            case .ext(_, let data): return .bytes(data)
            default: throw error(.unexpectedType, "unexpected value", at: start)  // not reachable: handled above
            }
        }
    }

    /// A map as attributes, in wire order.
    public mutating func readKeyValues() throws(MessagePackError) -> [KeyValue] {
        try readKeyValues(depth: 1)
    }

    mutating func readKeyValues(depth: Int) throws(MessagePackError) -> [KeyValue] {
        let n = try readMapHeader()
        var out: [KeyValue] = []
        out.reserveCapacity(Swift.min(n, 256))
        for _ in 0..<n {
            let key: String
            let b = try peekByte()
            if (0xa0...0xbf).contains(b) || b == MessagePackFormat.str8 || b == MessagePackFormat.str16 || b == MessagePackFormat.str32
                || b == MessagePackFormat.bin8 || b == MessagePackFormat.bin16 || b == MessagePackFormat.bin32
            {
                key = try readString()
            } else {
                key = try readAnyValue(depth: depth).asString
            }
            out.append(KeyValue(key, try readAnyValue(depth: depth)))
        }
        return out
    }

    static func describe(_ b: UInt8) -> String {
        switch b {
        case 0x00...0x7f, 0xe0...0xff, 0xcc...0xd3: return "an integer"
        case 0x80...0x8f, 0xde, 0xdf: return "a map"
        case 0x90...0x9f, 0xdc, 0xdd: return "an array"
        case 0xa0...0xbf, 0xd9...0xdb: return "a string"
        case 0xc0: return "nil"
        case 0xc2, 0xc3: return "a boolean"
        case 0xc4...0xc6: return "a binary"
        case 0xca, 0xcb: return "a float"
        case 0xc7...0xc9, 0xd4...0xd8: return "an extension"
        default: return "the invalid byte 0xc1"
        }
    }
}

extension MessagePack {
    /// Decodes exactly one value filling `bytes`.
    public static func decode(_ bytes: [UInt8], maxDepth: Int = 64) throws(MessagePackError) -> MessagePackValue {
        let result = bytes.withUnsafeBytes { raw -> Result<MessagePackValue, MessagePackError> in
            var r = MessagePackReader(raw, maxDepth: maxDepth)
            do throws(MessagePackError) {
                let v = try r.readValue()
                guard r.isAtEnd else { return .failure(r.error(.unexpectedType, "\(r.remaining) bytes after the value")) }
                return .success(v)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// Namespace for one-shot MessagePack encoding and decoding.
public enum MessagePack {}
