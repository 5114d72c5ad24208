import SextantModel

/// Appends JSON text to a byte buffer the way Go's `encoding/json` writes it (jaeger-query is a Go
/// program, and clients were written against its output): `<`, `>`, `&`, U+2028 and U+2029 escaped,
/// floats in Go's shortest format, bytes as base64. Callers write the punctuation themselves.
struct JSONWriter {
    var bytes: [UInt8] = []

    var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func int(_ v: Int) { raw(String(v)) }
    mutating func int64(_ v: Int64) { raw(String(v)) }
    mutating func uint64(_ v: UInt64) { raw(String(v)) }
    mutating func bool(_ v: Bool) { raw(v ? "true" : "false") }

    /// Go's float encoding; NaN and infinities, which JSON cannot hold, become strings.
    mutating func double(_ v: Double) {
        if v.isFinite { raw(Self.goFloat(v)) } else { string(Self.goFloat(v)) }
    }

    /// `"key":`, after a comma unless it is the object's first member.
    mutating func key(_ k: StaticString) {
        if let last = bytes.last, last != UInt8(ascii: "{") { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        raw(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// `"key":"value"`, after a comma unless it is the object's first member.
    mutating func field(_ k: StaticString, _ value: String) {
        key(k)
        string(value)
    }

    /// A JSON array of `items`, each written by `element`.
    mutating func array<C: Collection>(_ items: C, _ element: (inout JSONWriter, C.Element) -> Void) {
        raw("[")
        for (i, item) in items.enumerated() {
            if i > 0 { raw(",") }
            element(&self, item)
        }
        raw("]")
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var utf8 = s.utf8.makeIterator()
        while let b = utf8.next() {
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"): unicodeEscape(UInt32(b))
            case 0xE2:
                // U+2028 and U+2029 (E2 80 A8/A9) break JavaScript string literals; Go escapes them.
                guard let b1 = utf8.next() else { bytes.append(b); break }
                guard let b2 = utf8.next() else { bytes.append(contentsOf: [b, b1]); break }
                if b1 == 0x80 && (b2 == 0xA8 || b2 == 0xA9) {
                    unicodeEscape(b2 == 0xA8 ? 0x2028 : 0x2029)
                } else {
                    bytes.append(contentsOf: [b, b1, b2])
                }
            default:
                if b < 0x20 { unicodeEscape(UInt32(b)) } else { bytes.append(b) }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func unicodeEscape(_ v: UInt32) {
        raw("\\u")
        for shift in stride(from: 12, through: 0, by: -4) {
            bytes.append(Self.hexDigits[Int((v >> UInt32(shift)) & 0xF)])
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// An attribute value as JSON, as pdata's `AsString` renders arrays and maps: map keys sorted
    /// (a Go map; the last value of a repeated key wins), bytes as base64, an empty value as null.
    mutating func anyValue(_ value: AnyValue) {
        switch value {
        case .string(let s): string(s)
        case .bool(let b): bool(b)
        case .int(let i): int64(i)
        case .double(let d): double(d)
        case .bytes(let b): string(Base64.encode(b))
        case .empty: raw("null")
        case .array(let items):
            array(items) { w, item in w.anyValue(item) }
        case .kvlist(let kvs):
            var byKey: [String: AnyValue] = [:]
            for kv in kvs { byKey[kv.key] = kv.value }
            raw("{")
            for (i, k) in byKey.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { raw(",") }
                string(k)
                raw(":")
                anyValue(byKey[k]!)
            }
            raw("}")
        }
    }

    /// Go's `encoding/json` float text: shortest round-trip digits, fixed notation for
    /// 1e-6 ≤ |x| < 1e21, otherwise exponent notation (`1e-7`, `1e+21`). Non-finite values give
    /// `NaN`, `+Inf`, `-Inf` (Go's `strconv` spelling).
    static func goFloat(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Inf" : "+Inf" }
        let magnitude = abs(d)
        let text = "\(d)"  // shortest round-trip digits: "2.5", "1e-07", "1.5e+21", "5e-324"
        if magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21) {
            // Go writes at least two exponent digits, then its JSON encoder trims "e-07" to "e-7".
            var (mantissa, exponent) = splitExponent(text)
            if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
            let sign = exponent < 0 ? "-" : "+"
            return mantissa + "e" + sign + String(abs(exponent))
        }
        return fixed(text)
    }

    private static func splitExponent(_ text: String) -> (String, Int) {
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return (text, 0) }
        return (String(text[..<e]), Int(text[text.index(after: e)...]) ?? 0)
    }

    /// Rewrites Swift's shortest digits in fixed notation without a trailing ".0".
    private static func fixed(_ text: String) -> String {
        let (mantissaText, exponent) = splitExponent(text)
        if exponent == 0 {
            return mantissaText.hasSuffix(".0") ? String(mantissaText.dropLast(2)) : mantissaText
        }
        let negative = mantissaText.hasPrefix("-")
        let mantissa = negative ? String(mantissaText.dropFirst()) : mantissaText
        var digits = mantissa.filter { $0 != "." }
        let pointAt = (mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) } ?? mantissa.count) + exponent
        var result: String
        if pointAt <= 0 {
            result = "0." + String(repeating: "0", count: -pointAt) + digits
        } else if pointAt >= digits.count {
            digits += String(repeating: "0", count: pointAt - digits.count)
            result = digits
        } else {
            result = String(digits.prefix(pointAt)) + "." + String(digits.dropFirst(pointAt))
        }
        if result.contains(".") {
            while result.hasSuffix("0") { result.removeLast() }
            if result.hasSuffix(".") { result.removeLast() }
        }
        return (negative ? "-" : "") + result
    }
}
