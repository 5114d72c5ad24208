import NIOCore
import NIOSSL
import NIOTLS
import SextantIstio
import Synchronization
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The mesh credentials in force, replaced when the files change (Istio rotates workload certificates):
/// new connections use the new ones, established connections keep theirs.
final class MeshCredentialsStore: Sendable {
    private let credentials: Mutex<MeshCredentials>
    let certificatePath: String
    let keyPath: String
    let caPath: String

    init(certificatePath: String, keyPath: String, caPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.caPath = caPath
        credentials = Mutex(try MeshCredentials(certificatePath: certificatePath, keyPath: keyPath, caPath: caPath))
    }

    var current: MeshCredentials { credentials.withLock { $0 } }

    /// Re-reads the files; on error the credentials in force stay.
    func reload() throws {
        let fresh = try MeshCredentials(certificatePath: certificatePath, keyPath: keyPath, caPath: caPath)
        credentials.withLock { $0 = fresh }
    }
}

/// The proxy's mesh credentials (`--cert`, `--key`, `--ca`): its SPIFFE certificate chain and key and
/// the mesh root CA, as TLS contexts for both roles of proxy-to-proxy mutual TLS. Both sides verify the
/// peer's chain against the root, then its SPIFFE URI SAN (`MeshPeerIdentityHandler`).
public final class MeshCredentials: Sendable {
    /// This proxy's identity, the URI SAN of its certificate (`source_principal` of its calls).
    public let principal: String
    let trustDomain: String
    /// Inbound: a client certificate is required (`noHostnameVerification` makes BoringSSL ask for one
    /// and fail the handshake without it).
    let server: NIOSSLContext
    /// Outbound, by upstream protocol: Istio's ALPN for mesh mTLS puts `istio-peer-exchange` and `istio`
    /// before the application protocol.
    let http1Client: NIOSSLContext
    let http2Client: NIOSSLContext
    let tcpClient: NIOSSLContext

    public init(certificatePath: String, keyPath: String, caPath: String) throws {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        guard let leaf = chain.first else { throw MeshTLSError("\(certificatePath): no certificate") }
        let roots = try NIOSSLCertificate.fromPEMFile(caPath)
        guard !roots.isEmpty else { throw MeshTLSError("\(caPath): no certificate") }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        guard let id = Self.spiffeIDs(of: leaf).first, let spiffe = SPIFFEIdentity(id) else {
            throw MeshTLSError("\(certificatePath): the certificate has no SPIFFE URI SAN (spiffe://...)")
        }
        principal = id
        trustDomain = spiffe.trustDomain
        func config(_ alpn: [String]) -> TLSConfiguration {
            var c = TLSConfiguration.makeServerConfigurationWithMTLS(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates(roots))
            c.minimumTLSVersion = .tlsv12
            c.applicationProtocols = alpn
            return c
        }
        server = try NIOSSLContext(configuration: config(["h2", "http/1.1", "istio-peer-exchange", "istio"]))
        http1Client = try NIOSSLContext(configuration: config(["istio-peer-exchange", "istio", "http/1.1"]))
        http2Client = try NIOSSLContext(configuration: config(["istio-peer-exchange", "istio", "h2"]))
        tcpClient = try NIOSSLContext(configuration: config(["istio-peer-exchange", "istio"]))
    }

    /// The SPIFFE URI SANs of a certificate (none if it cannot be parsed).
    static func spiffeIDs(of certificate: NIOSSLCertificate) -> [String] {
        guard let der = try? certificate.toDERBytes(), let cert = try? Certificate(derEncoded: der),
            let names = try? cert.extensions.subjectAlternativeNames
        else { return [] }
        return names.compactMap { name in
            if case .uniformResourceIdentifier(let uri) = name, uri.hasPrefix("spiffe://") { return uri }
            return nil
        }
    }

