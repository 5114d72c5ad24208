import NIOCore
import NIOSSL
import NIOTLS
import SextantIstio
import Synchronization
import X509

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

enum UpstreamTLSProtocol { case http1, http2, tcp }

/// Sits behind a `NIOSSLHandler`: when the handshake completes (the chain already verified against the
/// mesh root), takes the peer certificate's SPIFFE URI SAN and checks it — one of `accepting` when
/// given (`subjectAltNames`), else any identity of the trust domain. A peer without an acceptable
/// identity is disconnected. `principal` then names the peer for telemetry; `handshake` completes with
/// it (or fails), which upstream connections wait for before they are used.
final class MeshPeerIdentityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let accepting: [String]
    let trustDomain: String
    private(set) var principal: String?
    private var promise: EventLoopPromise<String>?
    private var context: ChannelHandlerContext?
    private var failure: (any Error)?

    init(accepting: [String], trustDomain: String) {
        self.accepting = accepting
        self.trustDomain = trustDomain
    }

    /// Completes with the peer's SPIFFE ID once the handshake is done and the identity accepted.
    func handshake(on loop: any EventLoop) -> EventLoopFuture<String> {
        if let principal { return loop.makeSucceededFuture(principal) }
        if let failure { return loop.makeFailedFuture(failure) }
        let p = promise ?? loop.makePromise(of: String.self)
        promise = p
        return p.futureResult
    }

    /// The handshake took too long: fails it and closes the connection (no-op once it completed).
    func timedOut() {
        guard principal == nil, failure == nil, let context else { return }
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
            let ids = peer.map(MeshCredentials.spiffeIDs(of:)) ?? []
            guard let id = ids.first(where: accepts) else {
                let found = ids.isEmpty ? "no SPIFFE identity" : ids.joined(separator: ",")
                let wanted = accepting.isEmpty ? "an identity of trust domain \(trustDomain)" : accepting.joined(separator: ",")
                fail(context, MeshTLSError("peer certificate has \(found), expected \(wanted)"))
                return
            }
            principal = id
            promise?.succeed(id)
            promise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if principal == nil {
            fail(context, error)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if principal == nil && failure == nil { failure = MeshTLSError("connection closed during the TLS handshake") }
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
