/// Envoy's ring-hash load balancer (used for `consistentHash`): each endpoint gets points on a 64-bit
/// ring in proportion to its weight; a request goes to the first point at or after its key's hash.
/// Adding or removing an endpoint moves only the keys of the ring segments it owned.
public struct RingHash: Sendable {
    private let points: [(hash: UInt64, endpoint: Int)]

    /// Builds the ring for `endpoints` (indexes into the caller's list) with at least `minimumRingSize`
    /// points in all; an endpoint's points are hashes of `"<name>_<i>"`, as Envoy derives them.
    public init(endpoints: [(name: String, weight: Int)], minimumRingSize: Int = 1024) {
        let totalWeight = endpoints.reduce(0) { $0 + max($1.weight, 1) }
        guard totalWeight > 0 else {
            points = []
            return
        }
        let scale = Double(max(minimumRingSize, endpoints.count)) / Double(totalWeight)
        var pts: [(UInt64, Int)] = []
        pts.reserveCapacity(max(minimumRingSize, endpoints.count) + endpoints.count)
        for (i, e) in endpoints.enumerated() {
            let count = max(1, Int((Double(max(e.weight, 1)) * scale).rounded()))
            for n in 0..<count { pts.append((StableHash.hash("\(e.name)_\(n)"), i)) }
        }
        pts.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        points = pts
    }

    public var isEmpty: Bool { points.isEmpty }

    /// The endpoint index for a key's hash; `usable` lets ejected endpoints be skipped (Envoy walks the
    /// ring to the next usable host).
    public func endpoint(for hash: UInt64, usable: (Int) -> Bool = { _ in true }) -> Int? {
        guard !points.isEmpty else { return nil }
        var lo = 0
        var hi = points.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if points[mid].hash < hash { lo = mid + 1 } else { hi = mid }
        }
        for step in 0..<points.count {
            let candidate = points[(lo + step) % points.count].endpoint
            if usable(candidate) { return candidate }
        }
        return nil
    }
}

/// A stable 64-bit hash (FNV-1a with a final avalanche mix): the same key maps to the same value in
/// every process, so stickiness survives restarts. Not for untrusted keys in hash tables.
public enum StableHash {
    public static func hash(_ s: some StringProtocol) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01b3
        }
        // MurmurHash3 fmix64: spreads FNV's weak low-entropy inputs over the whole ring.
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}
