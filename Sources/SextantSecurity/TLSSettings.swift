import NIOCore
import NIOSSL
import SextantPipeline

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `tls` block, as the OpenTelemetry Collector's `configtls` defines it
/// (https://github.com/open-telemetry/opentelemetry-collector/blob/main/config/configtls/README.md),
/// for one side of a connection:
///
/// - server (`tls` under a receiver's endpoint section): `cert_file` + `key_file` (required together),
///   `client_ca_file` (then every client must present a certificate it signed: mutual TLS),
///   `min_version`, `max_version`.
/// - client (`tls` of an exporter): `insecure` (plaintext, for gRPC), `insecure_skip_verify`, `ca_file`
///   (else the system roots), `cert_file` + `key_file` (a client certificate for mutual TLS),
///   `server_name_override`, `min_version`, `max_version`.
///
/// Only file paths are kept: the files are checked while the config loads (so a missing or invalid file
/// is reported at its `file:line:column`) and read again when the component starts.
public struct TLSSettings: Sendable, Equatable {
    public enum Role: Sendable {
        case server
        case client
    }

    /// `min_version` / `max_version`. Versions before 1.2 are refused, as recent OTel releases do.
    public enum Version: String, Sendable, CaseIterable, Comparable {
        case tls12 = "1.2"
        case tls13 = "1.3"

        var nio: TLSVersion { self == .tls12 ? .tlsv12 : .tlsv13 }
        public static func < (a: Version, b: Version) -> Bool { a.rawValue < b.rawValue }
    }

    public var role: Role
    public var certFile: String?
    public var keyFile: String?
    /// `cert_pem` / `key_pem` / `ca_pem`: the same material inline (each exclusive with its `_file`);
    /// the key is a `Secret`.
    public var certPEM: String?
    public var keyPEM: Secret?
    public var caPEM: String?
    /// Client: the CA bundle that verifies servers (the system roots when absent).
    public var caFile: String?
    /// Client: trust the system roots as well as `ca_file`/`ca_pem`.
    public var includeSystemCACertsPool = false
    /// Server: the CA bundle that verifies client certificates; setting it requires them.
    public var clientCAFile: String?
    public var minVersion: Version = .tls12
    public var maxVersion: Version?
    /// Client: no TLS at all (gRPC exporters; HTTP exporters follow their URL's scheme).
    public var insecure = false
    /// Client: accept any server certificate (still encrypted). For tests only.
    public var insecureSkipVerify = false
    /// Client: the name checked against the server certificate and sent in SNI.
    public var serverNameOverride: String?

    public init(role: Role) { self.role = role }

    /// Mutual TLS on a server: clients must present a certificate signed by `client_ca_file`.
    public var requiresClientCertificate: Bool { role == .server && clientCAFile != nil }

    // MARK: Parsing

    /// Reads `key` (default `tls`) of `r` as a server-side block; `nil` when absent (plaintext).
    public static func parseServer(_ r: inout ConfigReader, key: String = "tls") -> TLSSettings? {
        guard r.has(key) else {
            _ = r.raw(key)
            return nil
        }
        var s = r.section(key)
        var t = TLSSettings(role: .server)
        t.parseMaterial(&s)
        t.clientCAFile = s.optionalString("client_ca_file")
        t.parseVersions(&s)
        if t.certificate == nil || t.privateKey == nil {
            s.error(nil, "\(s.path): a server needs both cert_file and key_file (or cert_pem and key_pem)")
        }
        for (k, hint) in [
            ("ca_file", "use client_ca_file to verify client certificates"), ("ca_pem", "use client_ca_file to verify client certificates"),
            ("include_system_ca_certs_pool", "it applies to clients (exporters)"), ("insecure", "a receiver without tls is plaintext"),
            ("insecure_skip_verify", "it applies to clients (exporters)"), ("server_name_override", "it applies to clients (exporters)"),
        ] where s.has(k) {
            s.error(k, "\(s.qualified(k)) is not a server setting: \(hint)")
        }
        t.check(&s)
        s.finish()
        return t
    }

