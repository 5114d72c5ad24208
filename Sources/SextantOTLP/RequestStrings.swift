/// The strings already made from one request's bytes, so that text repeated across its spans, data
/// points or records (attribute names, most values, span names, service names) is checked for UTF-8,
/// allocated and made into a `String` once, and shared after that.
///
/// A direct-mapped table: a string's slot comes from its length and its first and last eight bytes,
/// and a miss replaces what was there. An entry remembers where in the request its text first
/// appeared, so a hit is a comparison of request bytes with request bytes. The table lives for one
/// decode call (the request's bytes outlive it) and holds nothing after.
///
/// Decoders reach it through an `unowned(unsafe)` reference in their reader, which copies into every
/// nested reader without reference counting; the decode call keeps the table alive.
final class RequestStrings {
    private struct Entry {
        var start: UnsafeRawPointer?
        var count = 0
        var string = ""
    }

    /// Slots in the table; a power of two.
    private static let slots = 256
    /// Longer text is made directly: it rarely repeats and its comparison costs more.
    static let maxLength = 128

    private let entries: UnsafeMutablePointer<Entry>

    init() {
        entries = .allocate(capacity: Self.slots)
        entries.initialize(repeating: Entry(), count: Self.slots)
    }

    deinit {
        entries.deinitialize(count: Self.slots)
        entries.deallocate()
    }

    /// The string for the text at `bytes`, made by `make` (which checks it) unless the same text was met
    /// before. Empty text and text over `maxLength` bytes are always made.
    @inline(__always)
    func string<E: Error>(
        _ bytes: UnsafeRawBufferPointer, make: (UnsafeRawBufferPointer) throws(E) -> String
    ) throws(E) -> String {
        let n = bytes.count
        guard n > 0, n <= Self.maxLength, let p = bytes.baseAddress else { return try make(bytes) }
        let entry = entries + Self.slot(p, n)
        if entry.pointee.count == n, let q = entry.pointee.start, Self.equal(p, q, n) {
            return entry.pointee.string
        }
        let s = try make(bytes)
        entry.pointee = Entry(start: p, count: n, string: s)
        return s
    }

    /// The first and last (up to) eight bytes and the length, mixed.
    @inline(__always)
    private static func slot(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        let head: UInt64
        let tail: UInt64
        if n >= 8 {
            head = p.loadUnaligned(as: UInt64.self)
            tail = p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        } else {
            var w: UInt64 = 0
            for i in 0..<n { w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
            head = w
            tail = 0
        }
        var h = (head &* 0x9E37_79B9_7F4A_7C15) ^ (tail &* 0xC2B2_AE3D_27D4_EB4F) ^ UInt64(n)
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h >> 56) & (slots - 1)
    }

    @inline(__always)
    private static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        if a == b { return true }
        var i = 0
        while i &+ 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i &+= 8
        }
        if i < n {
            // The last word, overlapping what was compared (n ≥ 8), or the bytes left of a short string.
            if n >= 8 {
                return a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            }
            while i < n {
                if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
                i &+= 1
            }
        }
        return true
    }
}
