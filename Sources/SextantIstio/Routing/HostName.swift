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
    public static func splitAuthority(_ authority: some StringProtocol) -> (host: String, port: Int?) {
        let a = authority.lowercased()
        if a.hasPrefix("[") {
            guard let close = a.firstIndex(of: "]") else { return (a, nil) }
            let host = String(a[a.index(after: a.startIndex)..<close])
            let rest = a[a.index(after: close)...]
            if rest.hasPrefix(":"), let p = Int(rest.dropFirst()) { return (host, p) }
            return (host, nil)
        }
        if let colon = a.lastIndex(of: ":"), a.firstIndex(of: ":") == colon, let p = Int(a[a.index(after: colon)...]) {
            return (String(a[..<colon]), p)
        }
        return (a, nil)
    }

    /// The fully qualified names an authority may stand for, most specific first, as the domains Istio
    /// generates for a service: `reviews`, `reviews.default`, `reviews.default.svc` and the FQDN all
    /// reach `reviews.default.svc.cluster.local` from namespace `default`.
    public static func candidates(for host: String, proxyNamespace: String) -> [String] {
        var out = [host]
        let dots = host.split(separator: ".", omittingEmptySubsequences: false).count - 1
        if dots == 0 {
            out.append("\(host).\(proxyNamespace).\(clusterDomain)")
        } else if host.hasSuffix(".svc") {
            out.append("\(host).cluster.local")
        } else if dots == 1 {
            out.append("\(host).\(clusterDomain)")
        }
        return out
    }

    /// Whether a `hosts` entry (possibly a wildcard such as `*.example.com` or `*`) covers `fqdn`.
    public static func wildcard(_ pattern: String, matches fqdn: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasPrefix("*") { return fqdn.hasSuffix(pattern.dropFirst()) }
        return pattern == fqdn
    }

    /// Whether `s` equals `lowercased` (already lower case) ignoring ASCII case, without allocating.
    public static func equalsIgnoringASCIICase(_ s: String, lowercased: String) -> Bool {
        var a = s.utf8.makeIterator()
        var b = lowercased.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                let lx = (x >= 0x41 && x <= 0x5a) ? x | 0x20 : x
                if lx != y { return false }
            default: return false
            }
        }
    }
}
