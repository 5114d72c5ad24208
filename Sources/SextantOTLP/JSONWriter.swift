import SextantModel

/// Writes compact JSON (no whitespace) for the OTLP JSON encoding. Members are written in the
/// order the encoder calls them — field-number order — so output is deterministic. Field helpers
/// omit proto3 defaults, as the proto3 JSON mapping does.
///
/// This is a hot path (the `file` exporter encodes every item it writes), so the writer does
/// not append to an `[UInt8]`: it writes through a raw pointer, so each write is one capacity
/// check followed by plain stores or a single `memcpy`, with no per-append uniqueness check or
/// count bookkeeping, and nothing goes through an intermediate `String`.
///
/// ``document(estimatedSize:_:)`` points the writer straight at the storage of the result
/// array, sized from an estimate, so the common case allocates once and copies nothing. When the
/// estimate falls short the writer moves to a buffer of its own (``grow(_:)``) and the result is
/// copied out of that instead. One big allocation instead of several also matters beyond the
/// copy: batches of thousands of spans make multi-megabyte buffers, which the allocator maps fresh
/// and the kernel page-faults in — with a growing buffer plus a final copy this cost more than
/// the encoding itself. The type is `~Copyable` so an owned buffer has exactly one owner and is
/// freed in `deinit`.
public struct JSONWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int
    /// Whether `base` was allocated by this writer (after outgrowing the array's storage).
    private var owned = false
    private var needsComma = false

    private init(borrowing buffer: UnsafeMutableBufferPointer<UInt8>, capacity: Int) {
        base = buffer.baseAddress!
        self.capacity = capacity
    }

    deinit { if owned { base.deallocate() } }

    /// Runs `body` with a writer and returns what it wrote. `estimatedSize` need not be exact:
    /// more wastes only untouched capacity, less costs one extra copy.
    public static func document(estimatedSize: Int, _ body: (inout JSONWriter) -> Void) -> [UInt8] {
        // One spare byte so that appending a newline (JSON lines) does not reallocate.
        let capacity = max(estimatedSize, 64)
        var outgrown: [UInt8]?
        let direct = [UInt8](unsafeUninitializedCapacity: capacity + 1) { buffer, initialized in
            var w = JSONWriter(borrowing: buffer, capacity: capacity)
            body(&w)
            if w.owned {
                let (base, count) = (w.base, w.count)
                outgrown = [UInt8](unsafeUninitializedCapacity: count + 1) { buffer, initialized in
                    buffer.baseAddress!.initialize(from: base, count: count)
                    initialized = count
                }
                initialized = 0
            } else {
                initialized = w.count
            }
        }
        return outgrown ?? direct
    }

    // MARK: Buffer

    /// Makes room for `n` more bytes and returns where they go; the caller advances `count`.
    @inline(__always)
    private mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt8> {
        if capacity &- count < n { grow(n) }
        return base + count
    }

    /// Moves to a bigger buffer of our own; the array's storage (if still in use) is left alone.
    @inline(never)
    private mutating func grow(_ n: Int) {
        let newCapacity = max(capacity * 2, count + n)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.initialize(from: base, count: count)
        if owned { base.deallocate() }
        base = newBase
        capacity = newCapacity
        owned = true
    }

    @inline(__always)
    private mutating func byte(_ b: UInt8) {
        reserve(1).pointee = b
        count &+= 1
    }

    @inline(__always)
    private mutating func bytes(_ source: UnsafePointer<UInt8>, _ n: Int) {
        let target = reserve(n)
        count &+= n
        // Most copies are short (keys, attribute keys and values); a call into libc's memmove for
        // each showed up at ~10% of encoding. 8...16 bytes: two overlapping 8-byte moves.
        if n >= 8 && n <= 16 {
            let head = UnsafeRawPointer(source).loadUnaligned(as: UInt64.self)
            let tail = UnsafeRawPointer(source + (n &- 8)).loadUnaligned(as: UInt64.self)
            UnsafeMutableRawPointer(target).storeBytes(of: head, as: UInt64.self)
            UnsafeMutableRawPointer(target + (n &- 8)).storeBytes(of: tail, as: UInt64.self)
        } else if n < 8 {
            var i = 0
            while i < n {
                target[i] = source[i]
                i &+= 1
            }
        } else {
            target.initialize(from: source, count: n)
        }
    }

    private mutating func bytes(_ u: UnsafeBufferPointer<UInt8>) {
        if let p = u.baseAddress { bytes(p, u.count) }
    }

    // MARK: Structure

    public mutating func beginObject() {
        byte(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        byte(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        byte(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        byte(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes `"name":` (preceded by a comma when needed). Keys are plain ASCII literals, copied
    /// straight from the binary's string table.
    public mutating func key(_ name: StaticString) {
        let n = name.utf8CodeUnitCount
        var p = reserve(n &+ 4)
        if needsComma {
            p.pointee = UInt8(ascii: ",")
            p += 1
        }
        p.pointee = UInt8(ascii: "\"")
        (p + 1).initialize(from: name.utf8Start, count: n)
        p += n &+ 1
        p[0] = UInt8(ascii: "\"")
        p[1] = UInt8(ascii: ":")
        count = p + 2 - base
        needsComma = false
    }

    /// Starts an array element.
    public mutating func element() {
        if needsComma { byte(UInt8(ascii: ",")) }
        needsComma = false
    }

    // MARK: Strings

    public mutating func string(_ s: String) {
        // Native strings hand out their UTF-8 directly; anything else (e.g. bridged) is made native first.
        if s.utf8.withContiguousStorageIfAvailable({ string(utf8: $0) }) == nil {
            var copy = s
            copy.withUTF8 { string(utf8: $0) }
        }
        needsComma = true
    }

    /// A JSON string from valid UTF-8 (a `String`'s bytes): runs that need no escaping — usually
    /// the whole string — are copied with one `memcpy` each.
    private mutating func string(utf8 u: UnsafeBufferPointer<UInt8>) {
        byte(UInt8(ascii: "\""))
        if let start = u.baseAddress {
            let n = u.count
            var i = 0
            while true {
                // A run ends at a byte that may need escaping: a control character, `"`, `\`, or 0xE2.
                let j = JSONByteScan.next(start, from: i, count: n, also: .lineSeparatorLead)
                if j > i { bytes(start + i, j &- i) }
                if j == n { break }
                i = j &+ escape(start, at: j, count: n)
            }
        }
        byte(UInt8(ascii: "\""))
    }

    /// Writes the byte at `i` (one that `JSONByteScan.next` stopped at) escaped as needed; returns
    /// how many input bytes it consumed.
    private mutating func escape(_ p: UnsafePointer<UInt8>, at i: Int, count n: Int) -> Int {
        let c = p[i]
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): twoBytes(UInt8(ascii: "\\"), c)
        case 0x0A: twoBytes(UInt8(ascii: "\\"), UInt8(ascii: "n"))
        case 0x0D: twoBytes(UInt8(ascii: "\\"), UInt8(ascii: "r"))
        case 0x09: twoBytes(UInt8(ascii: "\\"), UInt8(ascii: "t"))
        case 0x08: twoBytes(UInt8(ascii: "\\"), UInt8(ascii: "b"))
        case 0x0C: twoBytes(UInt8(ascii: "\\"), UInt8(ascii: "f"))
        case 0..<0x20:
            // Other control characters as \u00xx, lower-case hex like Python's json module.
            unicodeEscape(UInt16(c))
        default:
            // 0xE2: U+2028 LINE SEPARATOR (E2 80 A8) and U+2029 PARAGRAPH SEPARATOR (E2 80 A9) are
            // valid in JSON strings, but line-oriented readers (Python's str.splitlines, some
            // editors) treat them as line breaks and would split a JSON-lines record, so escape them.
            if i &+ 2 < n && p[i &+ 1] == 0x80 && (p[i &+ 2] == 0xA8 || p[i &+ 2] == 0xA9) {
                unicodeEscape(0x2000 | UInt16(p[i &+ 2] &- 0xA8 &+ 0x28))
                return 3
            }
            byte(c)
        }
        return 1
    }

    @inline(__always)
    private mutating func twoBytes(_ a: UInt8, _ b: UInt8) {
        let p = reserve(2)
        p[0] = a
        p[1] = b
        count &+= 2
    }

    /// `\uXXXX` with lower-case hex digits.
    private mutating func unicodeEscape(_ v: UInt16) {
        let p = reserve(6)
        p[0] = UInt8(ascii: "\\")
        p[1] = UInt8(ascii: "u")
        for k in 0..<4 { p[2 &+ k] = Self.hexDigit(UInt64(v >> (12 - 4 * k))) }
        count &+= 6
    }

    /// A string known to need no escaping (base64 text, number renderings).
    private mutating func unescapedString(_ s: String) {
        byte(UInt8(ascii: "\""))
        raw(s)
        byte(UInt8(ascii: "\""))
    }

    /// Appends `s`'s UTF-8 as is.
    private mutating func raw(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ bytes($0) }) == nil {
            var copy = s
            copy.withUTF8 { bytes($0) }
        }
    }

    public mutating func raw(_ s: StaticString) {
        bytes(s.utf8Start, s.utf8CodeUnitCount)
    }

    // MARK: Numbers

    /// A 64-bit integer as a decimal string.
    mutating func quoted<I: BinaryInteger>(_ v: I) {
        byte(UInt8(ascii: "\""))
        number(v)
        byte(UInt8(ascii: "\""))
    }

    /// The common cases without generic dispatch: callers in other modules get the unspecialised
    /// generic otherwise, which costs several protocol-witness calls per number.
    public mutating func number(_ v: UInt64) {
        decimal(v)
        needsComma = true
    }

    public mutating func number(_ v: Int64) {
        if v < 0 { byte(UInt8(ascii: "-")) }
        decimal(v.magnitude)
        needsComma = true
    }

    public mutating func number<I: BinaryInteger>(_ v: I) {
        if v < 0 {
            byte(UInt8(ascii: "-"))
            decimal(UInt64(v.magnitude))
        } else {
            decimal(UInt64(v))
        }
        needsComma = true
    }

    /// "00" … "99": two decimal digits per division halves the (serially dependent) divisions of
    /// a 19-digit timestamp.
    private static var digitPairs: StaticString {
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
    }

    /// Decimal digits, formatted right to left into a 20-byte scratch area (room for
    /// `UInt64.max`) and then copied, so no `String` is created.
    private mutating func decimal(_ v: UInt64) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { buffer in
            let end = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + 20
            let pairs = Self.digitPairs.utf8Start
            var p = end
            var x = v
            while x >= 100 {
                let r = Int(truncatingIfNeeded: x % 100) &* 2
                x /= 100
                p -= 2
                p[0] = pairs[r]
                p[1] = pairs[r &+ 1]
            }
            if x >= 10 {
                let r = Int(truncatingIfNeeded: x) &* 2
                p -= 2
                p[0] = pairs[r]
                p[1] = pairs[r &+ 1]
            } else {
                p -= 1
                p[0] = UInt8(truncatingIfNeeded: x) &+ UInt8(ascii: "0")
            }
            bytes(p, end - p)
        }
    }

    /// A double as the shortest text that round-trips; non-finite values as the mapping's strings.
    public mutating func double(_ d: Double) {
        if d.isNaN {
            raw("\"NaN\"")
        } else if d.isInfinite {
            raw(d < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        } else {
            // Usually a small (inline) string, so no allocation.
            raw(d.description)
        }
        needsComma = true
    }

    public mutating func bool(_ b: Bool) {
        raw(b ? "true" : "false")
        needsComma = true
    }

    /// Bytes as a base64 string (the proto3 JSON mapping for `bytes`).
    mutating func base64(_ b: [UInt8]) {
        unescapedString(Base64.encode(b))
        needsComma = true
    }

    // MARK: IDs

    private static var hexDigits: StaticString { "0123456789abcdef" }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt64) -> UInt8 {
        hexDigits.utf8Start[Int(truncatingIfNeeded: nibble & 0xF)]
    }

    /// Sixteen lower-case hex digits of `v` at `p`.
    @inline(__always)
    private static func hex16(_ v: UInt64, _ p: UnsafeMutablePointer<UInt8>) {
        var x = v
        var k = 15
        while k >= 0 {
            p[k] = hexDigit(x)
            x >>= 4
            k &-= 1
        }
    }

    public mutating func traceID(_ id: TraceID) {
        let p = reserve(34)
        p[0] = UInt8(ascii: "\"")
        Self.hex16(id.high, p + 1)
        Self.hex16(id.low, p + 17)
        p[33] = UInt8(ascii: "\"")
        count &+= 34
        needsComma = true
    }

    public mutating func spanID(_ id: SpanID) {
        let p = reserve(18)
        p[0] = UInt8(ascii: "\"")
        Self.hex16(id.value, p + 1)
        p[17] = UInt8(ascii: "\"")
        count &+= 18
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
