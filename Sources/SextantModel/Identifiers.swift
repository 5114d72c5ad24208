/// A 16-byte trace identifier (W3C Trace Context §3.2.2.3, OTLP `trace_id`).
///
/// Stored as two big-endian halves so that the Jaeger `traceIdHigh`/`traceIdLow` split and the
/// hex form are both cheap. The all-zero value is invalid per the W3C spec.
public struct TraceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The all-zero, invalid identifier.
    public static let zero = TraceID(high: 0, low: 0)

    public var isValid: Bool { high != 0 || low != 0 }

    /// Builds an ID from exactly 16 bytes; `nil` for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        var i = 0
        for b in bytes {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
            i += 1
        }
        self.init(high: h, low: l)
    }

    /// Parses 32 hex digits (either case); `nil` when the text is not exactly that.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 32, let h = Hex.parseUInt64(utf8[0..<16]), let l = Hex.parseUInt64(utf8[16..<32]) else {
            return nil
        }
        self.init(high: h, low: l)
    }

    /// The 16 bytes, big-endian.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        Hex.appendBigEndian(high, to: &out)
        Hex.appendBigEndian(low, to: &out)
        return out
    }

    /// 32 lower-case hex digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: 32) { out in
            Hex.write(high, into: out, at: 0)
            Hex.write(low, into: out, at: 16)
            return 32
        }
    }

    public var description: String { hex }

    public static func < (a: TraceID, b: TraceID) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

/// An 8-byte span identifier (W3C Trace Context `parent-id`, OTLP `span_id`).
public struct SpanID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    public static let zero = SpanID(0)

    public var isValid: Bool { value != 0 }

    /// Builds an ID from exactly 8 bytes; `nil` for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 8 else { return nil }
        var v: UInt64 = 0
        for b in bytes { v = v << 8 | UInt64(b) }
        self.init(v)
    }

    /// Parses 16 hex digits; `nil` otherwise.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 16, let v = Hex.parseUInt64(utf8[...]) else { return nil }
        self.init(v)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(8)
        Hex.appendBigEndian(value, to: &out)
        return out
    }

    /// 16 lower-case hex digits.
    public var hex: String { Hex.string(value) }

    public var description: String { hex }

    public static func < (a: SpanID, b: SpanID) -> Bool { a.value < b.value }
}

/// Hex helpers shared by the identifier types and the wire codecs.
public enum Hex {
    @usableFromInline static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The value of one ASCII hex digit, or `nil`. Two subtractions: setting bit 5 maps `A`–`F`
    /// (0x41–0x46) onto `a`–`f` and no other byte into that range.
    @inlinable @inline(__always)
    public static func value(of c: UInt8) -> UInt8? {
        let decimal = c &- UInt8(ascii: "0")
        if decimal < 10 { return decimal }
        let letter = (c | 0x20) &- UInt8(ascii: "a")
        return letter < 6 ? letter &+ 10 : nil
    }

    /// Parses up to 16 hex digits into a `UInt64`.
    public static func parseUInt64(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        var v: UInt64 = 0
        for c in digits {
            guard let d = value(of: c) else { return nil }
            v = v << 4 | UInt64(d)
        }
        return v
    }

    /// Sixteen zero-padded lower-case hex digits.
    public static func string(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            write(v, into: out, at: 0)
            return 16
        }
    }

    /// The lower-case ASCII hex digit for the low four bits of `nibble`.
    @inlinable
    public static func digit(_ nibble: UInt8) -> UInt8 {
        let n = nibble & 0xF
        return n < 10 ? UInt8(ascii: "0") &+ n : UInt8(ascii: "a") &+ (n &- 10)
    }

    /// Writes sixteen lower-case hex digits of `v` into `buffer` at `offset` (which must have room).
    @inlinable
    public static func write(_ v: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        var x = v
        for i in stride(from: offset + 15, through: offset, by: -1) {
            buffer[i] = digit(UInt8(truncatingIfNeeded: x))
            x >>= 4
        }
    }

    /// Appends sixteen hex digits of `v`.
    @inlinable
    public static func append(_ v: UInt64, to out: inout [UInt8]) {
        var shift = 60
        while shift >= 0 {
            out.append(digits[Int((v >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    /// Encodes arbitrary bytes as lower-case hex.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes an even-length hex string to bytes; `nil` on any invalid digit.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let a = value(of: u[i]), let b = value(of: u[i + 1]) else { return nil }
            out.append(a << 4 | b)
            i += 2
        }
        return out
    }

    @inlinable
    public static func appendBigEndian(_ v: UInt64, to out: inout [UInt8]) {
        var shift = 56
        while shift >= 0 {
            out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)))
            shift -= 8
        }
    }
}
