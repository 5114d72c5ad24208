import SextantModel

/// Writes MessagePack (msgpack spec, "Formats"), always choosing the smallest encoding of a value.
public struct MessagePackWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func bigEndian<T: FixedWidthInteger>(_ v: T) {
        var be = v.bigEndian
        withUnsafeBytes(of: &be) { bytes.append(contentsOf: $0) }
    }

    public mutating func writeNil() { bytes.append(MessagePackFormat.null) }

    public mutating func write(_ b: Bool) { bytes.append(b ? MessagePackFormat.true : MessagePackFormat.false) }

    /// The smallest int form of `n` (spec, "int format family"): its first byte, and how many big-endian low
    /// bytes of `n` follow it (none for a positive or negative fixint, whose first byte is the value): uint 8–64
    /// for the other non-negative values, int 8–64 for the other negative ones.
    public static func intHead(_ n: Int64) -> (first: UInt8, width: Int) {
        if n >= 0 {
            if n <= 0x7f { return (UInt8(n), 0) }
            if n <= Int64(UInt8.max) { return (MessagePackFormat.uint8, 1) }
            if n <= Int64(UInt16.max) { return (MessagePackFormat.uint16, 2) }
            if n <= Int64(UInt32.max) { return (MessagePackFormat.uint32, 4) }
            return (MessagePackFormat.uint64, 8)
        }
        if n >= -32 { return (UInt8(bitPattern: Int8(n)), 0) }
        if n >= Int64(Int8.min) { return (MessagePackFormat.int8, 1) }
        if n >= Int64(Int16.min) { return (MessagePackFormat.int16, 2) }
        if n >= Int64(Int32.min) { return (MessagePackFormat.int32, 4) }
        return (MessagePackFormat.int64, 8)
    }

    /// The smallest str header for `n` bytes (spec, "str format family"): its first byte, and the width of the
    /// big-endian length after it (none for a fixstr, up to 31 bytes).
    public static func strHead(_ n: Int) -> (first: UInt8, width: Int) {
        if n <= 31 { return (0xa0 | UInt8(n), 0) }
        if n <= Int(UInt8.max) { return (MessagePackFormat.str8, 1) }
        if n <= Int(UInt16.max) { return (MessagePackFormat.str16, 2) }
        return (MessagePackFormat.str32, 4)
    }

    /// The low `width` bytes of `v` (0, 1, 2, 4 or 8), most significant first.
    @inline(__always)
    mutating func bigEndian(low v: UInt64, _ width: Int) {
        switch width {
        case 0: break
        case 1: bytes.append(UInt8(truncatingIfNeeded: v))
        case 2: bigEndian(UInt16(truncatingIfNeeded: v))
        case 4: bigEndian(UInt32(truncatingIfNeeded: v))
        default: bigEndian(v)
        }
    }

    public mutating func write(_ i: Int64) {
        let (first, width) = Self.intHead(i)
        bytes.append(first)
        bigEndian(low: UInt64(bitPattern: i), width)
    }

    public mutating func write(unsigned u: UInt64) {
        guard u > UInt64(Int64.max) else { return write(Int64(u)) }
        bytes.append(MessagePackFormat.uint64)
        bigEndian(u)
    }

    public mutating func write(_ d: Double) {
        bytes.append(MessagePackFormat.float64)
        bigEndian(d.bitPattern)
    }

    public mutating func write(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            writeStringHeader(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func writeStringHeader(_ n: Int) {
        let (first, width) = Self.strHead(n)
        bytes.append(first)
        bigEndian(low: UInt64(n), width)
    }

    public mutating func writeBinaryHeader(_ n: Int) {
        if n <= Int(UInt8.max) {
            bytes.append(MessagePackFormat.bin8)
            bytes.append(UInt8(n))
        } else if n <= Int(UInt16.max) {
            bytes.append(MessagePackFormat.bin16)
            bigEndian(UInt16(n))
        } else {
            bytes.append(MessagePackFormat.bin32)
            bigEndian(UInt32(n))
        }
    }

    public mutating func write<C: Collection>(binary b: C) where C.Element == UInt8 {
        writeBinaryHeader(b.count)
        bytes.append(contentsOf: b)
    }

    public mutating func writeArrayHeader(_ n: Int) {
        if n <= 15 {
            bytes.append(0x90 | UInt8(n))
        } else if n <= Int(UInt16.max) {
            bytes.append(MessagePackFormat.array16)
            bigEndian(UInt16(n))
        } else {
            bytes.append(MessagePackFormat.array32)
            bigEndian(UInt32(n))
        }
    }

    public mutating func writeMapHeader(_ n: Int) {
        if n <= 15 {
            bytes.append(0x80 | UInt8(n))
        } else if n <= Int(UInt16.max) {
            bytes.append(MessagePackFormat.map16)
            bigEndian(UInt16(n))
        } else {
            bytes.append(MessagePackFormat.map32)
            bigEndian(UInt32(n))
        }
    }

    public mutating func writeExt(type: Int8, data: [UInt8]) {
        switch data.count {
        case 1: bytes.append(MessagePackFormat.fixext1)
        case 2: bytes.append(MessagePackFormat.fixext2)
        case 4: bytes.append(MessagePackFormat.fixext4)
        case 8: bytes.append(MessagePackFormat.fixext8)
        case 16: bytes.append(MessagePackFormat.fixext16)
        case 0...Int(UInt8.max):
            bytes.append(MessagePackFormat.ext8)
            bytes.append(UInt8(data.count))
        case 0...Int(UInt16.max):
            bytes.append(MessagePackFormat.ext16)
            bigEndian(UInt16(data.count))
        default:
            bytes.append(MessagePackFormat.ext32)
            bigEndian(UInt32(data.count))
        }
        bytes.append(UInt8(bitPattern: type))
        bytes.append(contentsOf: data)
    }

    public mutating func write(_ v: MessagePackValue) {
        switch v {
        case .null: writeNil()
        case .bool(let b): write(b)
        case .int(let i): write(i)
        case .uint(let u): write(unsigned: u)
        case .float(let d): write(d)
        case .string(let s): write(s)
        case .binary(let b): write(binary: b)
        case .array(let a):
            writeArrayHeader(a.count)
            for e in a { write(e) }
        case .map(let m):
            writeMapHeader(m.count)
            for p in m {
                write(p.key)
                write(p.value)
            }
        case .ext(let type, let data): writeExt(type: type, data: data)
        }
    }

    /// An OTLP `AnyValue` as its natural msgpack value (kvlist → map, empty → nil).
    public mutating func write(_ v: AnyValue) {
        switch v {
        case .string(let s): write(s)
        case .bool(let b): write(b)
        case .int(let i): write(i)
        case .double(let d): write(d)
        case .bytes(let b): write(binary: b)
        case .array(let a):
            writeArrayHeader(a.count)
            for e in a { write(e) }
        case .kvlist(let kv):
            writeMapHeader(kv.count)
            for e in kv {
                write(e.key)
                write(e.value)
            }
        case .empty: writeNil()
        }
    }
}

extension MessagePack {
    public static func encode(_ v: MessagePackValue) -> [UInt8] {
        var w = MessagePackWriter()
        w.write(v)
        return w.bytes
    }
}
