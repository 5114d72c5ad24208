/// Host-name rules Istio applies to `hosts` fields and to the `Host`/`:authority` of requests.
public enum HostName {
    public static let clusterDomain = "svc.cluster.local"

    /// Istio qualifies a short name (no dot) with the namespace of the resource that mentions it:
    /// `reviews` in namespace `default` is `reviews.default.svc.cluster.local`. Names with a dot are
    /// taken as written; `*` and `*.example.com` stay wildcards. Lower-cased, as DNS names compare.
    public static func qualify(_ host: String, namespace: String) -> String {
        let h = host.lowercased()
        if h == "*" || h.contains(".") { return h }
        return "\(h).\(namespace).\(clusterDomain)"
    }

    /// Splits `host[:port]` (or `[v6]:port`) into a lower-cased host and an optional port.
    public static func splitAuthority(_ authority: String) -> (host: String, port: Int?) {
        // The usual authority, in one pass over its bytes: lower-case ASCII, no brackets, at most one colon
        // and only digits after it. Anything else takes the general path below, which gives the same result
        // for these.
        let fast = authority.utf8.withContiguousStorageIfAvailable { b -> (host: String, port: Int?)? in
            var colon = -1
            for i in b.indices {
                let c = b[i]
                if (c >= 0x41 && c <= 0x5a) || c >= 0x80 || c == UInt8(ascii: "[") { return nil }
                if c == UInt8(ascii: ":") {
                    if colon >= 0 { return nil }
                    colon = i
                }
            }
            if colon < 0 { return (authority, nil) }
            let digits = b.count - colon - 1
            guard digits > 0 && digits <= 18 else { return nil }
            var port = 0
            for k in (colon + 1)..<b.count {
                let d = b[k] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                port = port * 10 + Int(d)
            }
            return (String(decoding: UnsafeBufferPointer(rebasing: b[..<colon]), as: UTF8.self), port)
        }
        if let fast = fast, let result = fast { return result }
        // Authorities are nearly always lower-case ASCII already: lower-case only when needed, and find
        // the separators on the UTF-8 view (ASCII bytes, so its indices slice the string too).
        func needsLowering(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5a) || b >= 0x80 }
        let lower = authority.utf8.withContiguousStorageIfAvailable { $0.contains(where: needsLowering) }
            ?? authority.utf8.contains(where: needsLowering)
        let a = lower ? authority.lowercased() : authority
        let u = a.utf8
        let colon = UInt8(ascii: ":")
        // The usual `host:port`: one colon, found in the bytes (the generic view search costs a call per byte).
        if let (first, last) = u.withContiguousStorageIfAvailable({ b in (b.firstIndex(of: colon), b.lastIndex(of: colon)) }),
            u.first != UInt8(ascii: "[")
        {
            guard let c = last, first == c else { return (a, nil) }
            let i = u.index(u.startIndex, offsetBy: c)
            if let p = Int(a[u.index(after: i)...]) { return (String(a[..<i]), p) }
            return (a, nil)
        }
        if u.first == UInt8(ascii: "[") {
            guard let close = u.firstIndex(of: UInt8(ascii: "]")) else { return (a, nil) }
            let host = String(a[u.index(after: u.startIndex)..<close])
            let rest = a[u.index(after: close)...]
            if rest.utf8.first == colon, let p = Int(rest.dropFirst()) { return (host, p) }
            return (host, nil)
        }
        if let c = u.lastIndex(of: colon), u.firstIndex(of: colon) == c, let p = Int(a[u.index(after: c)...]) {
            return (String(a[..<c]), p)
        }
        return (a, nil)
    }

    /// The fully qualified name a short form stands for, as the domains Istio generates for a service:
    /// from namespace `default`, `reviews`, `reviews.default` and `reviews.default.svc` all stand for
    /// `reviews.default.svc.cluster.local`. Nil when `host` is not a short form.
    public static func expansion(of host: String, proxyNamespace: String) -> String? {
        let dots = dotCount(host.utf8)
        if dots == 0 { return "\(host).\(proxyNamespace).\(clusterDomain)" }
        if host.hasSuffix(".svc") { return "\(host).cluster.local" }
        if dots == 1 { return "\(host).\(clusterDomain)" }
        return nil
    }

    /// The inverse of `expansion`: every short form whose expansion is `fqdn`.
    public static func shortForms(of fqdn: String, proxyNamespace: String) -> [String] {
        var out: [String] = []
        let local = ".cluster.local"
        if fqdn.hasSuffix(local) {
            let p = fqdn.dropLast(local.utf8.count)
            if p.hasSuffix(".svc") { out.append(String(p)) }
        }
        let domain = ".\(clusterDomain)"
        if fqdn.hasSuffix(domain) {
            let p = fqdn.dropLast(domain.utf8.count)
            if dotCount(p.utf8) == 1 && !p.hasSuffix(".svc") { out.append(String(p)) }
        }
        let inNamespace = ".\(proxyNamespace).\(clusterDomain)"
        if fqdn.hasSuffix(inNamespace) {
            let p = fqdn.dropLast(inNamespace.utf8.count)
            if dotCount(p.utf8) == 0 { out.append(String(p)) }
        }
        return out.filter { expansion(of: $0, proxyNamespace: proxyNamespace) == fqdn }
    }

    private static func dotCount(_ bytes: some Sequence<UInt8>) -> Int {
        bytes.reduce(0) { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) }
    }

    /// Whether a `hosts` entry (possibly a wildcard such as `*.example.com` or `*`) covers `fqdn`.
    public static func wildcard(_ pattern: String, matches fqdn: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasPrefix("*") { return fqdn.hasSuffix(pattern.dropFirst()) }
        return pattern == fqdn
    }

    /// Whether `s` equals `lowercased` (already lower case) ignoring ASCII case, without allocating.
    public static func equalsIgnoringASCIICase(_ s: String, lowercased: String) -> Bool {
        guard s.utf8.count == lowercased.utf8.count else { return false }
        // Native strings are contiguous UTF-8: compare the buffers without an iterator per string.
        if let equal = s.utf8.withContiguousStorageIfAvailable({ a in
            lowercased.utf8.withContiguousStorageIfAvailable { b in
                equalsIgnoringASCIICase(UnsafeRawBufferPointer(a), lowercased: UnsafeRawBufferPointer(b))
            }
        }), let equal {
            return equal
        }
        return bytesEqualIgnoringASCIICase(s.utf8, lowercased: lowercased.utf8)
    }

    /// `bytesEqualIgnoringASCIICase` for contiguous bytes, eight at a time: each word's letters A–Z are folded
    /// to lower case at once (`foldingASCIIUppercase`) and the word compared with `lowercased`'s. Field names
    /// are compared on every request (`x-envoy-upstream-service-time` byte by byte cost ~550 instructions).
    public static func equalsIgnoringASCIICase(_ bytes: UnsafeRawBufferPointer, lowercased: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n == lowercased.count else { return false }
        guard n > 0, let a = bytes.baseAddress, let b = lowercased.baseAddress else { return true }
        if n < 8 {
            for k in 0..<n {
                let x = a.load(fromByteOffset: k, as: UInt8.self)
                if (x &- 0x41 < 26 ? x | 0x20 : x) != b.load(fromByteOffset: k, as: UInt8.self) { return false }
            }
            return true
        }
        var i = 0
        while true {
            // The last word ends at the last byte, overlapping the one before it when `n` is not a multiple of 8.
            let k = min(i, n - 8)
            let x = a.loadUnaligned(fromByteOffset: k, as: UInt64.self)
            if foldingASCIIUppercase(x) != b.loadUnaligned(fromByteOffset: k, as: UInt64.self) { return false }
            if k == n - 8 { return true }
            i += 8
        }
    }

    /// `w` with each byte in A–Z (0x41–0x5A) given bit 0x20, every other byte as it is. Per byte, on its low
    /// seven bits: adding 0x3F sets the high bit from `A` up, adding 0x25 from `[` up; neither carries into
    /// the next byte. Bytes with the high bit set (non-ASCII) are left out.
    @inline(__always)
    static func foldingASCIIUppercase(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let low7 = w & (ones &* 0x7F)
        let upper = (low7 &+ ones &* 0x3F) & ~(low7 &+ ones &* 0x25) & ~w & (ones &* 0x80)
        return w | upper >> 2
    }

    /// Whether `bytes` equal `lowercased` (already lower case) once ASCII letters in `bytes` are folded to
    /// lower case.
    @inlinable
    public static func bytesEqualIgnoringASCIICase(_ bytes: some Collection<UInt8>, lowercased: some Collection<UInt8>) -> Bool {
        guard bytes.count == lowercased.count else { return false }
        return zip(bytes, lowercased).allSatisfy { x, y in ((x >= 0x41 && x <= 0x5a) ? x | 0x20 : x) == y }
    }
}
