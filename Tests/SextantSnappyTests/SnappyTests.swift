import SextantSnappy
import Testing

@Suite struct SnappyTests {
    /// Deterministic pseudo-random bytes (xorshift), optionally restricted to a small alphabet so the
    /// matcher finds copies.
    static func bytes(_ n: Int, alphabet: Int = 256, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
        var x = seed
        return (0..<n).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return UInt8(truncatingIfNeeded: x % UInt64(alphabet))
        }
    }

    static let inputs: [[UInt8]] = [
        [], [7], Array("hello".utf8), Array(repeating: 0x61, count: 1000),
        Array(String(repeating: "http_requests_total{code=\"200\",method=\"GET\"} ", count: 3000).utf8),
        bytes(100_000), bytes(200_000, alphabet: 4), bytes(65_536 * 3 + 17, alphabet: 16),
        // Matches extended eight bytes at a time: ending on a mismatch in the last word, running to the very
        // end of the input, and short inputs just long enough to be matched at all.
        Array(String(repeating: "abcdefgh", count: 700).utf8) + Array("abcdefgX".utf8),
        Array(String(repeating: "abcdefgh", count: 700).utf8) + Array("abc".utf8),
        Array(repeating: 0x61, count: 16), Array(repeating: 0x61, count: 23), bytes(70_000, alphabet: 2),
    ]

    @Test(arguments: inputs.indices)
    func roundTrip(_ i: Int) throws {
        let input = Self.inputs[i]
        let compressed = Snappy.compress(input)
        #expect(try Snappy.decompress(compressed, maxLength: input.count) == input)
        let declared = try compressed.withUnsafeBytes { try Snappy.decompressedLength($0) }
        #expect(declared == input.count)
    }

    @Test func compressesRepetitiveInput() {
        #expect(Snappy.compress(Array(repeating: 0x61, count: 1000)).count < 60)
        let text = Array(String(repeating: "http_requests_total{code=\"200\"} 1\n", count: 1000).utf8)
        #expect(Snappy.compress(text).count < text.count / 10)
    }

    /// Hand-assembled blocks, one per element kind (format_description.txt §2).
    @Test func decodesEveryElementKind() throws {
        // Literal "abcd", then a 1-byte-offset copy (len 4+2=6, offset 4): "abcdabcdab".
        #expect(try Snappy.decompress([10, 0x0C, 0x61, 0x62, 0x63, 0x64, 0x01 | 2 << 2, 4], maxLength: 100) == Array("abcdabcdab".utf8))
        // Literal "x", then a 2-byte-offset copy of length 5 with offset 1 (overlapping: repeats "x").
        #expect(try Snappy.decompress([6, 0x00, 0x78, 0x02 | 4 << 2, 1, 0], maxLength: 100) == Array("xxxxxx".utf8))
        // Literal "ab", then a 4-byte-offset copy of length 2, offset 2.
        #expect(try Snappy.decompress([4, 0x04, 0x61, 0x62, 0x03 | 1 << 2, 2, 0, 0, 0], maxLength: 100) == Array("abab".utf8))
        // A literal whose length-1 (69) is in one extra byte (tag 60<<2).
        let long = Array(repeating: UInt8(0x7A), count: 70)
        #expect(try Snappy.decompress([70, 60 << 2, 69] + long, maxLength: 100) == long)
    }

    @Test func refusesCorruptBlocks() {
        func reason(_ bytes: [UInt8], max: Int = 1 << 20) -> Snappy.Failure? {
            do {
                _ = try Snappy.decompress(bytes, maxLength: max)
                return nil
            } catch { return error }
        }
        #expect(reason([])?.message == "truncated length preamble")
        #expect(reason([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])?.message == "length preamble longer than 5 bytes")
        #expect(reason([5, 0x10, 0x61])?.message.contains("runs past the end") == true)
        #expect(reason([4, 0x00, 0x61, 0x05 | 0, 5])?.message.contains("refers 5 bytes back with only 1") == true)
        #expect(reason([4, 0x00, 0x61, 0x02, 0, 0])?.message.contains("refers 0 bytes back") == true)
        #expect(reason([3, 0x00, 0x61])?.message == "input ended after 1 of the 3 declared bytes")
        #expect(reason([1, 0x04, 0x61, 0x62])?.message.contains("overruns the declared length 1") == true)
        #expect(reason([4, 0x00, 0x61, 0x02])?.message.contains("truncated copy") == true)
        // 2^31 bytes declared by a 6-byte block: refused before any allocation.
        #expect(reason([0x80, 0x80, 0x80, 0x80, 0x08, 0x00], max: Int.max)?.message.contains("cannot come from") == true)
    }

    @Test func boundsOutputByTheConfiguredMaximum() throws {
        let input = Array(repeating: UInt8(1), count: 10_000)
        let c = Snappy.compress(input)
        #expect(throws: Snappy.Failure(.tooLarge, "declared length 10000 exceeds the limit of 9999 bytes")) {
            try Snappy.decompress(c, maxLength: 9999)
        }
        #expect(try Snappy.decompress(c, maxLength: 10_000) == input)
    }
}