    /// A client-side handshake for a cluster with `tls.mode: ISTIO_MUTUAL`: the SNI Istio sends
    /// (`outbound_.<port>_.<subset>_.<host>` unless `sni` is set) and the identities the server may have
    /// (`subjectAltNames`, else any of this trust domain).
    func clientHandlers(for cluster: Cluster, tls: ClientTLSSettings, protocol p: UpstreamTLSProtocol) throws -> (NIOSSLClientHandler, MeshPeerIdentityHandler) {
        let k = cluster.key
        let sni = tls.sni ?? "outbound_.\(k.port)_.\(k.subset ?? "")_.\(k.host)"
        let context: NIOSSLContext
        switch p {
        case .http1: context = http1Client
        case .http2: context = http2Client
        case .tcp: context = tcpClient
        }
        let ssl = try NIOSSLClientHandler(context: context, serverHostname: sni)
        return (ssl, MeshPeerIdentityHandler(accepting: tls.subjectAltNames, trustDomain: trustDomain))
    }

    /// Server-side handlers for an inbound connection whose first byte was a TLS record.
    func serverHandlers() -> (NIOSSLServerHandler, MeshPeerIdentityHandler) {
        (NIOSSLServerHandler(context: server), MeshPeerIdentityHandler(accepting: [], trustDomain: trustDomain))
    }
}

enum UpstreamTLSProtocol: Hashable { case http1, http2, tcp }

/// Sits behind a `NIOSSLHandler`: when the handshake completes (the chain already verified by BoringSSL),
/// checks the peer certificate's names. Mesh mTLS takes its SPIFFE URI SAN — one of `accepting` when
/// given (`subjectAltNames`), else any identity of the trust domain — and `principal` then names the
/// peer for telemetry. TLS origination (`SIMPLE`/`MUTUAL`) requires one of the rule's `subjectAltNames`
/// (DNS, URI or IP) when it lists any, and has no principal. A peer that fails the check is
/// disconnected; `handshake` completes (or fails) once this is decided, which upstream connections wait
/// for before they are used.
final class MeshPeerIdentityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let accepting: [String]
    let trustDomain: String
    /// Origination: any SAN of the upstream certificate must equal one of `accepting` (none: no check).
    let isOrigination: Bool
    private(set) var principal: String?
    private var completed = false
    private var promise: EventLoopPromise<String?>?
    private var context: ChannelHandlerContext?
    private var failure: (any Error)?

    init(accepting: [String], trustDomain: String) {
        self.accepting = accepting
        self.trustDomain = trustDomain
        self.isOrigination = false
    }

    /// For TLS origination: the upstream certificate must present one of `subjectAltNames` (if any).
    init(originationSubjectAltNames subjectAltNames: [String]) {
        self.accepting = subjectAltNames
        self.trustDomain = ""
        self.isOrigination = true
    }

    /// Completes once the handshake is done and the peer accepted: with the peer's SPIFFE ID for mesh
    /// mTLS, nil for TLS origination.
    func handshake(on loop: any EventLoop) -> EventLoopFuture<String?> {
        if completed { return loop.makeSucceededFuture(principal) }
        if let failure { return loop.makeFailedFuture(failure) }
        let p = promise ?? loop.makePromise(of: String?.self)
        promise = p
        return p.futureResult
    }

    /// The handshake took too long: fails it and closes the connection (no-op once it completed).
    func timedOut() {
        guard !completed, failure == nil, let context else { return }
        fail(context, MeshTLSError("TLS handshake timed out"))
    }

    func accepts(_ id: String) -> Bool {
        if !accepting.isEmpty { return accepting.contains(id) }
        return SPIFFEIdentity(id)?.trustDomain == trustDomain
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            let peer = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self).peerCertificate
            if isOrigination {
                let names = peer.map(OriginationTLS.subjectAltNames(of:)) ?? []
                guard accepting.isEmpty || names.contains(where: { OriginationTLS.matches($0, anyOf: accepting) }) else {
                    // Envoy reports a SAN mismatch as a failed certificate verification.
                    fail(context, MeshTLSError("CERTIFICATE_VERIFY_FAILED: the upstream certificate names \(names.map(\.text)), none of \(accepting)"))
                    return
                }
                completed = true
                promise?.succeed(nil)
                promise = nil
                context.fireUserInboundEventTriggered(event)
                return
            }
            let ids = peer.map(MeshCredentials.spiffeIDs(of:)) ?? []
            guard let id = ids.first(where: accepts) else {
                let found = ids.isEmpty ? "no SPIFFE identity" : ids.joined(separator: ",")
                let wanted = accepting.isEmpty ? "an identity of trust domain \(trustDomain)" : accepting.joined(separator: ",")
                fail(context, MeshTLSError("peer certificate has \(found), expected \(wanted)"))
                return
            }
            principal = id
            completed = true
            promise?.succeed(id)
            promise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !completed {
            fail(context, error)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !completed && failure == nil { failure = MeshTLSError("connection closed during the TLS handshake") }
        if let failure { promise?.fail(failure) }
        promise = nil
        context.fireChannelInactive()
    }

    private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
        if failure == nil { failure = error }
        promise?.fail(error)
        promise = nil
        context.close(promise: nil)
    }

    /// The principal of the mesh TLS peer of `context`'s connection (an HTTP/2 stream looks at its
    /// parent), nil on plain-text connections.
    static func principal(of context: ChannelHandlerContext) -> String? {
        if let h = try? context.pipeline.syncOperations.handler(type: MeshPeerIdentityHandler.self) { return h.principal }
        guard let parent = context.channel.parent else { return nil }
        // A stream channel and its parent connection share an event loop.
        return try? parent.pipeline.syncOperations.handler(type: MeshPeerIdentityHandler.self).principal
    }
}

