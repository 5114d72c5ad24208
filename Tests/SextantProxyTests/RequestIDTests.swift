import Testing

@testable import SextantProxy

/// Generated `x-request-id` values are UUID version 4 text (RFC 9562 §5.4), as Envoy's are.
@Suite struct RequestIDTests {
    @Test func isVersion4UUIDText() {
        var random = FastRandom()
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RequestID.make(using: &random)
            let u = Array(id.utf8)
            #expect(u.count == 36)
            for (i, c) in u.enumerated() {
                if [8, 13, 18, 23].contains(i) {
                    #expect(c == UInt8(ascii: "-"), "\(id)")
                } else {
                    #expect((c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")), "\(id)")
                }
            }
            #expect(u[14] == UInt8(ascii: "4"), "version nibble: \(id)")
            #expect("89ab".utf8.contains(u[19]), "variant bits: \(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }
}
