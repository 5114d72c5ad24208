import Foundation
import NIOCore
import NIOEmbedded
import SextantIstio
import Testing

@testable import SextantProxy

/// The mesh CA's certificates and the proxy's mutual TLS, with BoringSSL (the verifier the proxy uses)
/// doing real handshakes between in-memory channels.
@Suite struct MeshTLSTests {
    static let productpage = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    static let reviews = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"

    static func tempDirectory() -> String {
        let dir = NSTemporaryDirectory() + "sextant-mesh-tls-\(UInt64.random(in: 0..<UInt64.max))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func credentials(_ dir: String, _ sa: String, ca: String? = nil) throws -> MeshCredentials {
        try MeshCredentials(certificatePath: "\(dir)/\(sa)/cert-chain.pem", keyPath: "\(dir)/\(sa)/key.pem", caPath: ca ?? "\(dir)/root-cert.pem")
    }

    /// Moves bytes between two in-memory TLS peers until neither has anything to send.
    static func pump(_ client: EmbeddedChannel, _ server: EmbeddedChannel) throws {
        for _ in 0..<20 {
            var moved = false
            while client.isActive, let out = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                if server.isActive { _ = try? server.writeInbound(out) }
            }
            while server.isActive, let out = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if client.isActive { _ = try? client.writeInbound(out) }
            }
            if !moved { break }
        }
    }

    static let cluster = Cluster(
        key: ClusterKey(host: "reviews.default.svc.cluster.local", port: 9080), endpoints: [], policy: TrafficPolicy(), protocolName: .http,
        serviceNamespace: "default", serviceName: "reviews")

    /// Client and server channels with the proxy's TLS handlers, bytes shuttled until both are quiet.
    final class Handshake {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let clientIdentity: MeshPeerIdentityHandler
        let serverIdentity: MeshPeerIdentityHandler

        init(client c: MeshCredentials, server s: MeshCredentials, tls: ClientTLSSettings = ClientTLSSettings(mode: .istioMutual)) throws {
            let (cssl, cid) = try c.clientHandlers(for: MeshTLSTests.cluster, tls: tls, protocol: .http1)
            let (sssl, sid) = s.serverHandlers()
            clientIdentity = cid
            serverIdentity = sid
            try client.pipeline.syncOperations.addHandlers([cssl, cid])
            try server.pipeline.syncOperations.addHandlers([sssl, sid])
            _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            _ = try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            try pump()
        }

        func pump() throws { try MeshTLSTests.pump(client, server) }

        /// Closes both sides; TLS waits for the peer's close_notify up to its shutdown timeout, which
        /// passes on the embedded loops' clock (`finish()` would wait for it forever).
        func close() {
            client.close(promise: nil)
            server.close(promise: nil)
            client.embeddedEventLoop.advanceTime(by: .seconds(10))
            server.embeddedEventLoop.advanceTime(by: .seconds(10))
        }
    }

    @Test func generatedCertificatesCarryTheSPIFFEIdentityAndChainToTheRoot() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dirs = try MeshCertificateAuthority.generate(directory: dir, identities: [Self.productpage, Self.reviews])
        #expect(dirs[Self.reviews] == "\(dir)/bookinfo-reviews")
        let pp = try Self.credentials(dir, "bookinfo-productpage")
        let rv = try Self.credentials(dir, "bookinfo-reviews")
        #expect(pp.principal == Self.productpage)
        #expect(rv.principal == Self.reviews)
        let keyMode = try FileManager.default.attributesOfItem(atPath: "\(dir)/bookinfo-reviews/key.pem")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        let h = try Handshake(client: pp, server: rv)
        #expect(h.clientIdentity.principal == Self.reviews)
        #expect(h.serverIdentity.principal == Self.productpage)
        #expect(h.client.isActive && h.server.isActive)
        h.close()
    }

    @Test func aCertificateFromAnotherCAIsRefused() throws {
        let mesh = Self.tempDirectory()
        let other = Self.tempDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: mesh)
            try? FileManager.default.removeItem(atPath: other)
        }
        try MeshCertificateAuthority.generate(directory: mesh, identities: [Self.reviews])
        try MeshCertificateAuthority.generate(directory: other, identities: [Self.productpage])
        // The intruder trusts the mesh root (so it would accept the server), but its own chain is foreign.
        let intruder = try Self.credentials(other, "bookinfo-productpage", ca: "\(mesh)/root-cert.pem")
        let h = try Handshake(client: intruder, server: try Self.credentials(mesh, "bookinfo-reviews"))
        #expect(h.serverIdentity.principal == nil)
        #expect(!h.server.isActive)
        h.close()
    }

    @Test func theServerIdentityMustMatchSubjectAltNames() throws {
        let dir = Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try MeshCertificateAuthority.generate(directory: dir, identities: [Self.productpage, Self.reviews])
        let pp = try Self.credentials(dir, "bookinfo-productpage")
        let rv = try Self.credentials(dir, "bookinfo-reviews")
        let wanted = ClientTLSSettings(mode: .istioMutual, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/bookinfo-ratings"])
        let h = try Handshake(client: pp, server: rv, tls: wanted)
        #expect(h.clientIdentity.principal == nil)
        // The client hangs up (TLS close_notify, then the socket at the latest after the shutdown timeout).
        try h.pump()
        h.client.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!h.client.isActive)
        let failure = h.clientIdentity.handshake(on: h.client.eventLoop)
        #expect(throws: MeshTLSError.self) { try failure.wait() }
        h.close()
    }

    @Test func whichEndpointsGetMeshTLS() {
        let sidecar = Endpoint(address: "10.0.0.1", port: 9080, labels: ["security.istio.io/tlsMode": "istio"], weight: 1, serviceAccount: nil)
        let bare = Endpoint(address: "10.0.0.2", port: 9080, labels: [:], weight: 1, serviceAccount: nil)
        // Auto mTLS: only toward sidecar-labelled endpoints, only when no tls setting is given.
        #expect(EndpointState(sidecar, policy: nil, autoMTLS: true).meshTLS?.mode == .istioMutual)
        #expect(EndpointState(sidecar, policy: nil, autoMTLS: true).isAutoMTLS)
        #expect(EndpointState(bare, policy: nil, autoMTLS: true).meshTLS == nil)
        #expect(EndpointState(sidecar, policy: nil, autoMTLS: false).meshTLS == nil)
        #expect(EndpointState(sidecar, policy: ClientTLSSettings(mode: .disable), autoMTLS: true).meshTLS == nil)
        // An explicit ISTIO_MUTUAL applies to every endpoint, and its connections are pooled apart.
        let explicit = EndpointState(bare, policy: ClientTLSSettings(mode: .istioMutual, sni: "x"), autoMTLS: false)
        #expect(explicit.meshTLS?.sni == "x" && !explicit.isAutoMTLS)
        #expect(explicit.poolKey != EndpointState(bare, policy: nil, autoMTLS: false).poolKey)
    }

    @Test func spiffeIdentities() {
        let id = SPIFFEIdentity(Self.reviews)
        #expect(id?.trustDomain == "cluster.local")
        #expect(id?.serviceAccount == "bookinfo-reviews")
        #expect(SPIFFEIdentity(namespace: "default", serviceAccount: "bookinfo-reviews").description == Self.reviews)
        #expect(SPIFFEIdentity("https://cluster.local/ns/a/sa/b") == nil)
        #expect(SPIFFEIdentity("spiffe://cluster.local") == nil)
        #expect(throws: MeshTLSError.self) { try MeshCertificateAuthority.generate(directory: Self.tempDirectory(), identities: ["not-a-spiffe-id"]) }
    }
}
