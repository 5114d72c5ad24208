import Crypto
import Foundation
import X509

/// A local mesh root CA and workload certificates with SPIFFE identities, as istiod's CA issues them:
/// an ECDSA P-256 root (`O=cluster.local`), and per workload a leaf whose only name is the URI SAN
/// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` (critical, empty subject), usable
/// for both server and client authentication. Used by `sextant ca`, the demo and tests.
public struct MeshCertificateAuthority: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// A new self-signed root valid from an hour ago for `validity`.
    public init(trustDomain: String = SPIFFEIdentity.defaultTrustDomain, validity: Duration = .seconds(10 * 365 * 86400)) throws {
        key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName("sextant mesh root CA")
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now - 3600, notValidAfter: now + Double(validity.components.seconds), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
    }

    /// A workload certificate and its new private key for `identity` (a SPIFFE ID).
    public func issue(identity: String, validity: Duration = .seconds(365 * 86400)) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let leafKey = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(leafKey.publicKey)
        let now = Date()
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now - 3600, notValidAfter: now + Double(validity.components.seconds), issuer: certificate.subject,
            subject: DistinguishedName(), signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity)]))
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return (cert, leafKey)
    }

    /// PEM text of a certificate.
    public static func pem(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString
    }

    /// Writes `root-cert.pem` (the root certificate) and, per identity, `<name>/cert-chain.pem` (leaf then
    /// root, Istio's file names), `<name>/key.pem` and `<name>/root-cert.pem`, where `<name>` is the
    /// identity's service account. Files holding keys are created with mode 0600. Returns the directories
    /// by identity.
    @discardableResult
    public static func generate(directory: String, identities: [String]) throws -> [String: String] {
        let ca = try MeshCertificateAuthority()
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let root = try pem(ca.certificate)
        try write(root, to: "\(directory)/root-cert.pem", mode: 0o644)
        var out: [String: String] = [:]
        for identity in identities {
            guard let id = SPIFFEIdentity(identity) else { throw MeshTLSError("'\(identity)' is not a SPIFFE ID (spiffe://<trust domain>/ns/<namespace>/sa/<service account>)") }
            let (cert, key) = try ca.issue(identity: identity)
            let dir = "\(directory)/\(id.serviceAccount ?? id.path.replacingOccurrences(of: "/", with: "_"))"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try write(try pem(cert) + "\n" + root, to: "\(dir)/cert-chain.pem", mode: 0o644)
            try write(key.pemRepresentation + "\n", to: "\(dir)/key.pem", mode: 0o600)
            try write(root, to: "\(dir)/root-cert.pem", mode: 0o644)
            out[identity] = dir
        }
        return out
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
        guard fm.createFile(atPath: path, contents: Data((text.hasSuffix("\n") ? text : text + "\n").utf8), attributes: [.posixPermissions: mode]) else {
            throw MeshTLSError("cannot write \(path)")
        }
    }
}

/// A SPIFFE ID (`spiffe://<trust domain>/<path>`); Istio's workload path is `ns/<namespace>/sa/<service account>`.
public struct SPIFFEIdentity: Sendable, Hashable, CustomStringConvertible {
    public static let defaultTrustDomain = "cluster.local"
    public var trustDomain: String
    public var path: String

    public init?(_ uri: String) {
        guard uri.hasPrefix("spiffe://") else { return nil }
        let rest = uri.dropFirst("spiffe://".count)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else { return nil }
        trustDomain = String(rest[..<slash])
        path = String(rest[rest.index(after: slash)...])
        guard !path.isEmpty else { return nil }
    }

    public init(trustDomain: String = defaultTrustDomain, namespace: String, serviceAccount: String) {
        self.trustDomain = trustDomain
        self.path = "ns/\(namespace)/sa/\(serviceAccount)"
    }

    public var description: String { "spiffe://\(trustDomain)/\(path)" }

    /// The service account of an Istio workload identity.
    public var serviceAccount: String? {
        let parts = path.split(separator: "/")
        return parts.count == 4 && parts[0] == "ns" && parts[2] == "sa" ? String(parts[3]) : nil
    }
}

/// A mesh TLS problem: bad credentials at start, or a peer whose identity is not accepted.
public struct MeshTLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
