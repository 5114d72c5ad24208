/// A cursor over protobuf wire-format bytes (protobuf encoding guide, "Message Structure").
///
/// A nested message is read through a sub-reader bounded by its length prefix; all readers of one
/// request share `base`, so error offsets count from the start of the request.
public struct ProtoReader {
    /// Start of the whole request.
    let base: UnsafeRawPointer
    var pos: UnsafeRawPointer
    let end: UnsafeRawPointer
    /// Where the last tag started and what it was, for error messages.
    var tagStart: UnsafeRawPointer
    var lastTag: UInt64 = 0
    /// The request's strings made so far, shared by the nested readers; the decode call that set it
    /// keeps it alive (see ``RequestStrings``).
    unowned(unsafe) var strings: RequestStrings?

    public init(_ bytes: UnsafeRawBufferPointer) {
        // An empty buffer may have no address; any non-null pointer works as it is never read.
        let start = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        base = start
        pos = start
        end = start + bytes.count
        tagStart = start
    }

    /// A reader whose string fields go through `strings`, which must outlive it and every reader
    /// made from it.
    init(_ bytes: UnsafeRawBufferPointer, strings: RequestStrings) {
        self.init(bytes)
        self.strings = strings
    }

    private init(base: UnsafeRawPointer, pos: UnsafeRawPointer, end: UnsafeRawPointer, strings: RequestStrings?) {
        self.base = base
        self.pos = pos
        self.end = end
        tagStart = pos
        self.strings = strings
    }

    @inline(__always) public var hasMore: Bool { pos < end }

    public func error(_ message: String) -> OTLPDecodingError {
        OTLPDecodingError("\(message) at offset \(pos - base)")
    }

    // MARK: Scalars

    @inline(__always)
    public mutating func readVarint() throws(OTLPDecodingError) -> UInt64 {
        if pos < end {
            let b = pos.load(as: UInt8.self)
            if b < 0x80 {
                pos += 1
                return UInt64(b)
            }
        }
        return try readVarintSlow()
    }

    private mutating func readVarintSlow() throws(OTLPDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var p = pos
        while true {
            guard p < end else { throw error("truncated varint") }
            let b = p.load(as: UInt8.self)
            p += 1
            // Bits past 64 in the tenth byte are dropped, as the reference decoders do.
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 {
                pos = p
                return result
            }
            shift += 7
            if shift >= 70 { throw error("varint longer than 10 bytes") }
        }
    }

    /// Reads a field tag (`field_number << 3 | wire_type`); field number 0 is invalid.
    @inline(__always)
    public mutating func readTag() throws(OTLPDecodingError) -> UInt64 {
        tagStart = pos
        let tag = try readVarint()
        lastTag = tag
        if tag < 8 || tag > UInt64(UInt32.max) {
            throw OTLPDecodingError("invalid field tag \(tag) at offset \(tagStart - base)")
        }
        return tag
    }

    @inline(__always)
    public mutating func readFixed64() throws(OTLPDecodingError) -> UInt64 {
        guard end - pos >= 8 else { throw error("truncated fixed64 field") }
        let v = UInt64(littleEndian: pos.loadUnaligned(as: UInt64.self))
        pos += 8
        return v
    }

    @inline(__always)
    mutating func readFixed32() throws(OTLPDecodingError) -> UInt32 {
        guard end - pos >= 4 else { throw error("truncated fixed32 field") }
        let v = UInt32(littleEndian: pos.loadUnaligned(as: UInt32.self))
        pos += 4
        return v
    }

    @inline(__always)
    mutating func readDouble() throws(OTLPDecodingError) -> Double {
        Double(bitPattern: try readFixed64())
    }

    /// `int32`/`enum` fields are sign-extended varints; keep the low 32 bits.
    @inline(__always)
    public mutating func readInt32() throws(OTLPDecodingError) -> Int32 {
        Int32(truncatingIfNeeded: try readVarint())
    }