    /// Reads `key` (default `tls`) of `r` as a client-side block. Absent means TLS with default
    /// verification, as in the OTel Collector (HTTP exporters use TLS only for `https://` URLs).
    public static func parseClient(_ r: inout ConfigReader, key: String = "tls") -> TLSSettings {
        var s = r.section(key)
        var t = TLSSettings(role: .client)
        t.insecure = s.bool("insecure", default: false)
        t.insecureSkipVerify = s.bool("insecure_skip_verify", default: false)
        t.caFile = s.optionalString("ca_file")
        t.caPEM = s.optionalString("ca_pem")
        if t.caFile != nil && t.caPEM != nil { s.error("ca_pem", "\(s.path): set ca_file or ca_pem, not both") }
        t.includeSystemCACertsPool = s.bool("include_system_ca_certs_pool", default: false)
        t.parseMaterial(&s)
        t.serverNameOverride = s.optionalString("server_name_override")
        t.parseVersions(&s)
        if (t.certificate == nil) != (t.privateKey == nil) {
            s.error(
                t.certificate == nil ? (t.keyFile != nil ? "key_file" : "key_pem") : (t.certFile != nil ? "cert_file" : "cert_pem"),
                "\(s.path): cert_file and key_file go together (a client certificate needs its key)")
        }
        if s.has("client_ca_file") {
            s.error("client_ca_file", "\(s.qualified("client_ca_file")) is a server setting (receivers); an exporter verifies its server with ca_file")
        }
        t.check(&s)
        s.finish()
        return t
    }

    private mutating func parseVersions(_ s: inout ConfigReader) {
        let names = Version.allCases.map(\.rawValue)
        if s.has("min_version") { minVersion = Version(rawValue: s.choice("min_version", names, default: "1.2"))! }
        if s.has("max_version") { maxVersion = Version(rawValue: s.choice("max_version", names, default: "1.3"))! }
        if let maxVersion, maxVersion < minVersion {
            s.error("max_version", "\(s.qualified("max_version")) (\(maxVersion.rawValue)) is below min_version (\(minVersion.rawValue))")
        }
    }

    private mutating func parseMaterial(_ s: inout ConfigReader) {
        certFile = s.optionalString("cert_file")
        keyFile = s.optionalString("key_file")
        certPEM = s.optionalString("cert_pem")
        keyPEM = s.optionalString("key_pem").map(Secret.init)
        if certFile != nil && certPEM != nil { s.error("cert_pem", "\(s.path): set cert_file or cert_pem, not both") }
        if keyFile != nil && keyPEM != nil { s.error("key_pem", "\(s.path): set key_file or key_pem, not both") }
    }

    /// Loads every certificate and key now, so that problems point at the key that names them; then
    /// builds a context, which catches a key that does not match its certificate.
    func check(_ s: inout ConfigReader) {
        var ok = true
        for (material, isKey) in [(certificate, false), (privateKey, true), (ca, false), (clientCA, false)] {
            guard let material else { continue }
            do throws(TLSSetupError) {
                if isKey { _ = try Self.loadPrivateKey(material) } else { _ = try Self.loadCertificates(material) }
            } catch {
                ok = false
                s.error(material.key, "\(s.qualified(material.key)): \(error)")
            }
        }
        guard ok, certificate != nil, privateKey != nil else { return }
        do throws(TLSSetupError) {
            _ = try makeContext()
        } catch {
            s.error(nil, "\(s.path): \(error)")
        }
    }

    /// One certificate bundle or key: from a file or inline, with the config key that names it.
    struct Material {
        enum Source {
            case file(String)
            case inline(String)
        }

        var key: String
        var source: Source

        /// For messages: the file's path, never inline content.
        var description: String {
            switch source {
            case .file(let path): return "\(key) '\(path)'"
            case .inline: return key
            }
        }
    }

    var certificate: Material? {
        certFile.map { Material(key: "cert_file", source: .file($0)) } ?? certPEM.map { Material(key: "cert_pem", source: .inline($0)) }
    }
    var privateKey: Material? {
        keyFile.map { Material(key: "key_file", source: .file($0)) } ?? keyPEM.map { Material(key: "key_pem", source: .inline($0.value)) }
    }
    var ca: Material? {
        caFile.map { Material(key: "ca_file", source: .file($0)) } ?? caPEM.map { Material(key: "ca_pem", source: .inline($0)) }
    }
    var clientCA: Material? { clientCAFile.map { Material(key: "client_ca_file", source: .file($0)) } }

    // MARK: Building

