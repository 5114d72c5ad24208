import SextantModel

// Typed values under the proto3 JSON mapping as OTLP amends it (specification.md, "JSON Protobuf
// Encoding"): 64-bit integers as decimal strings or numbers, doubles as numbers or the strings
// "NaN"/"Infinity"/"-Infinity", enums as integers (names also accepted), IDs as hex, bytes as base64.
extension JSONReader {
    public mutating func readUInt64() throws(OTLPDecodingError) -> UInt64 {
        let start = pos
        let (negative, magnitude) = try readInteger()
        guard !negative || magnitude == 0 else { throw error("expected an unsigned integer", at: start) }
        return magnitude
    }

    mutating func readInt64() throws(OTLPDecodingError) -> Int64 {
        let start = pos
        let (negative, magnitude) = try readInteger()
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw error("integer out of range for int64", at: start) }
            return Int64(truncatingIfNeeded: 0 &- magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw error("integer out of range for int64", at: start) }
        return Int64(magnitude)
    }

    mutating func readUInt32() throws(OTLPDecodingError) -> UInt32 {
        let start = pos
        let v = try readUInt64()
        guard v <= UInt64(UInt32.max) else { throw error("integer out of range for uint32", at: start) }
        return UInt32(v)
    }

    mutating func readInt32() throws(OTLPDecodingError) -> Int32 {
        let start = pos
        let v = try readInt64()
        guard v >= Int64(Int32.min) && v <= Int64(Int32.max) else { throw error("integer out of range for int32", at: start) }
        return Int32(v)
    }

    /// An enum: its integer value, or its name looked up with `byName`.
    mutating func readEnum(_ byName: (String) -> Int32?) throws(OTLPDecodingError) -> Int32 {
        if peek() == UInt8(ascii: "\"") {
            let start = pos
            let name = try readString()
            if let v = byName(name) { return v }
            // Integers in strings are accepted like for any other integer field.
            if let v = Int32(name) { return v }
            throw error("unknown enum value \"\(name)\"", at: start)
        }
        return try readInt32()
    }

    /// A JSON number, or a string holding one (the proto3 JSON mapping accepts both for integers).
    private mutating func readInteger() throws(OTLPDecodingError) -> (negative: Bool, magnitude: UInt64) {
        guard peek() == UInt8(ascii: "\"") else {
            let start = pos
            let token = try readNumberToken()
            guard let v = Self.integer(token) else { throw error("expected an integer", at: start) }
            return v
        }
        let start = pos
        let (bodyStart, n) = try readPlainString()
        guard let token = Self.scanNumber(base + bodyStart, n), token.count == n, let v = Self.integer(token) else {
            throw error("expected an integer in string", at: start)
        }
        return v
    }

    /// The integer value of a number token; exponents and fractions are allowed if the value is
    /// integral. `nil` on overflow or a fractional value.
    static func integer(_ token: NumberToken) -> (negative: Bool, magnitude: UInt64)? {
        let p = token.start
        let negative = p[0] == UInt8(ascii: "-")
        if token.isInteger {
            var i = negative ? 1 : 0
            var v: UInt64 = 0
            while i < token.count {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (s, o2) = m.addingReportingOverflow(UInt64(p[i] &- 0x30))
                if o1 || o2 { return nil }
                v = s
                i += 1
            }
            return (negative, v)
        }
        guard let d = Double(String(decoding: UnsafeBufferPointer(start: p, count: token.count), as: UTF8.self)),
            d.magnitude < 18_446_744_073_709_551_616.0
        else { return nil }
        // Truncate, then check nothing was cut off (no libm rounding functions needed).
        let magnitude = UInt64(d.magnitude)
        guard Double(magnitude) == d.magnitude else { return nil }
        return (negative, magnitude)
    }

    mutating func readDouble() throws(OTLPDecodingError) -> Double {
        let start = pos
        if peek() == UInt8(ascii: "\"") {
            let s = try readString()
            switch s {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default:
                let n = s.utf8.count
                let parsed: Double? = s.utf8.withContiguousStorageIfAvailable { utf8 in
                    guard let token = Self.scanNumber(utf8.baseAddress!, n), token.count == n else { return nil }
                    return Self.double(token)
                } ?? nil
                guard let parsed, n > 0 else { throw error("expected a number in string", at: start) }
                return parsed
            }
        }
        let token = try readNumberToken()
        guard let d = Self.double(token) else { throw error("number out of range", at: start) }
        return d
    }

    static func double(_ token: NumberToken) -> Double? {
        // Integers of up to 15 digits convert exactly; everything else goes through the
        // correctly rounded standard-library parser.
        if token.isInteger && token.count <= 15 {
            let p = token.start
            let negative = p[0] == UInt8(ascii: "-")
            var i = negative ? 1 : 0
            var v: Int64 = 0
            while i < token.count {
                v = v * 10 + Int64(p[i] &- 0x30)
                i += 1
            }
            return Double(negative ? -v : v)
        }
        return Double(String(decoding: UnsafeBufferPointer(start: token.start, count: token.count), as: UTF8.self))
    }

    /// A `trace_id`/`span_id`: hex, either case (specification.md, "JSON Protobuf Encoding").
    mutating func readID() throws(OTLPDecodingError) -> WireID {
        guard peek() == UInt8(ascii: "\"") else { throw error("expected a hex string, found a non-string value") }
        let start = pos
        let (bodyStart, n) = try readPlainString()
        guard n % 2 == 0 else { throw error("hex ID has an odd number of digits (\(n))", at: start) }
        // 16 and 32 digits at word speed; anything else, or a bad digit (which the loop then names), below.
        if let id = Hex.parseID(UnsafeBufferPointer(start: base + bodyStart, count: n)) {
            return WireID(length: n / 2, high: id.high, low: id.low)
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<n {
            guard let d = Hex.value(of: base[bodyStart + i]) else { throw error("invalid hex digit in ID", at: bodyStart + i) }
            // Only 8- and 16-byte IDs are kept; other lengths are reported by the ID rules.
            high = high << 4 | low >> 60
            low = low << 4 | UInt64(d)
        }
        if n != 16 && n != 32 { return WireID(length: n / 2, high: 0, low: 0) }
        return WireID(length: n / 2, high: n == 32 ? high : 0, low: low)
    }

    /// The offset and length of a string's raw body, for values that must be plain ASCII (numbers,
    /// hex): escapes and other bytes are left for the caller's own check to reject.
    private mutating func readPlainString() throws(OTLPDecodingError) -> (start: Int, count: Int) {
        let start = pos
        pos += 1
        let bodyStart = pos
        while pos < count && base[pos] != UInt8(ascii: "\"") { pos += 1 }
        guard pos < count else { throw error("unterminated string", at: start) }
        let n = pos - bodyStart
        pos += 1
        return (bodyStart, n)
    }

    /// A `bytes` field: base64, standard or URL-safe (proto3 JSON mapping).
    mutating func readBase64() throws(OTLPDecodingError) -> [UInt8] {
        let start = pos
        let s = try readString()
        guard let bytes = Base64.decode(s) else { throw error("invalid base64", at: start) }
        return bytes
    }
}
