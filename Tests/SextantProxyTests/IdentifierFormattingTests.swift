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

    /// Every random bit lands in its digit, in order, around the dashes and the version and variant bits.
    @Test func digitsAreTheRandomBitsInOrder() {
        struct Fixed: RandomNumberGenerator {
            var values: [UInt64] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210]
            mutating func next() -> UInt64 { values.removeFirst() }
        }
        var g = Fixed()
        #expect(RequestID.make(using: &g) == "01234567-89ab-4def-bedc-ba9876543210")
    }
}

/// `%START_TIME%` in Envoy's default form, written digit by digit.
@Suite struct StartTimeTests {
    @Test func envoyDefaultForm() {
        #expect(AccessLogFormat.startTime(0) == "1970-01-01T00:00:00.000Z")
        #expect(AccessLogFormat.startTime(1_764_032_523_456_000_000) == "2025-11-25T01:02:03.456Z")
        #expect(AccessLogFormat.startTime(951_782_400_007_000_000) == "2000-02-29T00:00:00.007Z")
        #expect(AccessLogFormat.startTime(4_102_444_799_999_999_999) == "2099-12-31T23:59:59.999Z")
        #expect(AccessLogFormat.startTime(.max) == "2554-07-21T23:34:33.709Z")
    }
}

/// Span names use the port of the Envoy cluster the request went to.
@Suite struct ClusterPortTests {
    @Test func portOfOutboundClusterNames() {
        #expect(SpanBuilder.clusterPort("outbound|9080|v1|reviews.default.svc.cluster.local") == 9080)
        #expect(SpanBuilder.clusterPort("outbound|80||upstream.default.svc.cluster.local") == 80)
        #expect(SpanBuilder.clusterPort("inbound|9080||") == nil)
        #expect(SpanBuilder.clusterPort("outbound|x||host") == nil)
        #expect(SpanBuilder.clusterPort("outbound|80|v1") == nil)
        #expect(SpanBuilder.clusterPort("outbound|80|v1|host|extra") == nil)
        #expect(SpanBuilder.clusterPort("BlackHoleCluster") == nil)
    }
}