@available(*, unavailable)
extension MeshPeerIdentityHandler: Sendable {}

/// TLS origination for one cluster whose `DestinationRule` says `tls.mode: SIMPLE` or `MUTUAL`: client
/// contexts built from the rule's files on first use (so proxy start stays fast and an unreadable file
/// fails that cluster's connections, not the proxy), one per upstream protocol for ALPN.
///
/// Verification, as Istio's defaults (`VERIFY_CERTIFICATE_AT_CLIENT`, `ENABLE_AUTO_SNI`) do it: the chain
/// against `caCertificates` (else the system roots); then the certificate must name one of
/// `subjectAltNames` when given, else the SNI name (an IP SAN for an IP destination); `insecureSkipVerify`
/// skips both. SNI is `sni`, else the destination host (not an IP address). The name check is ours, not
/// swift-nio-ssl's, which would also accept any certificate naming the connected IP address.
final class OriginationTLS: Sendable {
    let settings: ClientTLSSettings
    let serverName: String?
    /// The names the upstream certificate must present one of (empty: no name check).
    let verifyNames: [String]
    private let contexts = Mutex<[UpstreamTLSProtocol: NIOSSLContext]>([:])

    init(_ settings: ClientTLSSettings, host: String) {
        self.settings = settings
        let name = settings.sni ?? host
        serverName = name.isEmpty || Self.ipAddressBytes(name) != nil ? nil : name
        if settings.insecureSkipVerify {
            verifyNames = []
        } else if !settings.subjectAltNames.isEmpty {
            verifyNames = settings.subjectAltNames
        } else {
            verifyNames = name.isEmpty ? [] : [name]
        }
    }

    /// The handlers for one new connection; throws when the rule's files cannot be loaded.
    func clientHandlers(protocol p: UpstreamTLSProtocol) throws -> (NIOSSLClientHandler, MeshPeerIdentityHandler) {
        let context = try contexts.withLock { cache in
            if let c = cache[p] { return c }
            let c = try NIOSSLContext(configuration: configuration(p))
            cache[p] = c
            return c
        }
        let ssl = try NIOSSLClientHandler(context: context, serverHostname: serverName)
        let check = MeshPeerIdentityHandler(originationSubjectAltNames: verifyNames)
        return (ssl, check)
    }

