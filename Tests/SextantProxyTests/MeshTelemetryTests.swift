import NIOHTTP1
import SextantIstio
import Testing

@testable import SextantProxy

/// What mesh mTLS puts into Istio's labels and the access log.
@Suite struct MeshTelemetryTests {
    static let productpage = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    static let reviews = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"

    static func labels(_ metrics: IstioMetrics, _ r: ProxyRecord) -> [String: String] {
        Dictionary(uniqueKeysWithValues: zip(IstioMetrics.labelNames, metrics.labels(for: r)))
    }

    static func record(_ direction: ProxyRecord.Direction) -> ProxyRecord {
        var r = ProxyRecord(
            direction: direction, startUnixNanos: 0, method: "GET", path: "/", protocolName: "HTTP/1.1", authority: "reviews:9080",
            requestHeaders: [:])
        r.responseCode = 200
        return r
    }

    @Test func principalsAndSecurityPolicyByReporter() {
        let client = IstioMetrics(identity: ProxyIdentity(workload: "productpage-v1", namespace: "default"), version: "t", principal: Self.productpage)
        let server = IstioMetrics(identity: ProxyIdentity(workload: "reviews-v2", namespace: "default"), version: "t", principal: Self.reviews)

        var out = Self.record(.outbound)
        out.upstreamPeerPrincipal = Self.reviews
        let source = Self.labels(client, out)
        #expect(source["source_principal"] == Self.productpage && source["destination_principal"] == Self.reviews)
        #expect(source["connection_security_policy"] == "unknown")

        var inbound = Self.record(.inbound)
        inbound.downstreamPeerPrincipal = Self.productpage
        let destination = Self.labels(server, inbound)
        #expect(destination["source_principal"] == Self.productpage && destination["destination_principal"] == Self.reviews)
        #expect(destination["connection_security_policy"] == "mutual_tls")

        // Plain text: no principal on either side, even though both proxies hold certificates.
        let plainOut = Self.labels(client, Self.record(.outbound))
        #expect(plainOut["source_principal"] == "unknown" && plainOut["destination_principal"] == "unknown")
        let plainIn = Self.labels(server, Self.record(.inbound))
        #expect(plainIn["source_principal"] == "unknown" && plainIn["destination_principal"] == "unknown")
        #expect(plainIn["connection_security_policy"] == "none")
    }

    @Test func accessLogPeerURISANs() throws {
        var r = Self.record(.inbound)
        r.downstreamPeerPrincipal = Self.productpage
        let f = try AccessLogFormat("%DOWNSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_URI_SAN%")
        #expect(f.render(r) == "\(Self.productpage) -")
    }

    /// A record whose label inputs repeat the previous one's updates its series without labels being made
    /// (`IstioMetrics.LabelInputs`); any input that differs (code, peer, endpoint labels) reaches its own series.
    @Test func repeatedRecordsShareASeriesAndEachDifferenceHasItsOwn() {
        let metrics = IstioMetrics(identity: ProxyIdentity(workload: "productpage-v1", namespace: "default"), version: "t")
        let a = Self.record(.outbound)
        var b = a
        b.responseCode = 503
        var c = a
        var peer = PeerMetadata()
        peer.workload = "reviews-v2"
        c.peer = peer
        var d = a
        d.upstreamLabels = ["app": "ratings"]
        for r in [a, a, b, a, c, c, d, a] { metrics.requestFinished(r) }

        var counts: [String: Double] = [:]
        for line in metrics.render().split(separator: "\n") where line.hasPrefix("istio_requests_total{") {
            let labels = line.split(separator: "}")[0]
            let key =
                labels.contains("response_code=\"503\"") ? "b"
                : labels.contains("destination_workload=\"reviews-v2\"") ? "c"
                : labels.contains("destination_app=\"ratings\"") ? "d" : "a"
            counts[key, default: 0] += Double(line.split(separator: " ").last!)!
        }
        #expect(counts == ["a": 4, "b": 1, "c": 2, "d": 1])
    }
}
