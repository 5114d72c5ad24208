/// Reads TBinaryProtocol (thrift/doc/specs/thrift-binary-protocol.md): big-endian fixed-width
/// integers, `i32` sizes, one type byte and an `i16` id per field.
public struct ThriftBinaryReader: ThriftReader {
    var input: ThriftInput

    /// A reader over `bytes`, which must outlive it.
    public init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) {
        input = ThriftInput(bytes, maxDepth: maxDepth)
    }

    public var offset: Int { input.position }
    public var remaining: Int { input.remaining }

    // MARK: Messages

    /// Accepts both the strict encoding (version word first, what every current library writes)
    /// and the old one that starts with the name ("Message": the sign bit tells them apart).
    public mutating func readMessageBegin() throws(ThriftError) -> ThriftMessageHeader {
        let start = input.position
        let first = try input.readFixed(Int32.self, "message header")
        let name: String
        let typeByte: UInt8
        if first < 0 {
            let word = UInt32(bitPattern: first)
            guard word & 0xFFFF_0000 == 0x8001_0000 else {
                throw ThriftError(
                    .badVersion, "binary protocol message version 0x\(String(word >> 16, radix: 16)) is not 0x8001", offset: start)
            }
            typeByte = UInt8(truncatingIfNeeded: word)
            name = try readString()
        } else {
            name = ThriftInput.string(try input.take(Int(first), "message name"))
            typeByte = try input.readUInt8("message type")
        }
        guard let type = ThriftMessageType(rawValue: typeByte) else {
            throw ThriftError(.invalidValue, "invalid message type \(typeByte)", offset: start)
        }
        let seqID = try input.readFixed(Int32.self, "message sequence id")
        return ThriftMessageHeader(name: name, type: type, seqID: seqID)
    }

    public mutating func readMessageEnd() {}

    // MARK: Structs

    public mutating func readStructBegin() throws(ThriftError) { try input.enter("struct") }
    public mutating func readStructEnd() { input.leave() }

    public mutating func readFieldBegin() throws(ThriftError) -> ThriftFieldHeader? {
        let code = try input.readUInt8("field header")
        if code == 0 { return nil }
        let type = try valueType(code, "field")
        let id = try input.readFixed(Int16.self, "field id")
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

    public mutating func readMapBegin() throws(ThriftError) -> ThriftMapHeader {
        try input.enter("map")
        let keyCode = try input.readUInt8("map key type")
        let keyType = try valueType(keyCode, "map key")
        let valueCode = try input.readUInt8("map value type")
        let valueType = try valueType(valueCode, "map value")
        let count = try readSize("map")
        try input.checkCount(count, minimumElementSize: minimumSize(of: keyType) + minimumSize(of: valueType), "map")
        return ThriftMapHeader(keyType: keyType, valueType: valueType, count: count)
    }

    public mutating func readMapEnd() { input.leave() }

    private mutating func readCollectionHeader(_ what: StaticString) throws(ThriftError) -> ThriftListHeader {
        let code = try input.readUInt8("element type")
        let elementType = try valueType(code, what)
        let count = try readSize(what)
        try input.checkCount(count, minimumElementSize: minimumSize(of: elementType), what)
        return ThriftListHeader(elementType: elementType, count: count)
    }

    /// A non-negative `i32` size ("Binary encoding", "List and Set", "Map": "must be >= 0").
    private mutating func readSize(_ what: StaticString) throws(ThriftError) -> Int {
        let start = input.position
        let size = try input.readFixed(Int32.self, what)
        guard size >= 0 else { throw ThriftError(.negativeSize, "negative \(what) size \(size)", offset: start) }
        return Int(size)
    }

    /// The type for `code`, the byte just read.
    private func valueType(_ code: UInt8, _ what: StaticString) throws(ThriftError) -> ThriftType {
        guard code != 0, let type = ThriftType(rawValue: code) else {
            throw ThriftError(.invalidType, "invalid \(what) type \(code)", offset: input.position - 1)
        }
        return type
    }

    // MARK: Values

    public mutating func readBool() throws(ThriftError) -> Bool { try input.readUInt8("bool") == 1 }

    public mutating func readByte() throws(ThriftError) -> Int8 { Int8(bitPattern: try input.readUInt8("byte")) }

    public mutating func readI16() throws(ThriftError) -> Int16 { try input.readFixed(Int16.self, "i16") }

    public mutating func readI32() throws(ThriftError) -> Int32 { try input.readFixed(Int32.self, "i32") }

    public mutating func readI64() throws(ThriftError) -> Int64 { try input.readFixed(Int64.self, "i64") }

    public mutating func readDouble() throws(ThriftError) -> Double {
        Double(bitPattern: try input.readFixed(UInt64.self, "double"))
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
        case .stop, .bool, .byte, .struct: return 1
        case .i16: return 2
        case .i32, .binary: return 4
        case .i64, .double: return 8
        case .set, .list: return 5
        case .map: return 6
        case .uuid: return 16
        }
    }
}
