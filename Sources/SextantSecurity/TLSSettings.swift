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
    /// Client: the CA bundle that verifies servers (the system roots when absent).
    public var caFile: String?
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
        t.certFile = s.optionalString("cert_file")
        t.keyFile = s.optionalString("key_file")
        t.clientCAFile = s.optionalString("client_ca_file")
        t.parseVersions(&s)
        if t.certFile == nil || t.keyFile == nil {
            s.error(nil, "\(s.path): a server needs both cert_file and key_file")
        }
        for (k, hint) in [
            ("ca_file", "use client_ca_file to verify client certificates"), ("insecure", "a receiver without tls is plaintext"),
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
        t.certFile = s.optionalString("cert_file")
        t.keyFile = s.optionalString("key_file")
        t.serverNameOverride = s.optionalString("server_name_override")
        t.parseVersions(&s)
        if (t.certFile == nil) != (t.keyFile == nil) {
            s.error(t.certFile == nil ? "key_file" : "cert_file", "\(s.path): cert_file and key_file go together (a client certificate needs its key)")
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

    /// Loads every named file now, so that problems point at the key that names the file; then builds
    /// a context, which catches a key that does not match its certificate.
    private func check(_ s: inout ConfigReader) {
        var ok = true
        for (key, path, kind) in [
            ("cert_file", certFile, FileKind.certificates), ("key_file", keyFile, .privateKey), ("ca_file", caFile, .certificates),
            ("client_ca_file", clientCAFile, .certificates),
        ] {
            guard let path else { continue }
            do throws(TLSSetupError) {
                switch kind {
                case .certificates: _ = try Self.loadCertificates(path, key: key)
                case .privateKey: _ = try Self.loadPrivateKey(path)
                }
            } catch {
                ok = false
                s.error(key, "\(s.qualified(key)): \(error)")
            }
        }
        guard ok, certFile != nil, keyFile != nil else { return }
        do throws(TLSSetupError) {
            _ = try makeContext()
        } catch {
            s.error(nil, "\(s.path): \(error)")
        }
    }

    private enum FileKind {
        case certificates
        case privateKey
    }

    // MARK: Building

    /// The swift-nio-ssl configuration for this block; files are read now.
    /// `applicationProtocols` are the ALPN names to offer (`h2` for gRPC).
    public func makeConfiguration(applicationProtocols: [String] = []) throws(TLSSetupError) -> TLSConfiguration {
        var c: TLSConfiguration
        switch role {
        case .server:
            guard let certFile, let keyFile else { throw TLSSetupError("a server needs both cert_file and key_file") }
            let chain = try Self.loadCertificates(certFile, key: "cert_file")
            let key = try Self.loadPrivateKey(keyFile)
            c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            if let clientCAFile {
                c.trustRoots = .certificates(try Self.loadCertificates(clientCAFile, key: "client_ca_file"))
                // A client certificate is then required (BoringSSL's SSL_VERIFY_FAIL_IF_NO_PEER_CERT); its
                // name is not checked, as in Go's tls.RequireAndVerifyClientCert.
                c.certificateVerification = .noHostnameVerification
            } else {
                c.certificateVerification = .none
            }
        case .client:
            c = TLSConfiguration.makeClientConfiguration()
            if let caFile { c.trustRoots = .certificates(try Self.loadCertificates(caFile, key: "ca_file")) }
            if let certFile, let keyFile {
                c.certificateChain = try Self.loadCertificates(certFile, key: "cert_file").map { .certificate($0) }
                c.privateKey = .privateKey(try Self.loadPrivateKey(keyFile))
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
            throw TLSSetupError("key_file '\(keyFile ?? "")' is not the private key of cert_file '\(certFile ?? "")'")
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
        [("cert_file", certFile), ("key_file", keyFile), ("ca_file", caFile), ("client_ca_file", clientCAFile)]
            .compactMap { k, v in v.map { "\(k) '\($0)'" } }.joined(separator: ", ")
    }

    static func loadCertificates(_ path: String, key: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        try checkReadable(path, what: "certificate file")
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw TLSSetupError("'\(path)' is not a PEM certificate file (\(error))")
        }
        if certificates.isEmpty { throw TLSSetupError("'\(path)' holds no PEM certificate") }
        return certificates
    }

    static func loadPrivateKey(_ path: String) throws(TLSSetupError) -> NIOSSLPrivateKey {
        try checkReadable(path, what: "key file")
        do {
            return try NIOSSLPrivateKey(file: path, format: .pem)
        } catch {
            // The error never includes the key's bytes.
            throw TLSSetupError("'\(path)' is not a PEM private key file (\(error))")
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
