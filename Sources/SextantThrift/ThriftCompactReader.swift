/// Reads TCompactProtocol (thrift/doc/specs/thrift-compact-protocol.md): zigzag varint integers,
/// field-id deltas in the field header, bool field values folded into the header's type nibble.
public struct ThriftCompactReader: ThriftReader {
    var input: ThriftInput
    /// The id of the last field read in the current struct ("Struct encoding": deltas are relative).
    private var lastFieldID: Int16 = 0
    /// The enclosing structs' `lastFieldID`s.
    private var fieldIDStack: [Int16] = []
    /// A bool field's value, read with its header and handed out by the next `readBool()`.
    private var pendingBool: Bool?

    /// A reader over `bytes`, which must outlive it.
    public init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) {
        input = ThriftInput(bytes, maxDepth: maxDepth)
    }

    public var offset: Int { input.position }
    public var remaining: Int { input.remaining }

    static let protocolID: UInt8 = 0x82
    static let version: UInt8 = 1

    // MARK: Messages

    /// "Message": protocol id 0x82, `mmmvvvvv` (type, version 1), varint seq id, name.
    public mutating func readMessageBegin() throws(ThriftError) -> ThriftMessageHeader {
        let start = input.position
        let protocolID = try input.readUInt8("message protocol id")
        guard protocolID == Self.protocolID else {
            throw ThriftError(.badVersion, "compact protocol id 0x\(String(protocolID, radix: 16)) is not 0x82", offset: start)
        }
        let versionAndType = try input.readUInt8("message version")
        guard versionAndType & 0x1F == Self.version else {
            throw ThriftError(.badVersion, "compact protocol version \(versionAndType & 0x1F) is not 1", offset: start + 1)
        }
        guard let type = ThriftMessageType(rawValue: versionAndType >> 5) else {
            throw ThriftError(.invalidValue, "invalid message type \(versionAndType >> 5)", offset: start + 1)
        }
        // The sequence id is a varint but not zigzag-encoded: negative ids take five bytes.
        let seqID = Int32(truncatingIfNeeded: try input.readVarint(maxBytes: 5, "message sequence id"))
        let name = try readString()
        return ThriftMessageHeader(name: name, type: type, seqID: seqID)
    }

    public mutating func readMessageEnd() {}

    // MARK: Structs

    public mutating func readStructBegin() throws(ThriftError) {
        try input.enter("struct")
        fieldIDStack.append(lastFieldID)
        lastFieldID = 0
    }

    public mutating func readStructEnd() {
        input.leave()
        lastFieldID = fieldIDStack.popLast() ?? 0
    }

    public mutating func readFieldBegin() throws(ThriftError) -> ThriftFieldHeader? {
        pendingBool = nil
        let header = try input.readUInt8("field header")
        if header == 0 { return nil }
        let typeCode = header & 0x0F
        let type = try valueType(typeCode, "field")
        let delta = header >> 4
        let id: Int16
        if delta != 0 {
            id = Int16(truncatingIfNeeded: Int(lastFieldID) + Int(delta))
        } else {
            id = try readI16()
        }
        if type == .bool { pendingBool = typeCode == 1 }
        lastFieldID = id
        return ThriftFieldHeader(type: type, id: id)
    }

    public mutating func readFieldEnd() {}

    // MARK: Containers

    public mutating func readListBegin() throws(ThriftError) -> ThriftListHeader {
        try input.enter("list")
        return try readCollectionHeader("list")
    }

    public mutating func readListEnd() { input.leave() }

    public mutating func readSetBegin() throws(ThriftError) -> ThriftListHeader {
        try input.enter("set")
        return try readCollectionHeader("set")
    }

    public mutating func readSetEnd() { input.leave() }

    /// "Map": an empty map is the single byte 0 and carries no types; its header reports `.stop`.
    public mutating func readMapBegin() throws(ThriftError) -> ThriftMapHeader {
        try input.enter("map")
        let count = try readSize("map")
        if count == 0 { return ThriftMapHeader(keyType: .stop, valueType: .stop, count: 0) }
        let types = try input.readUInt8("map types")
        let keyType = try valueType(types >> 4, "map key")
        let valueType = try valueType(types & 0x0F, "map value")
        try input.checkCount(count, minimumElementSize: minimumSize(of: keyType) + minimumSize(of: valueType), "map")
        return ThriftMapHeader(keyType: keyType, valueType: valueType, count: count)
    }

    public mutating func readMapEnd() { input.leave() }

    /// "List and Set": `ssssttttt` with sizes up to 14 in the nibble, 15 meaning a varint follows.
    private mutating func readCollectionHeader(_ what: StaticString) throws(ThriftError) -> ThriftListHeader {
        let header = try input.readUInt8("collection header")
        let elementType = try valueType(header & 0x0F, what)
        let count = header >> 4 == 15 ? try readSize(what) : Int(header >> 4)
        try input.checkCount(count, minimumElementSize: minimumSize(of: elementType), what)
        return ThriftListHeader(elementType: elementType, count: count)
    }

    /// A varint size, unsigned on the wire but a signed 32-bit value in every implementation.
    private mutating func readSize(_ what: StaticString) throws(ThriftError) -> Int {
        let start = input.position
        let size = try input.readVarint(maxBytes: 5, what)
        guard size <= UInt64(Int32.max) else {
            throw ThriftError(.negativeSize, "\(what) size \(size) is negative as a 32-bit value", offset: start)
        }
        return Int(size)
    }

    /// The type for `code`, read from the byte just consumed ("Struct encoding" and "List and Set"
    /// share the codes).
    private func valueType(_ code: UInt8, _ what: StaticString) throws(ThriftError) -> ThriftType {
        switch code {
        case 1, 2: return .bool
        case 3: return .byte
        case 4: return .i16
        case 5: return .i32
        case 6: return .i64
        case 7: return .double
        case 8: return .binary
        case 9: return .list
        case 10: return .set
        case 11: return .map
        case 12: return .struct
        case 13: return .uuid
        default: throw ThriftError(.invalidType, "invalid compact \(what) type \(code)", offset: input.position - 1)
        }
    }

    // MARK: Values

    /// A bool field's value comes from its header; a bool element is a byte, 1 for true ("Boolean
    /// encoding": false is 2, though some writers send 0).
    public mutating func readBool() throws(ThriftError) -> Bool {
        if let value = pendingBool {
            pendingBool = nil
            return value
        }
        return try input.readUInt8("bool") == 1
    }

    public mutating func readByte() throws(ThriftError) -> Int8 { Int8(bitPattern: try input.readUInt8("byte")) }

    public mutating func readI16() throws(ThriftError) -> Int16 {
        let start = input.position
        let v = Self.unzigzag(try input.readVarint(maxBytes: 3, "i16"))
        guard let narrow = Int16(exactly: v) else { throw ThriftError(.invalidValue, "i16 value \(v) out of range", offset: start) }
        return narrow
    }

    public mutating func readI32() throws(ThriftError) -> Int32 {
        let start = input.position
        let v = Self.unzigzag(try input.readVarint(maxBytes: 5, "i32"))
        guard let narrow = Int32(exactly: v) else { throw ThriftError(.invalidValue, "i32 value \(v) out of range", offset: start) }
        return narrow
    }

    public mutating func readI64() throws(ThriftError) -> Int64 { Self.unzigzag(try input.readVarint(maxBytes: 10, "i64")) }

    /// "Double encoding": little-endian, unlike the binary protocol.
    public mutating func readDouble() throws(ThriftError) -> Double {
        Double(bitPattern: try input.readFixed(UInt64.self, bigEndian: false, "double"))
    }

    public mutating func readBinary() throws(ThriftError) -> [UInt8] { Array(try readBinaryBytes()) }

    public mutating func readString() throws(ThriftError) -> String { ThriftInput.string(try readBinaryBytes()) }

    public mutating func skipBinary() throws(ThriftError) { _ = try readBinaryBytes() }

    public mutating func readUUID() throws(ThriftError) -> [UInt8] { Array(try input.take(16, "uuid")) }

    private mutating func readBinaryBytes() throws(ThriftError) -> UnsafeRawBufferPointer {
        let length = try readSize("binary")
        return try input.take(length, "binary")
    }

    public func minimumSize(of type: ThriftType) -> Int {
        switch type {
        case .double: return 8
        case .uuid: return 16
        default: return 1
        }
    }

    /// "ZigZag encoding": `(n >>> 1) ^ -(n & 1)`.
    @inline(__always)
    static func unzigzag(_ n: UInt64) -> Int64 {
        Int64(bitPattern: (n >> 1) ^ (0 &- (n & 1)))
    }
}
