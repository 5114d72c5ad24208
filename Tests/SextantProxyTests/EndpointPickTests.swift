import SextantIstio
import Testing

@testable import SextantProxy

/// `ClusterRuntime.pick` on a bit mask (clusters of up to 64 endpoints) chooses as on the list it keeps for
/// larger clusters: tried endpoints are avoided until none is left, round robin walks the usable ones in
/// index order, and `EndpointSet` holds indices on both sides of 64.
@Suite struct EndpointPickTests {
    static func cluster(_ n: Int, _ lb: LoadBalancerSettings.Simple) -> ClusterRuntime {
        var policy = TrafficPolicy()
        policy.loadBalancer = .simple(lb)
        let endpoints = (0..<n).map { Endpoint(address: "10.0.\($0 / 250).\($0 % 250 + 1)", port: 80, labels: [:], weight: 1, serviceAccount: nil) }
        return ClusterRuntime(
            Cluster(key: ClusterKey(host: "svc.default.svc.cluster.local", port: 80), endpoints: endpoints, policy: policy,
                    protocolName: .http, serviceNamespace: "default", serviceName: "svc"))
    }

    @Test func endpointSetHoldsIndicesBelowAndAbove64() {
        var s: EndpointSet = [0, 63]
        s.insert(64)
        s.insert(200)
        #expect([0, 63, 64, 200].allSatisfy { s.contains($0) })
        #expect(![1, 62, 65, 199].contains { s.contains($0) })
    }

    @Test(arguments: [1, 3, 64, 65, 130])
    func roundRobinSkipsTriedEndpointsInIndexOrder(n: Int) {
        let c = Self.cluster(n, .roundRobin)
        var random = FastRandom()
        var tried = EndpointSet()
        var seen: [Int] = []
        // Each pick avoids what was tried: n picks visit every endpoint once.
        for _ in 0..<n {
            let i = try! #require(c.pick(hash: nil, tried: tried, now: .now, random: &random))
            #expect(!tried.contains(i))
            tried.insert(i)
            seen.append(i)
        }
        #expect(Set(seen).count == n)
        // All tried: any endpoint again, as Istio retries on the same hosts when no other is left.
        #expect(c.pick(hash: nil, tried: tried, now: .now, random: &random).map { (0..<n).contains($0) } == true)
        // Untried, round robin walks indices in order.
        let first = try! #require(c.pick(hash: nil, tried: [], now: .now, random: &random))
        let second = try! #require(c.pick(hash: nil, tried: [], now: .now, random: &random))
        #expect(second == (first + 1) % n)
    }

    @Test(arguments: [LoadBalancerSettings.Simple.random, .leastRequest])
    func randomChoicesStayAmongUsableEndpoints(lb: LoadBalancerSettings.Simple) {
        for n in [2, 5, 64, 70] {
            let c = Self.cluster(n, lb)
            var random = FastRandom()
            var tried = EndpointSet()
            for i in 0..<(n - 1) where i != n / 2 { tried.insert(i) }
            // Two endpoints left untried: the last one and the middle one.
            var picked = Set<Int>()
            for _ in 0..<200 { picked.insert(c.pick(hash: nil, tried: tried, now: .now, random: &random)!) }
            #expect(picked == Set([n / 2, n - 1]))
        }
    }
}