    /// The swift-nio-ssl configuration for this block; files are read now.
    /// `applicationProtocols` are the ALPN names to offer (`h2` for gRPC).
    public func makeConfiguration(applicationProtocols: [String] = []) throws(TLSSetupError) -> TLSConfiguration {
        var c: TLSConfiguration
        switch role {
        case .server:
            guard let certificate, let privateKey else { throw TLSSetupError("a server needs both cert_file and key_file") }
            let chain = try Self.loadCertificates(certificate)
            let key = try Self.loadPrivateKey(privateKey)
            c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            if let clientCA {
                c.trustRoots = .certificates(try Self.loadCertificates(clientCA))
                // A client certificate is then required (BoringSSL's SSL_VERIFY_FAIL_IF_NO_PEER_CERT); its
                // name is not checked, as in Go's tls.RequireAndVerifyClientCert.
                c.certificateVerification = .noHostnameVerification
            } else {
                c.certificateVerification = .none
            }
        case .client:
            c = TLSConfiguration.makeClientConfiguration()
            if let ca {
                let roots = try Self.loadCertificates(ca)
                if includeSystemCACertsPool {
                    c.trustRoots = .default
                    c.additionalTrustRoots = [.certificates(roots)]
                } else {
                    c.trustRoots = .certificates(roots)
                }
            }
            if let certificate, let privateKey {
                c.certificateChain = try Self.loadCertificates(certificate).map { .certificate($0) }
                c.privateKey = .privateKey(try Self.loadPrivateKey(privateKey))
            }
            c.certificateVerification = insecureSkipVerify ? .none : .fullVerification
        }
        c.minimumTLSVersion = minVersion.nio
        c.maximumTLSVersion = maxVersion?.nio
        c.applicationProtocols = applicationProtocols
        return c
    }

    /// A ready context; building one validates the whole block (e.g. that the key matches the certificate).
    public func makeContext(applicationProtocols: [String] = []) throws(TLSSetupError) -> NIOSSLContext {
        let c = try makeConfiguration(applicationProtocols: applicationProtocols)
        do {
            return try NIOSSLContext(configuration: c)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL's SSL_CTX_use_PrivateKey refuses a key that does not belong to the certificate.
            throw TLSSetupError("\(privateKey?.description ?? "key_file") is not the private key of \(certificate?.description ?? "cert_file")")
        } catch {
            throw TLSSetupError("cannot set up TLS with \(describeFiles()): \(error)")
        }
    }

    /// The name a client checks the server certificate against and sends in SNI: `server_name_override`,
    /// else `host` unless it is an IP address (then the certificate's IP SANs are checked).
    public func serverHostname(for host: String) -> String? {
        if let serverNameOverride, !serverNameOverride.isEmpty { return serverNameOverride }
        return IPAddressText.isLiteral(host) ? nil : host
    }

    private func describeFiles() -> String {
        [certificate, privateKey, ca, clientCA].compactMap { $0?.description }.joined(separator: ", ")
    }

    static func loadCertificates(_ m: Material) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        switch m.source {
        case .file(let path):
            try checkReadable(path, what: "certificate file")
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw TLSSetupError("'\(path)' is not a PEM certificate file (\(error))")
            }
            if certificates.isEmpty { throw TLSSetupError("'\(path)' holds no PEM certificate") }
        case .inline(let text):
            do {
                certificates = try NIOSSLCertificate.fromPEMBytes(Array(text.utf8))
            } catch {
                throw TLSSetupError("not a PEM certificate (\(error))")
            }
            if certificates.isEmpty { throw TLSSetupError("holds no PEM certificate") }
        }
        return certificates
    }

    /// Errors never include the key's bytes.
    static func loadPrivateKey(_ m: Material) throws(TLSSetupError) -> NIOSSLPrivateKey {
        switch m.source {
        case .file(let path):
            try checkReadable(path, what: "key file")
            do {
                return try NIOSSLPrivateKey(file: path, format: .pem)
            } catch {
                throw TLSSetupError("'\(path)' is not a PEM private key file (\(error))")
            }
        case .inline(let text):
            do {
                return try NIOSSLPrivateKey(bytes: Array(text.utf8), format: .pem)
            } catch {
                throw TLSSetupError("not a PEM private key (\(error))")
            }
        }
    }

    /// A clearer message than BoringSSL's for the usual mistakes (wrong path, permissions).
    private static func checkReadable(_ path: String, what: String) throws(TLSSetupError) {
        if path.isEmpty { throw TLSSetupError("the \(what) path is empty") }
        if access(path, R_OK) != 0 {
            let reason = String(cString: strerror(errno))
            throw TLSSetupError("cannot read \(what) '\(path)': \(reason)")
        }
    }
}

/// A `tls` block could not be turned into a working TLS setup; the message names the file.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Recognises IPv4 and IPv6 literals (which TLS clients must not send in SNI, RFC 6066 §3).
enum IPAddressText {
    static func isLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
