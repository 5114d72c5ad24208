import SextantPipeline

extension TLSSettings {
    /// Reads Prometheus' `<tls_config>` (a `scrape_config`'s `tls_config`) as a client block:
    /// `ca_file`, `cert_file` + `key_file`, `insecure_skip_verify`, `min_version` / `max_version`
    /// (`TLS12`, `TLS13`), `server_name` (→ `serverNameOverride`: sent in SNI and verified instead of the
    /// target's host). Files are checked now, as for `configtls` blocks. `ca`, `cert`, `key` (inline PEM)
    /// map to `ca_pem`, `cert_pem`, `key_pem`.
    public static func parsePrometheusClient(_ r: inout ConfigReader, key: String = "tls_config") -> TLSSettings {
        var s = r.section(key)
        var t = TLSSettings(role: .client)
        t.caFile = s.optionalString("ca_file")
        t.caPEM = s.optionalString("ca")
        if t.caFile != nil && t.caPEM != nil { s.error("ca", "\(s.path): set ca_file or ca, not both") }
        t.certFile = s.optionalString("cert_file")
        t.certPEM = s.optionalString("cert")
        t.keyFile = s.optionalString("key_file")
        t.keyPEM = s.optionalString("key").map(Secret.init)
        if t.certFile != nil && t.certPEM != nil { s.error("cert", "\(s.path): set cert_file or cert, not both") }
        if t.keyFile != nil && t.keyPEM != nil { s.error("key", "\(s.path): set key_file or key, not both") }
        if (t.certificate == nil) != (t.privateKey == nil) {
            s.error(nil, "\(s.path): cert_file and key_file go together (a client certificate needs its key)")
        }
        t.insecureSkipVerify = s.bool("insecure_skip_verify", default: false)
        if let name = s.optionalString("server_name"), !name.isEmpty {
            if IPAddressText.isLiteral(name) {
                s.error("server_name", "\(s.qualified("server_name")) must be a host name, not an IP address")
            }
            t.serverNameOverride = name
        }
        let names = ["TLS10", "TLS11", "TLS12", "TLS13"]
        func version(_ k: String) -> Version? {
            guard s.has(k) else { return nil }
            switch s.choice(k, names, default: "TLS12") {
            case "TLS13": return .tls13
            case "TLS12": return .tls12
            default:
                s.error(k, "\(s.qualified(k)): TLS versions before 1.2 are not supported")
                return nil
            }
        }
        if let v = version("min_version") { t.minVersion = v }
        t.maxVersion = version("max_version")
        if let max = t.maxVersion, max < t.minVersion {
            s.error("max_version", "\(s.qualified("max_version")) is below min_version")
        }
        t.check(&s)
        s.finish()
        return t
    }
}
