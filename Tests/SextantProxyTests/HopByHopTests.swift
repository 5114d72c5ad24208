import NIOHTTP1
import Testing

@testable import SextantProxy

/// RFC 9110 §7.6.1: the fixed hop-by-hop fields and the names a `Connection` field lists are not forwarded.
@Suite struct HopByHopTests {
    @Test(arguments: [
        ("keep-alive", [String]()), ("close", []), ("Keep-Alive, X-Custom", ["x-custom"]), (" a ,, B\t", ["a", "b"]),
        ("", []), (",", []), ("upgrade,  CLOSE ,x-b3-flags", ["x-b3-flags"]),
    ])
    func connectionListsNames(value: String, listed: [String]) {
        let hop = HopByHop(HTTPHeaders([("Host", "h"), ("Connection", value), ("connection", "second")]))
        for name in listed { #expect(hop.contains(name) && hop.contains(name.uppercased())) }
        #expect(hop.contains("second") && hop.contains("Transfer-Encoding") && hop.contains("te"))
        #expect(!hop.contains("host") && !hop.contains("x-request-id") && !hop.contains("close") && !hop.contains(""))
    }

    @Test func everyListedAndFixedFieldIsHopByHop() {
        let headers = HTTPHeaders([("Host", "h"), ("Connection", "x-a"), ("X-A", "1"), ("Keep-Alive", "timeout=5"), ("accept", "*/*")])
        let hop = HopByHop(headers)
        #expect(headers.filter { !hop.contains($0.name) }.map(\.name) == ["Host", "accept"])
    }
}
