import SextantModel

/// Text ↔ bytes for endpoint addresses: zipkin.proto carries `ipv4`/`ipv6` as 4 and 16 raw bytes,
/// JSON and OpenTelemetry attributes as text.
enum IPAddress {
    /// Dotted-quad IPv4 (RFC 791 text form, no leading zeros beyond a single `0`), or `nil`.
    static func parseIPv4(_ text: some StringProtocol) -> [UInt8]? {
        parseIPv4Value(text).map { v in [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    }

    /// ``parseIPv4(_:)`` as one big-endian number, without allocating.
    static func parseIPv4Value(_ text: some StringProtocol) -> UInt32? {
        var out: UInt32 = 0
        var parts = 0
        var value: UInt32 = 0
        var digits = 0
        for c in text.utf8 {
            if c == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                out = out << 8 | value
                parts += 1
                value = 0
                digits = 0
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                // "01" is ambiguous (octal in some parsers), so it is rejected as Go and Python do.
                if digits == 1 && value == 0 { return nil }
                value = value * 10 + UInt32(c - UInt8(ascii: "0"))
                digits += 1
                guard value <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return out << 8 | value
    }

    /// IPv6 text (RFC 4291 §2.2: hex groups, one `::`, optional dotted IPv4 tail), or `nil`.
    static func parseIPv6(_ text: some StringProtocol) -> [UInt8]? {
        let s = Array(text.utf8)
        guard s.count >= 2 else { return nil }
        var groups: [UInt16] = []
        var gapAt: Int?
        var i = 0
        if s[0] == UInt8(ascii: ":") {
            guard s[1] == UInt8(ascii: ":") else { return nil }
            gapAt = 0
            i = 2
        }
        while i < s.count {
            // An IPv4 tail takes the last 32 bits.
            if let dot = s[i...].firstIndex(of: UInt8(ascii: ".")), !s[i..<dot].contains(UInt8(ascii: ":")) {
                guard let v4 = parseIPv4(String(decoding: s[i...], as: UTF8.self)) else { return nil }
                groups.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                groups.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                i = s.count
                break
            }
            var value: UInt16 = 0
            var n = 0
            while i < s.count, let d = Hex.value(of: s[i]) {
                guard n < 4 else { return nil }
                value = value << 4 | UInt16(d)
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
            groups.append(value)
            if i == s.count { break }
            guard s[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i < s.count && s[i] == UInt8(ascii: ":") {
                guard gapAt == nil else { return nil }
                gapAt = groups.count
                i += 1
            } else if i == s.count {
                return nil  // trailing single ':'
            }
        }
        if let gapAt {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gapAt)
        }
        guard groups.count == 8 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(16)
        for g in groups {
            out.append(UInt8(g >> 8))
            out.append(UInt8(g & 0xFF))
        }
        return out
    }

    static func formatIPv4(_ b: some Collection<UInt8>) -> String {
        b.map { String($0) }.joined(separator: ".")
    }

    /// RFC 5952 §4: lower-case, no leading zeros, the longest run (≥ 2) of zero groups as `::`
    /// (the first on a tie), and IPv4-mapped addresses with a dotted tail (§5).
    static func formatIPv6(_ bytes: some Collection<UInt8>) -> String {
        let b = Array(bytes)
        var groups = [UInt16]()
        for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(b[i]) << 8 | UInt16(b[i + 1])) }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xFFFF {
            return "::ffff:" + formatIPv4(b[12..<16])
        }
        var bestStart = -1
        var bestLength = 1
        var i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength {
                    bestStart = i
                    bestLength = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ g: ArraySlice<UInt16>) -> String { g.map { String($0, radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(groups[...]) }
        return hex(groups[0..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
    }
}
