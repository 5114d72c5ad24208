/// Writes Thrift values in one protocol's encoding, driven like TProtocol by generated code:
/// `writeStructBegin`, per field `writeFieldBegin` + value + `writeFieldEnd`, `writeFieldStop`,
/// `writeStructEnd`. Output is deterministic: the bytes depend only on the calls made.
public protocol ThriftWriter {
    init(reservingCapacity: Int)
    /// Everything written so far.
    var bytes: [UInt8] { get }

    mutating func writeMessageBegin(_ header: ThriftMessageHeader)
    mutating func writeMessageEnd()

    mutating func writeStructBegin()
    mutating func writeStructEnd()
    mutating func writeFieldBegin(_ type: ThriftType, id: Int16)
    mutating func writeFieldEnd()
    mutating func writeFieldStop()

    /// `count` must fit in an `i32`.
    mutating func writeListBegin(_ elementType: ThriftType, count: Int)
    mutating func writeListEnd()
    mutating func writeSetBegin(_ elementType: ThriftType, count: Int)
    mutating func writeSetEnd()
    mutating func writeMapBegin(keyType: ThriftType, valueType: ThriftType, count: Int)
    mutating func writeMapEnd()

    mutating func writeBool(_ value: Bool)
    mutating func writeByte(_ value: Int8)
    mutating func writeI16(_ value: Int16)
    mutating func writeI32(_ value: Int32)
    mutating func writeI64(_ value: Int64)
    mutating func writeDouble(_ value: Double)
    mutating func writeBinary(_ value: [UInt8])
    mutating func writeString(_ value: String)
    /// Exactly 16 bytes, big-endian.
    mutating func writeUUID(_ value: [UInt8])
}

extension ThriftWriter {
    public init() { self.init(reservingCapacity: 256) }
}

/// The output buffer shared by both protocol writers.
struct ThriftOutput {
    var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int) { bytes.reserveCapacity(capacity) }

    @inline(__always) mutating func append(_ b: UInt8) { bytes.append(b) }

    @inline(__always)
    mutating func appendBigEndian<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendVarint(_ v: UInt64) {
        var x = v
        while x >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: x) | 0x80)
            x >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: x))
    }

    @inline(__always)
    static func checkedCount(_ count: Int) -> Int32 {
        precondition(count >= 0 && count <= Int(Int32.max), "Thrift sizes are non-negative 32-bit values, got \(count)")
        return Int32(count)
    }
}
