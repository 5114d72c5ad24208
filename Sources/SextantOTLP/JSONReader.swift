import SextantModel

/// A pull parser for JSON text (RFC 8259) that decoders drive field by field, without building a
/// document tree. Strings must be valid UTF-8; numbers are kept as their source text so that 64-bit
/// integers keep full precision. Every error names the byte offset.
public struct JSONReader {
    let base: UnsafePointer<UInt8>
    let count: Int
    public var pos = 0
    var depth = 0
    /// Bounds objects and arrays nested in each other; deep enough for `AnyValue`s nested to
    /// `OTLPProtobuf.maxAnyValueDepth` (three JSON levels each) inside a request.
    static let maxDepth = 256

    /// Strings already made from this input, when the reader shares them (``init(_:sharingStrings:)``).
    let strings: RequestStrings?

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.init(bytes, sharingStrings: false)
    }

    /// A reader that makes each distinct unescaped string value once and shares it (``RequestStrings``):
    /// for a request of many similar items, such as spans whose tags repeat.
    public init(_ bytes: UnsafeRawBufferPointer, sharingStrings: Bool) {
        base = (bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!).assumingMemoryBound(to: UInt8.self)
        count = bytes.count
        strings = sharingStrings ? RequestStrings() : nil
    }

    public func error(_ message: String, at offset: Int? = nil) -> OTLPDecodingError {
        OTLPDecodingError("invalid JSON at offset \(offset ?? pos): \(message)")
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < count {
            switch base[pos] {
            case 0x20, 0x0A, 0x0D, 0x09: pos += 1
            default: return
            }
        }
    }

    @inline(__always)
    public mutating func peek() -> UInt8? {
        skipWhitespace()
        return pos < count ? base[pos] : nil
    }

    private func describe(_ byte: UInt8?) -> String {
        guard let byte else { return "end of input" }
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    /// Requires that only whitespace follows the top-level value.
    public mutating func finish() throws(OTLPDecodingError) {
        if let b = peek() { throw error("unexpected \(describe(b)) after the top-level value") }
    }

    // MARK: Objects and arrays

    /// State of one object or array being read.
    public struct Container {
        var first = true
    }

    public mutating func beginObject() throws(OTLPDecodingError) -> Container {
        guard peek() == UInt8(ascii: "{") else { throw error("expected an object, found \(describe(peek()))") }
        try enter()
        return Container()
    }

    /// The next member's key (with its ':' consumed), or `nil` after the closing brace.
    public mutating func nextKey(_ object: inout Container) throws(OTLPDecodingError) -> JSONKey? {
        var b = peek()
        if b == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return nil
        }
        if !object.first {
            guard b == UInt8(ascii: ",") else { throw error("expected ',' or '}' in object, found \(describe(b))") }
            pos += 1
            b = peek()
        }
        object.first = false
        guard b == UInt8(ascii: "\"") else { throw error("expected a string key, found \(describe(b))") }
        let key = try readKey()
        guard peek() == UInt8(ascii: ":") else { throw error("expected ':' after object key, found \(describe(peek()))") }
        pos += 1
        return key
    }

    public mutating func beginArray() throws(OTLPDecodingError) -> Container {
        guard peek() == UInt8(ascii: "[") else { throw error("expected an array, found \(describe(peek()))") }
        try enter()
        return Container()
    }

    /// Whether another element follows (positioned at it), `false` after the closing bracket.
    public mutating func nextElement(_ array: inout Container) throws(OTLPDecodingError) -> Bool {
        let b = peek()
        if b == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return false
        }
        if !array.first {
            guard b == UInt8(ascii: ",") else { throw error("expected ',' or ']' in array, found \(describe(b))") }
            pos += 1
        }
        array.first = false
        return true
    }

    private mutating func enter() throws(OTLPDecodingError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        pos += 1
    }

    /// Consumes `null` if it is next (a null field means "default" in the proto3 JSON mapping).
    public mutating func consumeNull() throws(OTLPDecodingError) -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws(OTLPDecodingError) {
        let n = word.utf8CodeUnitCount
        let start = pos
        guard count - pos >= n else { throw error("invalid literal", at: start) }
        let w = word.utf8Start
        for i in 0..<n where base[pos + i] != w[i] { throw error("invalid literal", at: start) }
        pos += n
    }

    // MARK: Strings

    private mutating func readKey() throws(OTLPDecodingError) -> JSONKey {
        pos += 1
        let start = pos
        let (end, escaped, ascii) = try scanString(from: start)
        if escaped {
            pos = start - 1
            let s = try readString()
            return JSONKey(start: base, count: 0, unescaped: s)
        }
        let key = JSONKey(start: base + start, count: end - start, unescaped: nil)
        pos = end + 1
        // Keys are only compared with ASCII names, but must still be valid text.
        guard ascii || UTF8Text.isValid(UnsafeBufferPointer(start: key.start, count: key.count)) else {
            throw error("invalid UTF-8 in string", at: start)
        }
        return key
    }

    /// Finds the closing quote of the string whose body starts at `start`, or the first escape
    /// before it: its index, which of the two it is, and whether the body up to there is all ASCII.
    /// Throws for a control character or a missing quote.
    @inline(__always)
    private mutating func scanString(from start: Int) throws(OTLPDecodingError) -> (end: Int, escaped: Bool, ascii: Bool) {
        var i = start
        var ascii = true
        while true {
            i = JSONByteScan.next(base, from: i, count: count, also: .nonASCII)
            guard i < count else { throw error("unterminated string", at: start - 1) }
            let c = base[i]
            if c == UInt8(ascii: "\"") { return (i, false, ascii) }
            if c == UInt8(ascii: "\\") { return (i, true, ascii) }
            if c < 0x20 {
                pos = i
                throw error("unescaped control character in string")
            }
            ascii = false
            i += 1
        }
    }

    /// Reads a string value without making a `String` of it: its raw bytes when it has no escapes
    /// (still checked to be UTF-8), else its unescaped text. For values compared or parsed in place.
    public mutating func readStringToken() throws(OTLPDecodingError) -> JSONKey {
        guard peek() == UInt8(ascii: "\"") else { throw error("expected a string, found \(describe(peek()))") }
        return try readKey()
    }

    /// The text of `key`, a key or string token this reader returned (already checked as UTF-8), made
    /// once per distinct text when the reader shares strings.
    public func text(of key: JSONKey) -> String {
        if let unescaped = key.unescaped { return unescaped }
        let raw = UnsafeRawBufferPointer(start: key.start, count: key.count)
        if let strings {
            return strings.string(raw) { String(decoding: $0, as: UTF8.self) }
        }
        return String(decoding: raw, as: UTF8.self)
    }

    /// Reads a string value, resolving escapes (RFC 8259 §7) including surrogate pairs.
    public mutating func readString() throws(OTLPDecodingError) -> String {
        guard peek() == UInt8(ascii: "\"") else { throw error("expected a string, found \(describe(peek()))") }
        pos += 1
        let start = pos
        let (end, escaped, ascii) = try scanString(from: start)
        if escaped {
            pos = end
            return try readEscapedString(from: start)
        }
        let raw = UnsafeBufferPointer(start: base + start, count: end - start)
        pos = end + 1
        if let strings {
            return try strings.string(UnsafeRawBufferPointer(raw)) { _ throws(OTLPDecodingError) in
                try makeString(raw, ascii: ascii, at: start)
            }
        }
        return try makeString(raw, ascii: ascii, at: start)
    }

    @inline(__always)
    private func makeString(_ raw: UnsafeBufferPointer<UInt8>, ascii: Bool, at start: Int) throws(OTLPDecodingError) -> String {
        guard ascii || UTF8Text.isValid(raw) else { throw error("invalid UTF-8 in string", at: start) }
        return String(decoding: raw, as: UTF8.self)
    }

    private mutating func readEscapedString(from start: Int) throws(OTLPDecodingError) -> String {
        var out = [UInt8]()
        out.reserveCapacity(pos - start + 16)
        out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: pos - start))
        while pos < count {
            let c = base[pos]
            switch c {
            case UInt8(ascii: "\""):
                pos += 1
                guard let s = out.withUnsafeBytes({ UTF8Text.string($0) }) else {
                    throw error("invalid UTF-8 in string", at: start)
                }
                return s
            case UInt8(ascii: "\\"):
                let escapeStart = pos
                pos += 1
                guard pos < count else { break }
                let e = base[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try readHex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // A high surrogate must be followed by an escaped low surrogate.
                        guard count - pos >= 6, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                            throw error("unpaired surrogate in \\u escape", at: escapeStart)
                        }
                        pos += 2
                        let low = try readHex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw error("unpaired surrogate in \\u escape", at: escapeStart) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw error("unpaired surrogate in \\u escape", at: escapeStart)
                    }
                    appendUTF8(scalar, to: &out)
                default:
                    throw error("invalid escape sequence", at: escapeStart)
                }
            default:
                if c < 0x20 { throw error("unescaped control character in string") }
                out.append(c)
                pos += 1
            }
        }
        throw error("unterminated string", at: start - 1)
    }

    private mutating func readHex4() throws(OTLPDecodingError) -> UInt32 {
        guard count - pos >= 4 else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let d = Hex.value(of: base[pos]) else { throw error("invalid hex digit in \\u escape") }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    // MARK: Numbers and literals

    /// A number token's text, validated against the RFC 8259 §6 grammar.
    public struct NumberToken {
        public var start: UnsafePointer<UInt8>
        public var count: Int
        /// No fraction or exponent.
        public var isInteger: Bool
    }

    public mutating func readNumberToken() throws(OTLPDecodingError) -> NumberToken {
        skipWhitespace()
        let start = pos
        guard let token = Self.scanNumber(base + pos, count - pos) else {
            throw error("expected a number, found \(describe(pos < count ? base[pos] : nil))")
        }
        pos = start + token.count
        return token
    }

    /// Scans the longest valid number at `p`; `nil` when there is none.
    static func scanNumber(_ p: UnsafePointer<UInt8>, _ n: Int) -> NumberToken? {
        var i = 0
        var isInteger = true
        @inline(__always) func digit(_ i: Int) -> Bool { i < n && p[i] >= 0x30 && p[i] <= 0x39 }
        if i < n && p[i] == UInt8(ascii: "-") { i += 1 }
        guard digit(i) else { return nil }
        if p[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while digit(i) { i += 1 }
        }
        if i < n && p[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            isInteger = false
            i += 1
            if i < n && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        return NumberToken(start: p, count: i, isInteger: isInteger)
    }

    public mutating func readBool() throws(OTLPDecodingError) -> Bool {
        switch peek() {
        case UInt8(ascii: "t"):
            try literal("true")
            return true
        case UInt8(ascii: "f"):
            try literal("false")
            return false
        default:
            throw error("expected true or false, found \(describe(peek()))")
        }
    }

    /// Skips any value, validating it (unknown fields must still be well-formed JSON).
    public mutating func skipValue() throws(OTLPDecodingError) {
        switch peek() {
        case UInt8(ascii: "{"):
            var object = try beginObject()
            while try nextKey(&object) != nil { try skipValue() }
        case UInt8(ascii: "["):
            var array = try beginArray()
            while try nextElement(&array) { try skipValue() }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try readBool()
        case UInt8(ascii: "n"):
            try literal("null")
        default:
            _ = try readNumberToken()
        }
    }

    private mutating func skipString() throws(OTLPDecodingError) {
        let start = pos + 1
        var p = start
        while p < count {
            let c = base[p]
            if c == UInt8(ascii: "\"") {
                guard UTF8Text.isValid(UnsafeBufferPointer(start: base + start, count: p - start)) else {
                    throw error("invalid UTF-8 in string", at: start)
                }
                pos = p + 1
                return
            }
            if c == UInt8(ascii: "\\") {
                _ = try readString()
                return
            }
            if c < 0x20 { throw error("unescaped control character in string", at: p) }
            p += 1
        }
        throw error("unterminated string", at: start - 1)
    }
}


/// An object key (or a string value read with `readStringToken`): a slice of the input when it has
/// no escapes, else its decoded text.
public struct JSONKey {
    public let start: UnsafePointer<UInt8>
    public let count: Int
    public let unescaped: String?

    /// The key's length in UTF-8 bytes, escapes resolved.
    public var length: Int { unescaped?.utf8.count ?? count }

    /// Whether the key is `name` or, when given, `alternative` (the snake_case proto field name;
    /// both spellings are accepted on decode). Inlinable, so decoders in other modules compare
    /// without a call per candidate name.
    @inlinable @inline(__always)
    public func `is`(_ name: StaticString, or alternative: StaticString? = nil) -> Bool {
        if matches(name) { return true }
        if let alternative { return matches(alternative) }
        return false
    }

    @inlinable @inline(__always)
    func matches(_ name: StaticString) -> Bool {
        if let unescaped {
            return unescaped.utf8.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        }
        let n = name.utf8CodeUnitCount
        guard n == count else { return false }
        let p = name.utf8Start
        for i in 0..<n where start[i] != p[i] { return false }
        return true
    }
}
