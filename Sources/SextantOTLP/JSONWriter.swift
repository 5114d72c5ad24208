import SextantModel

/// Writes compact JSON (no whitespace) for the OTLP JSON encoding. Members are written in the
/// order the encoder calls them — field-number order — so output is deterministic. Field helpers
/// omit proto3 defaults, as the proto3 JSON mapping does.
struct JSONWriter {
    var out: [UInt8] = []
    private var needsComma = false

    init(capacity: Int) { out.reserveCapacity(capacity) }

    // MARK: Structure

    mutating func beginObject() {
        out.append(UInt8(ascii: "{"))
        needsComma = false
    }

    mutating func endObject() {
        out.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func beginArray() {
        out.append(UInt8(ascii: "["))
        needsComma = false
    }

    mutating func endArray() {
        out.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes `"name":` (preceded by a comma when needed).
    mutating func key(_ name: StaticString) {
        if needsComma { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// Starts an array element.
    mutating func element() {
        if needsComma { out.append(UInt8(ascii: ",")) }
        needsComma = false
    }

    // MARK: Values

    mutating func string(_ s: String) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escaping: copy them in one go.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: s.utf8)
            out.append(UInt8(ascii: "\""))
            needsComma = true
            return
        }
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(c)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(c)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0..<0x20:
                // Other control characters as \u00xx, lower-case hex like Python's json module.
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hexDigit(c >> 4))
                out.append(hexDigit(c & 0xF))
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
        needsComma = true
    }

    private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? v + 0x30 : v - 10 + UInt8(ascii: "a") }

    /// A 64-bit integer as a decimal string.
    mutating func quoted<I: BinaryInteger>(_ v: I) {
        out.append(UInt8(ascii: "\""))
        number(v)
        out.append(UInt8(ascii: "\""))
    }

    mutating func number<I: BinaryInteger>(_ v: I) {
        if v < 0 {
            out.append(UInt8(ascii: "-"))
            appendDigits(UInt64(v.magnitude))
        } else {
            appendDigits(UInt64(v))
        }
        needsComma = true
    }

    /// Decimal digits without going through a `String`.
    private mutating func appendDigits(_ v: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - n] = UInt8(truncatingIfNeeded: x % 10) + UInt8(ascii: "0")
                x /= 10
                n += 1
            } while x != 0
            out.append(contentsOf: buffer[(24 - n)...])
        }
    }

    /// A double as the shortest text that round-trips; non-finite values as the mapping's strings.
    mutating func double(_ d: Double) {
        if d.isNaN {
            raw("\"NaN\"")
        } else if d.isInfinite {
            raw(d < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        } else {
            out.append(contentsOf: d.description.utf8)
        }
        needsComma = true
    }

    mutating func bool(_ b: Bool) {
        raw(b ? "true" : "false")
        needsComma = true
    }

    mutating func raw(_ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func traceID(_ id: TraceID) {
        out.append(UInt8(ascii: "\""))
        Hex.append(id.high, to: &out)
        Hex.append(id.low, to: &out)
        out.append(UInt8(ascii: "\""))
        needsComma = true
    }

    mutating func spanID(_ id: SpanID) {
        out.append(UInt8(ascii: "\""))
        Hex.append(id.value, to: &out)
        out.append(UInt8(ascii: "\""))
        needsComma = true
    }

    // MARK: Fields with proto3 default omission

    mutating func stringField(_ name: StaticString, _ s: String) {
        guard !s.isEmpty else { return }
        key(name)
        string(s)
    }

    /// `uint64`/`fixed64`: a decimal string.
    mutating func uint64Field(_ name: StaticString, _ v: UInt64) {
        guard v != 0 else { return }
        key(name)
        quoted(v)
    }

    /// `uint32`/`int32`/`fixed32`/enums: a number.
    mutating func int32Field<I: BinaryInteger>(_ name: StaticString, _ v: I) {
        guard v != 0 else { return }
        key(name)
        number(v)
    }

    mutating func doubleField(_ name: StaticString, _ v: Double) {
        guard v.bitPattern != 0 else { return }
        key(name)
        double(v)
    }

    /// A double with explicit presence (`optional`): written whenever set.
    mutating func presentDoubleField(_ name: StaticString, _ v: Double?) {
        guard let v else { return }
        key(name)
        double(v)
    }

    mutating func boolField(_ name: StaticString, _ v: Bool) {
        guard v else { return }
        key(name)
        bool(v)
    }
}
