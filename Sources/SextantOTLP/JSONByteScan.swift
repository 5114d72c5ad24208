/// Finding the bytes that end a plain run of JSON string text, eight bytes at a time, for the reader
/// and the writer.
enum JSONByteScan {
    /// What, besides control characters, `"` and `\`, ends a run.
    enum Also {
        /// Any byte that is not ASCII (the reader then checks the UTF-8).
        case nonASCII
        /// 0xE2, the lead byte of U+2028/U+2029 (which the writer escapes).
        case lineSeparatorLead
    }

    /// The index of the first byte at or after `start` that ends a run; `count` when there is none.
    /// Whole words are tested with the "has a byte less than / equal to" tricks. A borrow can only mark
    /// bytes *above* a true match, so the lowest marked byte of a word is the first match; the byte loop
    /// reads only the last, shorter-than-a-word part.
    @inline(__always)
    static func next(_ p: UnsafePointer<UInt8>, from start: Int, count n: Int, also: Also) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        var i = start
        while i &+ 8 <= n {
            let w = UInt64(littleEndian: UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
            let quote = w ^ (ones &* 0x22)
            let backslash = w ^ (ones &* 0x5C)
            var hits = ((w &- ones &* 0x20) & ~w) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            switch also {
            case .nonASCII: hits |= w
            case .lineSeparatorLead:
                let e2 = w ^ (ones &* 0xE2)
                hits |= (e2 &- ones) & ~e2
            }
            let marked = hits & highBits
            if marked != 0 { return i &+ marked.trailingZeroBitCount >> 3 }
            i &+= 8
        }
        while i < n {
            let c = p[i]
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return i }
            switch also {
            case .nonASCII: if c >= 0x80 { return i }
            case .lineSeparatorLead: if c == 0xE2 { return i }
            }
            i &+= 1
        }
        return n
    }
}
