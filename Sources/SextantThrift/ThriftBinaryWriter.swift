/// Writes TBinaryProtocol (thrift/doc/specs/thrift-binary-protocol.md). Messages use the strict
/// encoding (version word `0x8001` first), which is what the reference libraries write by default.
public struct ThriftBinaryWriter: ThriftWriter {
    private var output: ThriftOutput

    public init(reservingCapacity capacity: Int) { output = ThriftOutput(reservingCapacity: capacity) }

    public var bytes: [UInt8] { output.bytes }

    public mutating func writeMessageBegin(_ header: ThriftMessageHeader) {
        output.appendBigEndian(UInt32(0x8001_0000) | UInt32(header.type.rawValue))
        writeString(header.name)
        output.appendBigEndian(header.seqID)
    }

    public mutating func writeMessageEnd() {}

    public mutating func writeStructBegin() {}
    public mutating func writeStructEnd() {}

    public mutating func writeFieldBegin(_ type: ThriftType, id: Int16) {
        output.append(type.rawValue)
        output.appendBigEndian(id)
    }

    public mutating func writeFieldEnd() {}
    public mutating func writeFieldStop() { output.append(0) }

    public mutating func writeListBegin(_ elementType: ThriftType, count: Int) {
        output.append(elementType.rawValue)
        output.appendBigEndian(ThriftOutput.checkedCount(count))
    }

    public mutating func writeListEnd() {}

    public mutating func writeSetBegin(_ elementType: ThriftType, count: Int) { writeListBegin(elementType, count: count) }
    public mutating func writeSetEnd() {}

    public mutating func writeMapBegin(keyType: ThriftType, valueType: ThriftType, count: Int) {
        output.append(keyType.rawValue)
        output.append(valueType.rawValue)
        output.appendBigEndian(ThriftOutput.checkedCount(count))
    }

    public mutating func writeMapEnd() {}

    public mutating func writeBool(_ value: Bool) { output.append(value ? 1 : 0) }
    public mutating func writeByte(_ value: Int8) { output.append(UInt8(bitPattern: value)) }
    public mutating func writeI16(_ value: Int16) { output.appendBigEndian(value) }
    public mutating func writeI32(_ value: Int32) { output.appendBigEndian(value) }
    public mutating func writeI64(_ value: Int64) { output.appendBigEndian(value) }
    public mutating func writeDouble(_ value: Double) { output.appendBigEndian(value.bitPattern) }

    public mutating func writeBinary(_ value: [UInt8]) {
        output.appendBigEndian(ThriftOutput.checkedCount(value.count))
        output.bytes.append(contentsOf: value)
    }

    public mutating func writeString(_ value: String) {
        let utf8 = value.utf8
        output.appendBigEndian(ThriftOutput.checkedCount(utf8.count))
        output.bytes.append(contentsOf: utf8)
    }

    public mutating func writeUUID(_ value: [UInt8]) {
        precondition(value.count == 16, "a uuid is 16 bytes")
        output.bytes.append(contentsOf: value)
    }
}
