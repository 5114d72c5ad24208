import NIOCore
import NIOEmbedded
import NIOSSL
import SextantIstio
import Testing

@testable import SextantProxy

/// `DestinationRule` TLS origination (`SIMPLE`, `MUTUAL`): real BoringSSL handshakes between in-memory
/// channels, the proxy's client handlers against a plain NIOSSL server, with the throwaway PKI of
/// `Tests/SextantSecurityTests/Fixtures` (server certificate for localhost / 127.0.0.1).
@Suite struct OriginationTLSTests {
    static let fixtures = "/" + #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/SextantSecurityTests/Fixtures"
    static func path(_ name: String) -> String { "\(fixtures)/\(name)" }

    /// A TLS server as an upstream would run it; `requireClientCertificate` makes it MUTUAL-only.
    static func serverContext(requireClientCertificate: Bool) throws -> NIOSSLContext {
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(path("server.crt")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: path("server.key"), format: .pem)))
        if requireClientCertificate {
            c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path("ca.crt")))
            c.certificateVerification = .noHostnameVerification
        }
        return try NIOSSLContext(configuration: c)
    }

    /// Runs one handshake; returns the client's verdict (nil principal on success) or its error, and
    /// whether the server kept the connection (TLS 1.3: a refused client certificate shows only there).
    static func exchange(_ tls: ClientTLSSettings, host: String, requireClientCertificate: Bool) throws -> (Result<String?, any Error>, Bool) {
        let origination = OriginationTLS(tls, host: host)
        let (cssl, check) = try origination.clientHandlers(protocol: .http1)
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandlers([cssl, check])
        try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: try serverContext(requireClientCertificate: requireClientCertificate)))
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        let verdict = check.handshake(on: client.eventLoop)
        try MeshTLSTests.pump(client, server)
        let serverAccepted = server.isActive
        client.close(promise: nil)
        server.close(promise: nil)
        client.embeddedEventLoop.advanceTime(by: .seconds(10))
        server.embeddedEventLoop.advanceTime(by: .seconds(10))
        // Decided by now: the handshake completed, or failed and closing the channel failed the promise.
        return (Result { try verdict.wait() }, serverAccepted)
    }

    static func handshake(_ tls: ClientTLSSettings, host: String = "localhost", requireClientCertificate: Bool = false) throws -> Result<String?, any Error> {
        try exchange(tls, host: host, requireClientCertificate: requireClientCertificate).0
    }

    static func simple(ca: String = "ca.crt") -> ClientTLSSettings {
        var t = ClientTLSSettings(mode: .simple)
        t.caCertificates = path(ca)
        return t
    }

    @Test func simpleVerifiesTheChainAndTheSNIName() throws {
        #expect(try Self.handshake(Self.simple()).get() == nil)
        // The certificate is for localhost: another destination host fails the name check.
        #expect(throws: (any Error).self) { try Self.handshake(Self.simple(), host: "reviews.example").get() }
        // `sni` replaces the host as the name sent and checked.
        var sni = Self.simple()
        sni.sni = "localhost"
        #expect(try Self.handshake(sni, host: "reviews.example").get() == nil)
    }

    @Test func aCertificateFromAnotherCAFailsWithCertificateVerifyFailed() throws {
        let result = try Self.handshake(Self.simple(ca: "other-ca.crt"))
        guard case .failure(let error) = result else {
            Issue.record("the handshake succeeded")
            return
        }
        #expect(UpstreamTLSError(error).reason == "CERTIFICATE_VERIFY_FAILED", "\(error)")
    }

    @Test func subjectAltNamesReplaceTheNameCheck() throws {
        var t = Self.simple()
        t.subjectAltNames = ["127.0.0.1"]
        #expect(try Self.handshake(t, host: "reviews.example").get() == nil)
        t.subjectAltNames = ["spiffe://cluster.local/ns/default/sa/other", "other.example"]
        let result = try Self.handshake(t)
        guard case .failure(let error) = result else {
            Issue.record("a certificate without the wanted SAN was accepted")
            return
        }
        #expect(UpstreamTLSError(error).reason == "CERTIFICATE_VERIFY_FAILED", "\(error)")
    }

    @Test func insecureSkipVerifyAcceptsAnUnknownCA() throws {
        var t = Self.simple(ca: "other-ca.crt")
        t.insecureSkipVerify = true
        #expect(try Self.handshake(t, host: "anything.example").get() == nil)
    }

    @Test func mutualPresentsTheClientCertificate() throws {
        var t = Self.simple()
        t.mode = .mutual
        t.clientCertificate = Self.path("client.crt")
        t.privateKey = Self.path("client.key")
        let (verdict, accepted) = try Self.exchange(t, host: "localhost", requireClientCertificate: true)
        #expect(try verdict.get() == nil)
        #expect(accepted)
        // SIMPLE toward the same server has no certificate to present: the server refuses it.
        let (_, acceptedWithout) = try Self.exchange(Self.simple(), host: "localhost", requireClientCertificate: true)
        #expect(!acceptedWithout)
    }

    @Test func unreadableFilesFailTheConnectionNotTheProxy() {
        var t = ClientTLSSettings(mode: .simple)
        t.caCertificates = "/nonexistent/ca.pem"
        #expect(throws: (any Error).self) { _ = try OriginationTLS(t, host: "x").clientHandlers(protocol: .http1) }
    }

    @Test func originationEndpointsArePooledApartPerCluster() {
        let e = Endpoint(address: "10.0.0.1", port: 443, labels: ["security.istio.io/tlsMode": "istio"], weight: 1, serviceAccount: nil)
        let t = Self.simple()
        let o = OriginationTLS(t, host: "ext.example")
        let a = EndpointState(e, policy: t, autoMTLS: true, origination: o, clusterName: "outbound|443||a")
        let b = EndpointState(e, policy: t, autoMTLS: true, origination: o, clusterName: "outbound|443||b")
        #expect(a.origination != nil && a.meshTLS == nil)
        #expect(a.poolKey != b.poolKey && a.poolKey != EndpointState(e, policy: nil, autoMTLS: false).poolKey)
    }

    @Test func subjectAltNameMatching() {
        #expect(OriginationTLS.matches(.dns("*.example.com"), anyOf: ["api.example.com"]))
        #expect(!OriginationTLS.matches(.dns("*.example.com"), anyOf: ["a.b.example.com", "example.com"]))
        #expect(OriginationTLS.matches(.dns("API.example.com"), anyOf: ["api.example.com"]))
        #expect(OriginationTLS.matches(.ip([127, 0, 0, 1]), anyOf: ["127.0.0.1"]))
        #expect(OriginationTLS.matches(.uri("spiffe://td/ns/a/sa/b"), anyOf: ["spiffe://td/ns/a/sa/b"]))
        #expect(!OriginationTLS.matches(.uri("spiffe://td/ns/a/sa/b"), anyOf: ["spiffe://td/ns/a/sa/c"]))
        #expect(OriginationTLS(ClientTLSSettings(mode: .simple), host: "10.0.0.1").serverName == nil)
    }
}
