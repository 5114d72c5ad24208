/// Writes TCompactProtocol (thrift/doc/specs/thrift-compact-protocol.md), choosing the short forms
/// exactly where the spec says they "should be used", so output matches the reference libraries.
public struct ThriftCompactWriter: ThriftWriter {
    private var output: ThriftOutput
    private var lastFieldID: Int16 = 0
    private var fieldIDStack: [Int16] = []
    /// A bool field whose header waits for its value ("Boolean encoding": the value is the type).
    private var pendingBoolFieldID: Int16?

    public init(reservingCapacity capacity: Int) { output = ThriftOutput(reservingCapacity: capacity) }

    public var bytes: [UInt8] { output.bytes }

    public mutating func writeMessageBegin(_ header: ThriftMessageHeader) {
        output.append(ThriftCompactReader.protocolID)
        output.append(header.type.rawValue << 5 | ThriftCompactReader.version)
        output.appendVarint(UInt64(UInt32(bitPattern: header.seqID)))
        writeString(header.name)
    }

    public mutating func writeMessageEnd() {}

    public mutating func writeStructBegin() {
        fieldIDStack.append(lastFieldID)
        lastFieldID = 0
    }

    public mutating func writeStructEnd() { lastFieldID = fieldIDStack.popLast() ?? 0 }

    public mutating func writeFieldBegin(_ type: ThriftType, id: Int16) {
        if type == .bool {
            pendingBoolFieldID = id
            return
        }
        writeFieldHeader(Self.compactType(type), id: id)
    }

    /// Short form when the id grows by 1...15 over the previous field's, long form otherwise.
    private mutating func writeFieldHeader(_ typeCode: UInt8, id: Int16) {
        let delta = Int(id) - Int(lastFieldID)
        if delta > 0 && delta <= 15 {
            output.append(UInt8(delta) << 4 | typeCode)
        } else {
            output.append(typeCode)
            writeI16(id)
        }
        lastFieldID = id
    }

    public mutating func writeFieldEnd() {}
    public mutating func writeFieldStop() { output.append(0) }

    public mutating func writeListBegin(_ elementType: ThriftType, count: Int) {
        let n = ThriftOutput.checkedCount(count)
        let typeCode = Self.compactType(elementType)
        if n <= 14 {
            output.append(UInt8(n) << 4 | typeCode)
        } else {
            output.append(0xF0 | typeCode)
            output.appendVarint(UInt64(n))
        }
    }

    public mutating func writeListEnd() {}

    public mutating func writeSetBegin(_ elementType: ThriftType, count: Int) { writeListBegin(elementType, count: count) }
    public mutating func writeSetEnd() {}

    public mutating func writeMapBegin(keyType: ThriftType, valueType: ThriftType, count: Int) {
        let n = ThriftOutput.checkedCount(count)
        if n == 0 {
            output.append(0)
            return
        }
        output.appendVarint(UInt64(n))
        output.append(Self.compactType(keyType) << 4 | Self.compactType(valueType))
    }

    public mutating func writeMapEnd() {}

    /// In a field header when one is pending; otherwise an element byte, 1 true / 2 false.
    public mutating func writeBool(_ value: Bool) {
        if let id = pendingBoolFieldID {
            pendingBoolFieldID = nil
            writeFieldHeader(value ? 1 : 2, id: id)
        } else {
            output.append(value ? 1 : 2)
        }
    }

    public mutating func writeByte(_ value: Int8) { output.append(UInt8(bitPattern: value)) }
    public mutating func writeI16(_ value: Int16) { writeZigzag(Int64(value)) }
    public mutating func writeI32(_ value: Int32) { writeZigzag(Int64(value)) }
    public mutating func writeI64(_ value: Int64) { writeZigzag(value) }
    public mutating func writeDouble(_ value: Double) { output.appendLittleEndian(value.bitPattern) }

    public mutating func writeBinary(_ value: [UInt8]) {
        output.appendVarint(UInt64(ThriftOutput.checkedCount(value.count)))
        output.bytes.append(contentsOf: value)
    }

    public mutating func writeString(_ value: String) {
        let utf8 = value.utf8
        output.appendVarint(UInt64(ThriftOutput.checkedCount(utf8.count)))
        output.bytes.append(contentsOf: utf8)
    }

    public mutating func writeUUID(_ value: [UInt8]) {
        precondition(value.count == 16, "a uuid is 16 bytes")
        output.bytes.append(contentsOf: value)
    }

    /// "ZigZag encoding": `(n << 1) ^ (n >> 63)`.
    @inline(__always)
    private mutating func writeZigzag(_ n: Int64) {
        output.appendVarint(UInt64(bitPattern: (n << 1) ^ (n >> 63)))
    }

    /// Element and field type codes ("Struct encoding"); bool elements use 1, as the reference
    /// libraries do (the spec allows 1 or 2 and readers must take both).
    static func compactType(_ type: ThriftType) -> UInt8 {
        switch type {
        case .stop: return 0
        case .bool: return 1
        case .byte: return 3
        case .i16: return 4
        case .i32: return 5
        case .i64: return 6
        case .double: return 7
        case .binary: return 8
        case .list: return 9
        case .set: return 10
        case .map: return 11
        case .struct: return 12
        case .uuid: return 13
        }
    }
}
