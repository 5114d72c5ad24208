/// Strict UTF-8 for string fields: protobuf `string` and JSON text must both be valid UTF-8
/// (proto3 language guide, "Scalar Value Types"; RFC 8259 §8.1).
enum UTF8Text {
    /// A `String` from `bytes`, or `nil` when they are not valid UTF-8.
    @inline(__always)
    static func string(_ bytes: UnsafeRawBufferPointer) -> String? {
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        // `String(decoding:)` has the fast contiguous path but repairs instead of failing, so
        // validate first (the generic `String(validating:)` measured ~2x slower per span).
        guard isText(utf8) else { return nil }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// Whether `bytes` are valid UTF-8: ASCII checked a word at a time first, the full rules only
    /// for text that is not.
    @inline(__always)
    static func isText(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        isASCII(bytes) || isValid(bytes)
    }

    /// Eight bytes at a time; the tail is one more (overlapping) word, or for short texts two
    /// overlapping half or quarter words, so no text takes a byte-by-byte loop.
    @inline(__always)
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = bytes.count
        guard n > 0 else { return true }
        let raw = UnsafeRawPointer(bytes.baseAddress!)
        if n >= 8 {
            var i = 0
            while i + 8 <= n {
                if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
                i += 8
            }
            return i == n || raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
        }
        if n >= 4 {
            return (raw.loadUnaligned(as: UInt32.self) | raw.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)) & 0x8080_8080 == 0
        }
        if n >= 2 {
            return (raw.loadUnaligned(as: UInt16.self) | raw.loadUnaligned(fromByteOffset: n - 2, as: UInt16.self)) & 0x8080 == 0
        }
        return raw.load(as: UInt8.self) < 0x80
    }

    /// Whether `bytes` are valid UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, ≤ U+10FFFF).
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 {
                i += 1
                continue
            }
            let need: Int
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return false
            }
            guard i + need < n else { return false }
            let b1 = bytes[i + 1]
            guard b1 >= lo && b1 <= hi else { return false }
            var k = 2
            while k <= need {
                guard bytes[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += need + 1
        }
        return true
    }
}