    @inline(__always)
    mutating func readUInt32() throws(OTLPDecodingError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readVarint())
    }

    @inline(__always)
    mutating func readSInt32() throws(OTLPDecodingError) -> Int32 {
        let v = UInt32(truncatingIfNeeded: try readVarint())
        return Int32(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    // MARK: Length-delimited

    /// The payload of a length-delimited field, without copying. A length past the end of the
    /// enclosing message is an error; nothing is ever allocated from a claimed length.
    @inline(__always)
    public mutating func readBytes() throws(OTLPDecodingError) -> UnsafeRawBufferPointer {
        let length = try readVarint()
        guard length <= UInt64(end - pos) else {
            throw OTLPDecodingError(
                "truncated length-delimited field \(fieldNumber): length \(length) exceeds the \(end - pos) bytes left at offset \(pos - base)"
            )
        }
        let bytes = UnsafeRawBufferPointer(start: pos, count: Int(length))
        pos += Int(length)
        return bytes
    }

    /// A reader over the nested message in the current length-delimited field.
    @inline(__always)
    public mutating func readMessage() throws(OTLPDecodingError) -> ProtoReader {
        let bytes = try readBytes()
        let start = bytes.baseAddress ?? pos
        return ProtoReader(base: base, pos: start, end: start + bytes.count, strings: strings)
    }

    /// A `string` field, which must be valid UTF-8 (proto3 language guide, "Scalar Value Types").
    @inline(__always)
    public mutating func readString(in message: StaticString) throws(OTLPDecodingError) -> String {
        let bytes = try readBytes()
        if bytes.isEmpty { return "" }
        if let strings {
            return try strings.string(bytes) { bytes throws(OTLPDecodingError) in try makeString(bytes, in: message) }
        }
        return try makeString(bytes, in: message)
    }

    @inline(__always)
    private func makeString(_ bytes: UnsafeRawBufferPointer, in message: StaticString) throws(OTLPDecodingError) -> String {
        guard let s = UTF8Text.string(bytes) else {
            throw OTLPDecodingError(
                "invalid UTF-8 in string field \(fieldNumber) of \(message) at offset \(bytes.baseAddress! - base)")
        }
        return s
    }

    /// A `bytes` field, copied.
    @inline(__always)
    mutating func readByteArray() throws(OTLPDecodingError) -> [UInt8] {
        Array(try readBytes())
    }

    /// A `trace_id`/`span_id` field.
    @inline(__always)
    mutating func readID() throws(OTLPDecodingError) -> WireID {
        WireID(bytes: try readBytes())
    }

    // MARK: Repeated scalars

    /// Appends a packed (wire type 2) or unpacked (wire type 1) `fixed64` field; decoders must
    /// accept both (protobuf encoding guide, "Packed Repeated Fields").
    mutating func readRepeatedFixed64(wireType: UInt64, into out: inout [UInt64]) throws(OTLPDecodingError) {
        if wireType == 1 {
            out.append(try readFixed64())
            return
        }
        let bytes = try readBytes()
        guard bytes.count % 8 == 0 else { throw error("packed fixed64 field \(fieldNumber) length \(bytes.count) is not a multiple of 8") }
        out.reserveCapacity(out.count + bytes.count / 8)
        var i = 0
        while i < bytes.count {
            out.append(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            i += 8
        }
    }

    mutating func readRepeatedDouble(wireType: UInt64, into out: inout [Double]) throws(OTLPDecodingError) {
        if wireType == 1 {
            out.append(try readDouble())
            return
        }
        let bytes = try readBytes()
        guard bytes.count % 8 == 0 else { throw error("packed double field \(fieldNumber) length \(bytes.count) is not a multiple of 8") }
        out.reserveCapacity(out.count + bytes.count / 8)
        var i = 0
        while i < bytes.count {
            out.append(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))))
            i += 8
        }
    }

    /// Packed (wire type 2) or unpacked (wire type 0) `uint64`.
    mutating func readRepeatedVarint(wireType: UInt64, into out: inout [UInt64]) throws(OTLPDecodingError) {
        if wireType == 0 {
            out.append(try readVarint())
            return
        }
        var packed = try readMessage()
        // Each element takes at least one byte, so the payload length bounds the count.
        out.reserveCapacity(out.count + (packed.end - packed.pos))
        while packed.hasMore { out.append(try packed.readVarint()) }
    }

    // MARK: Repeated messages

    /// How many fields in a row, from this one, carry the tag just read: the size of a repeated field,
    /// to reserve its array once instead of growing it. Encoders write a repeated field's elements
    /// together (in field-number order), so the run ends the count; an element written elsewhere only
    /// makes the array grow. (Counting to the end of the message skipped every later field too: 4 % of
    /// an OTLP → OTLP pipeline.) Counting stops at the first malformed field, which decoding then reports.
    func countingRepeats() -> Int {
        var r = self
        let tag = lastTag
        var n = 1
        do throws(OTLPDecodingError) {
            try r.skip(tag: tag, in: "")
            while r.hasMore, try r.readTag() == tag {
                n += 1
                try r.skip(tag: tag, in: "")
            }
        } catch {}
        return n
    }

    // MARK: Unknown fields

    /// The field number of the last tag read.
    var fieldNumber: UInt64 { lastTag >> 3 }

    /// Skips a field this codec does not know (proto3 language guide, "Unknown Fields"). Groups
    /// (wire types 3 and 4) are deprecated and never used by OTLP, so they are rejected.
    public mutating func skip(tag: UInt64, in message: StaticString) throws(OTLPDecodingError) {
        switch tag & 7 {
        case 0: _ = try readVarint()
        case 1:
            guard end - pos >= 8 else { throw error("truncated fixed64 field \(tag >> 3) in \(message)") }
            pos += 8
        case 2: _ = try readBytes()
        case 5:
            guard end - pos >= 4 else { throw error("truncated fixed32 field \(tag >> 3) in \(message)") }
            pos += 4
        case 3, 4:
            throw OTLPDecodingError("unsupported group (wire type \(tag & 7)) for field \(tag >> 3) in \(message) at offset \(tagStart - base)")
        default:
            throw OTLPDecodingError("invalid wire type \(tag & 7) for field \(tag >> 3) in \(message) at offset \(tagStart - base)")
        }
    }
}

