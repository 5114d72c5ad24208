import SextantModel
import Testing

@testable import SextantZipkin

/// The tag classification the mapping relies on: every special name is found from its bytes, every
/// resource attribute name is recognised (the namespace pre-check must not rule one out), and the
/// position bookkeeping works past the first 64 tags.
@Suite("Zipkin tag roles")
struct ZipkinTagTests {
    @Test func everyNamedRoleIsFound() {
        let named: [(String, ZipkinTagRole)] = [
            (ZipkinTagNames.statusCode, .statusCode), (ZipkinTagNames.statusDescription, .statusDescription),
            (ZipkinTagNames.error, .error), (ZipkinTagNames.scopeName, .scopeName),
            (ZipkinTagNames.scopeVersion, .scopeVersion), (ZipkinTagNames.libraryName, .libraryName),
            (ZipkinTagNames.libraryVersion, .libraryVersion), (ZipkinTagNames.traceState, .traceState),
            (ZipkinTagNames.spanKind, .spanKind), (ZipkinTagNames.serviceNameSource, .serviceNameSource),
            (ZipkinTagNames.startTimeAbsent, .startTimeAbsent),
            (ZipkinTagNames.droppedAttributesCount, .droppedAttributesCount),
            (ZipkinTagNames.droppedEventsCount, .droppedEventsCount),
            (ZipkinTagNames.droppedLinksCount, .droppedLinksCount), (ZipkinTagNames.hostIP, .hostIP),
            (ZipkinTagNames.hostPort, .hostPort), (ZipkinTagNames.peerIP, .peerIP), (ZipkinTagNames.peerPort, .peerPort),
            (ZipkinTagNames.peerService, .peerService), (ZipkinTagNames.linkPrefix + "0", .link),
            (ZipkinTagNames.linkPrefix + "127", .link),
        ]
        #expect(Set(named.map(\.1)) == Set(ZipkinTagRole.allCases.filter { $0 != .resource }))
        for (name, role) in named { #expect(ZipkinTagRole.of(name) == role, "\(name)") }
    }

    @Test func everyResourceKeyIsFound() {
        for key in ZipkinTagNames.resourceKeys { #expect(ZipkinTagRole.of(key) == .resource, "\(key)") }
    }

    @Test(arguments: [
        "", "e", "errors", "http.method", "host", "host.nam", "hostx.name", "otlp.link.", "otel.status", "net.host",
        "peer.services", "service.names", "span.kinds", "w3c", "os", "é.ü", "k8s.pod.name.extra",
    ])
    func ordinaryKeysHaveNoRole(_ key: String) {
        #expect(ZipkinTagRole.of(key) == nil)
    }

    @Test func positionsAndDroppedTagsPast64() {
        var tags = (0..<100).map { KeyValue("k\($0)", .string("v\($0)")) }
        tags.append(KeyValue("otel.status_code", .string("ERROR")))
        tags.insert(KeyValue("error", .string("boom")), at: 3)
        let positions = ZipkinTagPositions(of: tags)
        #expect(positions[.error] == 3)
        #expect(positions[.statusCode] == 101)
        #expect(positions[.peerIP] == nil)

        var dropped = ZipkinDroppedTags()
        #expect(dropped.isEmpty)
        for i in [3, 63, 64, 101] { dropped.insert(i) }
        #expect(dropped.contains(63) && dropped.contains(64) && !dropped.contains(65))
        dropped.remove(from: &tags)
        #expect(tags.count == 98)
        #expect(tags.map(\.key) == (0..<100).filter { $0 != 62 && $0 != 63 }.map { "k\($0)" })
    }

    @Test func aRepeatedTagKeepsItsFirstPositionAndItsLastValue() {
        var span = ZipkinSpan()
        span.tags.set("a", .string("1"))
        span.tags.set("a.long.tag.name.here", .string("2"))
        span.tags.set("a", .string("3"))
        span.tags.set("a.long.tag.name.here", .string("4"))
        #expect(span.tags == [KeyValue("a", .string("3")), KeyValue("a.long.tag.name.here", .string("4"))])
    }

    /// A span with more tags than the bit set covers: the special ones past position 64 are still
    /// taken, and the rest keep their order.
    @Test func decodesSpecialTagsPastTheFirst64() throws {
        let ordinary = (0..<80).map { "\"t\($0)\":\"v\($0)\"" }.joined(separator: ",")
        let json = """
            [{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","timestamp":1700000000000000,
              "localEndpoint":{"serviceName":"svc"},
              "tags":{\(ordinary),"host.name":"h","otel.status_code":"ERROR","error":"boom","t3":"again"}}]
            """
        let result = try ZipkinV2.decodeJSON(Array(json.utf8))
        let rs = try #require(result.data.resourceSpans.first)
        #expect(rs.resource.attributes == [KeyValue("service.name", .string("svc")), KeyValue("host.name", .string("h"))])
        let span = try #require(rs.scopeSpans.first?.spans.first)
        #expect(span.status == SpanStatus(code: .error, message: "boom"))
        #expect(span.attributes.count == 80)
        #expect(span.attributes[3] == KeyValue("t3", .string("again")))
        #expect(span.attributes.last == KeyValue("t79", .string("v79")))
    }
}
