import Testing

@testable import SextantZipkin

@Suite("Endpoint addresses")
struct IPAddressTests {
    @Test(arguments: [
        ("2001:0DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::", "::"),
        ("::1", "::1"),
        ("fe80::", "fe80::"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func ipv6(text: String, canonical: String) throws {
        let bytes = try #require(IPAddress.parseIPv6(text))
        #expect(bytes.count == 16)
        #expect(IPAddress.formatIPv6(bytes) == canonical)
    }

    @Test(arguments: ["", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::", "1:", "1.2.3.4", "::1.2.3"])
    func invalidIPv6(text: String) {
        #expect(IPAddress.parseIPv6(text) == nil)
    }

    @Test func ipv4() {
        #expect(IPAddress.parseIPv4("192.168.0.255") == [192, 168, 0, 255])
        #expect(IPAddress.formatIPv4([10, 0, 0, 1]) == "10.0.0.1")
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "a.b.c.d", "1.2.3.4 "] {
            #expect(IPAddress.parseIPv4(bad) == nil, "\(bad)")
        }
    }
}