    func configuration(_ p: UpstreamTLSProtocol) throws -> TLSConfiguration {
        var c = TLSConfiguration.makeClientConfiguration()
        c.minimumTLSVersion = .tlsv12
        if let ca = settings.caCertificates {
            let roots = try NIOSSLCertificate.fromPEMFile(ca)
            guard !roots.isEmpty else { throw MeshTLSError("caCertificates '\(ca)' holds no PEM certificate") }
            c.trustRoots = .certificates(roots)
        }
        if settings.mode == .mutual, let cert = settings.clientCertificate, let key = settings.privateKey {
            c.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        // The chain is BoringSSL's to verify; the names are `MeshPeerIdentityHandler`'s (`verifyNames`).
        c.certificateVerification = settings.insecureSkipVerify ? .none : .noHostnameVerification
        switch p {
        case .http1: c.applicationProtocols = ["http/1.1"]
        case .http2: c.applicationProtocols = ["h2"]
        case .tcp: c.applicationProtocols = []
        }
        return c
    }

    /// A subject alternative name of a certificate, as configured names are compared with it.
    enum Name: Equatable {
        case dns(String)
        case uri(String)
        case ip([UInt8])

        var text: String {
            switch self {
            case .dns(let s), .uri(let s): return s
            case .ip(let b): return b.count == 4 ? b.map(String.init).joined(separator: ".") : b.map { String($0, radix: 16) }.joined(separator: ":")
            }
        }
    }

    static func subjectAltNames(of certificate: NIOSSLCertificate) -> [Name] {
        guard let der = try? certificate.toDERBytes(), let cert = try? Certificate(derEncoded: der),
            let names = try? cert.extensions.subjectAlternativeNames
        else { return [] }
        return names.compactMap { name in
            switch name {
            case .dnsName(let d): return .dns(d)
            case .uniformResourceIdentifier(let u): return .uri(u)
            case .ipAddress(let ip): return .ip(Array(ip.bytes))
            default: return nil
            }
        }
    }

    /// Exact match, as Istio configures Envoy's SAN matchers; a DNS SAN `*.example.com` also covers one
    /// label (`a.example.com`), as Envoy's DNS matching does.
    static func matches(_ name: Name, anyOf wanted: [String]) -> Bool {
        wanted.contains { w in
            switch name {
            case .uri(let u): return u == w
            case .ip(let b): return ipAddressBytes(w) == b
            case .dns(let d):
                let d = d.lowercased()
                let w = w.lowercased()
                if d == w { return true }
                guard d.hasPrefix("*."), let dot = w.firstIndex(of: ".") else { return false }
                return w[dot...] == d.dropFirst() && dot != w.startIndex
            }
        }
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// A TLS handshake to an upstream failed (chain or name verification, protocol error, timeout):
/// Envoy's `TLS_error` connect failure, reported as 503 `UF`.
struct UpstreamTLSError: Error, CustomStringConvertible {
    /// BoringSSL's reason, e.g. `CERTIFICATE_VERIFY_FAILED`, or our own check's.
    let reason: String
    let underlying: String

    init(_ error: any Error) {
        let text = "\(error)"
        underlying = text
        // BoringSSL messages look like `error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED`;
        // the reason is the last upper-case word of that form. Our own checks start with one.
        reason = Self.reason(in: text) ?? "HANDSHAKE_FAILED"
    }

    private static func reason(in text: String) -> String? {
        let marker = "OPENSSL_internal:"
        var best: Substring?
        var rest = Substring(text)
        while let i = rest.firstRange(of: marker) {
            rest = rest[i.upperBound...]
            best = rest.prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
        }
        if let best, !best.isEmpty { return String(best) }
        let word = text.prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
        return word.count > 3 && word.contains("_") ? String(word) : nil
    }

    var description: String { "TLS_error:\(reason): \(underlying)" }
}
