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
        guard let id = hex.withUTF8Buffer({ $0.count == 32 ? Hex.parseID($0) : nil }) else { return nil }
        self.init(high: id.high, low: id.low)
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
        guard let id = hex.withUTF8Buffer({ $0.count == 16 ? Hex.parseID($0) : nil }) else { return nil }
        self.init(id.low)
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

extension StringProtocol {
    /// Calls `body` with the text's UTF-8, in place when its storage allows (native strings), else from a copy.
    @inlinable
    public func withUTF8Buffer<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(utf8).withUnsafeBufferPointer(body)
    }
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

    /// A 64- or 128-bit ID from exactly 16 or 32 hex digits (either case): the high and low 64 bits,
    /// the high ones 0 for 16 digits; `nil` for another length or a byte that is not a digit.
    @inlinable
    public static func parseID(_ digits: UnsafeBufferPointer<UInt8>) -> (high: UInt64, low: UInt64)? {
        let n = digits.count
        guard n == 16 || n == 32, let p = digits.baseAddress, let low = parse16(p + (n - 16)) else { return nil }
        if n == 16 { return (0, low) }
        guard let high = parse16(p) else { return nil }
        return (high, low)
    }

    /// Parses exactly 16 hex digits (either case) at `p`; `nil` if any byte is not one.
    /// Eight digits at a time: each byte is checked and mapped to its nibble in parallel, then the
    /// nibbles are packed (a branch-free form of the ``value(of:)`` loop, which IDs in JSON need
    /// three times per span).
    @inlinable
    public static func parse16(_ p: UnsafeRawPointer) -> UInt64? {
        guard let high = parse8(UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))),
            let low = parse8(UInt64(littleEndian: (p + 8).loadUnaligned(as: UInt64.self)))
        else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// Eight ASCII hex digits, the first in the lowest byte of `w`, as a number; `nil` if any is not one.
    @inlinable @inline(__always)
    static func parse8(_ w: UInt64) -> UInt32? {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        // Per byte, with no carry between bytes once all are below 0x80: x + 0x50 has bit 7 set iff
        // x >= '0', x + 0x46 iff x > '9'; for y = x | 0x20, y + 0x1F iff y >= 'a', y + 0x19 iff y > 'f'.
        let y = w | (ones &* 0x20)
        let digit = (w &+ ones &* 0x50) & ~(w &+ ones &* 0x46)
        let letter = (y &+ ones &* 0x1F) & ~(y &+ ones &* 0x19)
        guard w & high == 0, (digit | letter) & high == high else { return nil }
        // '0'–'9' → low nibble; 'a'–'f'/'A'–'F' → low nibble (1–6) + 9.
        var t = (w & (ones &* 0x0F)) &+ ((w >> 6) & ones) &* 9
        // Pack: byte i holds digit i (most significant first).
        t = ((t << 4) | (t >> 8)) & 0x00FF_00FF_00FF_00FF
        t = ((t << 8) | (t >> 16)) & 0x0000_FFFF_0000_FFFF
        t = ((t << 16) | (t >> 32)) & 0x0000_0000_FFFF_FFFF
        return UInt32(truncatingIfNeeded: t)
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
    /// Eight digits per 64-bit word (`digits8`), two stores: IDs are written several times per traced request.
    @inlinable
    public static func write(_ v: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        precondition(offset >= 0 && offset + 16 <= buffer.count)
        write(v, to: UnsafeMutableRawPointer(buffer.baseAddress! + offset))
    }

    /// Writes sixteen lower-case hex digits of `v` at `p` (which must have room).
    @inlinable
    public static func write(_ v: UInt64, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: digits8(UInt32(truncatingIfNeeded: v >> 32)), as: UInt64.self)
        p.storeBytes(of: digits8(UInt32(truncatingIfNeeded: v)), toByteOffset: 8, as: UInt64.self)
    }

    /// The eight lower-case hex digits of `v` as a word that, stored, puts the most significant digit first.
    @inlinable @inline(__always)
    public static func digits8(_ v: UInt32) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        // Spread the nibbles one per byte: byte i holds nibble i, counted from the least significant.
        var t = UInt64(v)
        t = (t | t << 16) & 0x0000_FFFF_0000_FFFF
        t = (t | t << 8) & 0x00FF_00FF_00FF_00FF
        t = (t | t << 4) & 0x0F0F_0F0F_0F0F_0F0F
        // Per byte n (0–15, so nothing carries between bytes): '0' + n, plus 39 more ('a' - '0' - 10) when
        // n >= 10, which is when n + 6 sets bit 4.
        let letters = ((t &+ ones &* 6) >> 4) & ones
        let ascii = t &+ ones &* 0x30 &+ letters &* 39
        // Nibble 7 (the most significant byte) is the first digit: stored big-endian, it goes to the lowest address.
        return ascii.bigEndian
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
