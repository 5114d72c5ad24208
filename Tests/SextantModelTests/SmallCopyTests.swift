import SextantModel
import Testing

@Suite struct SmallCopyTests {
    /// Every count from 0 to 40, from and to every offset in a word: the bytes copied are the source's, in order,
    /// and the bytes around the target are left alone (the inline copies store whole words inside the range only).
    @Test func copiesExactlyTheBytesAsked() {
        let source = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for n in 0...40 {
            for from in 0..<8 {
                for to in 0..<8 {
                    var target = [UInt8](repeating: 0xEE, count: 64)
                    source.withUnsafeBytes { s in
                        target.withUnsafeMutableBytes { t in
                            (t.baseAddress! + to).copySmall(from: s.baseAddress! + from, count: n)
                        }
                    }
                    var expected = [UInt8](repeating: 0xEE, count: 64)
                    expected.replaceSubrange(to..<(to + n), with: source[from..<(from + n)])
                    #expect(target == expected, "count \(n), from \(from), to \(to)")
                }
            }
        }
    }
}
