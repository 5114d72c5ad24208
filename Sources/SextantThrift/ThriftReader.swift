/// Reads Thrift values in one protocol's encoding, the way generated code drives TProtocol: a
/// struct is `readStructBegin`, fields until `readFieldBegin` returns `nil`, `readStructEnd`.
///
/// Readers never allocate from a size read off the wire: every size is checked against the bytes
/// left (each element takes at least ``minimumSize(of:)`` bytes), so a `count` that passes is at
/// most the remaining input, and reserving it is safe. Structs, lists, sets and maps nest at most
/// `maxDepth` deep, which bounds ``skip(_:)``'s recursion.
public protocol ThriftReader {
    /// Bytes consumed so far; error offsets count from the start of the input.
    var offset: Int { get }
    /// Bytes not yet consumed.
    var remaining: Int { get }

    mutating func readMessageBegin() throws(ThriftError) -> ThriftMessageHeader
    mutating func readMessageEnd()

    mutating func readStructBegin() throws(ThriftError)
    mutating func readStructEnd()
    /// The next field's header, or `nil` at the struct's stop field.
    mutating func readFieldBegin() throws(ThriftError) -> ThriftFieldHeader?
    mutating func readFieldEnd()

    mutating func readListBegin() throws(ThriftError) -> ThriftListHeader
    mutating func readListEnd()
    mutating func readSetBegin() throws(ThriftError) -> ThriftListHeader
    mutating func readSetEnd()
    mutating func readMapBegin() throws(ThriftError) -> ThriftMapHeader
    mutating func readMapEnd()

    mutating func readBool() throws(ThriftError) -> Bool
    mutating func readByte() throws(ThriftError) -> Int8
    mutating func readI16() throws(ThriftError) -> Int16
    mutating func readI32() throws(ThriftError) -> Int32
    mutating func readI64() throws(ThriftError) -> Int64
    mutating func readDouble() throws(ThriftError) -> Double
    /// A `binary` value, copied.
    mutating func readBinary() throws(ThriftError) -> [UInt8]
    /// A `string` value. Invalid UTF-8 is repaired with U+FFFD rather than rejected: one bad tag
    /// should not cost a whole batch of spans (the reference Go reader does not validate either).
    mutating func readString() throws(ThriftError) -> String
    /// A `uuid`: 16 bytes, big-endian.
    mutating func readUUID() throws(ThriftError) -> [UInt8]
    /// Steps over a `binary`/`string` value without copying it.
    mutating func skipBinary() throws(ThriftError)

    /// The fewest bytes one value of `type` can take in this protocol.
    func minimumSize(of type: ThriftType) -> Int
}

extension ThriftReader {
    /// An error of `code` at the current offset.
    public func error(_ code: ThriftError.Code, _ message: String) -> ThriftError {
        ThriftError(code, message, offset: offset)
    }

    /// Skips one value of `type`, as generated code does for fields it does not know (both specs,
    /// "Struct": unknown fields are ignored).
    public mutating func skip(_ type: ThriftType) throws(ThriftError) {
        switch type {
        case .stop: throw error(.invalidType, "cannot skip a value of type stop")
        case .bool: _ = try readBool()
        case .byte: _ = try readByte()
        case .i16: _ = try readI16()
        case .i32: _ = try readI32()
        case .i64: _ = try readI64()
        case .double: _ = try readDouble()
        case .binary: try skipBinary()
        case .uuid: _ = try readUUID()
        case .struct:
            try readStructBegin()
            while let field = try readFieldBegin() {
                try skip(field.type)
                readFieldEnd()
            }
            readStructEnd()
        case .list:
            let header = try readListBegin()
            for _ in 0..<header.count { try skip(header.elementType) }
            readListEnd()
        case .set:
            let header = try readSetBegin()
            for _ in 0..<header.count { try skip(header.elementType) }
            readSetEnd()
        case .map:
            let header = try readMapBegin()
            for _ in 0..<header.count {
                try skip(header.keyType)
                try skip(header.valueType)
            }
            readMapEnd()
        }
    }
}

/// A bounded cursor over the input, shared by both protocol readers.
struct ThriftInput {
    let buffer: UnsafeRawBufferPointer
    var position = 0
    let maxDepth: Int
    var depth = 0

    init(_ buffer: UnsafeRawBufferPointer, maxDepth: Int) {
        self.buffer = buffer
        self.maxDepth = maxDepth
    }

    @inline(__always) var remaining: Int { buffer.count - position }

    func error(_ code: ThriftError.Code, _ message: String) -> ThriftError {
        ThriftError(code, message, offset: position)
    }

    @inline(__always)
    mutating func enter(_ what: StaticString) throws(ThriftError) {
        guard depth < maxDepth else {
            throw error(.depthLimitExceeded, "\(what) nested deeper than \(maxDepth) levels")
        }
        depth += 1
    }

    @inline(__always)
    mutating func leave() {
        if depth > 0 { depth -= 1 }
    }

    @inline(__always)
    mutating func readUInt8(_ what: StaticString) throws(ThriftError) -> UInt8 {
        guard position < buffer.count else { throw error(.truncated, "truncated \(what): input ended") }
        let b = buffer[position]
        position += 1
        return b
    }

    /// A fixed-width integer: big-endian in the binary protocol, little-endian for the compact
    /// protocol's doubles.
    @inline(__always)
    mutating func readFixed<T: FixedWidthInteger>(_: T.Type, bigEndian: Bool = true, _ what: StaticString) throws(ThriftError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw error(.truncated, "truncated \(what): needs \(size) bytes, \(remaining) left")
        }
        let raw = buffer.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }

    /// An unsigned LEB128 varint of at most `maxBytes` bytes (compact spec, "Varint encoding").
    @inline(__always)
    mutating func readVarint(maxBytes: Int, _ what: StaticString) throws(ThriftError) -> UInt64 {
        if position < buffer.count {
            let b = buffer[position]
            if b < 0x80 {
                position += 1
                return UInt64(b)
            }
        }
        return try readVarintSlow(maxBytes: maxBytes, what)
    }

    private mutating func readVarintSlow(maxBytes: Int, _ what: StaticString) throws(ThriftError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var p = position
        while true {
            guard p < buffer.count else {
                throw ThriftError(.truncated, "truncated varint in \(what): input ended", offset: p)
            }
            let b = buffer[p]
            p += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
            if p - start >= maxBytes {
                throw ThriftError(.invalidValue, "varint in \(what) longer than \(maxBytes) bytes", offset: start)
            }
        }
        position = p
        return result
    }

    /// `count` bytes, not copied.
    @inline(__always)
    mutating func take(_ count: Int, _ what: StaticString) throws(ThriftError) -> UnsafeRawBufferPointer {
        guard count <= remaining else {
            throw error(.sizeExceedsInput, "\(what) length \(count) exceeds the \(remaining) bytes left")
        }
        let slice = UnsafeRawBufferPointer(rebasing: buffer[position..<(position + count)])
        position += count
        return slice
    }

    /// Checks a container size read from the wire against what the remaining input could hold.
    @inline(__always)
    func checkCount(_ count: Int, minimumElementSize: Int, _ what: StaticString) throws(ThriftError) {
        // Zero-size elements do not exist in either protocol; guard anyway so this never divides.
        let perElement = max(minimumElementSize, 1)
        guard count <= remaining / perElement else {
            throw error(
                .sizeExceedsInput,
                "\(what) size \(count) exceeds what the \(remaining) bytes left can hold (at least \(perElement) bytes per element)")
        }
    }

    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.isEmpty { return "" }
        return String(decoding: bytes.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
    }
}
