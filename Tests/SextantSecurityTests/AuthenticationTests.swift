import AsyncHTTPClient
import Logging
import NIOCore
import NIOSSL
import SextantCollector
import SextantModel
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import SextantSecurity

/// Polls (bounded to ~10 s) until `condition` holds.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<2000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

@Suite struct BearerTokenTests {
    @Test func acceptsOnlyTheExactHeader() async throws {
        let a = BearerTokenAuthenticator(scheme: "Bearer", token: Secret("t0k"), filename: nil, logger: Logger(label: "t"))
        try await a.start()
        let cases: [(String?, Bool)] = [("Bearer t0k", true), ("Bearer t0K", false), ("bearer t0k", false), ("t0k", false), (nil, false)]
        for (header, ok) in cases { #expect(a.authenticate { $0 == "authorization" ? header : nil } == ok, "\(header ?? "nil")") }
        #expect(a.requestHeaders().map(\.0) == ["authorization"])
        #expect(a.requestHeaders().map(\.1) == ["Bearer t0k"])
        await a.shutdown()
    }

    @Test func rereadsTheTokenFileWhenItChanges() async throws {
        let path = "/tmp/sextant-token-\(UInt32.random(in: 0...UInt32.max))"
        try write(path, "first\n")
        defer { _ = unlink(path) }
        let a = BearerTokenAuthenticator(scheme: "Bearer", token: nil, filename: path, logger: Logger(label: "t"), reloadInterval: .milliseconds(10))
        try await a.start()
        #expect(a.authenticate { _ in "Bearer first" })
        try write(path, "second-token")
        #expect(await eventually { a.authenticate { _ in "Bearer second-token" } })
        #expect(!a.authenticate { _ in "Bearer first" })
        await a.shutdown()
    }

    @Test func aMissingTokenFileStopsTheStart() async throws {
        let a = BearerTokenAuthenticator(scheme: "Bearer", token: nil, filename: "/nonexistent/token", logger: Logger(label: "t"))
        await #expect(throws: AuthSetupError.self) { try await a.start() }
    }

    func write(_ path: String, _ text: String) throws {
        let fd = open(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        // Replaced by rename, as secret volumes rotate files.
        #expect(rename(path + ".tmp", path) == 0)
    }
}

/// Two collectors over real sockets: a zipkin exporter (https, client certificate, bearer token)
/// sends to a zipkin receiver that requires all three.
@Suite struct SecureZipkinTests {
    func build(_ yaml: String, _ harness: TestHarness) async throws -> CollectorGraph {
        let registry = harness.registry(base: BuiltinComponents.registry)
        let config = try CollectorConfig.load(yaml: yaml, registry: registry)
        let g = try CollectorGraph.build(config, registry: registry, telemetry: SelfTelemetry(), logger: Logger(label: "t"))
        try await g.start()
        return g
    }

    @Test func mutualTLSAndBearerTokenEndToEnd() async throws {
        let serverSide = TestHarness()
        let server = try await build(
            """
            extensions: {bearertokenauth: {token: s3cret}}
            receivers:
              zipkin:
                endpoint: 127.0.0.1:0
                tls: {cert_file: \(PKI.path("server.crt")), key_file: \(PKI.path("server.key")), client_ca_file: \(PKI.path("ca.crt"))}
                auth: {authenticator: bearertokenauth}
            exporters: {testexp: }
            service:
              extensions: [bearertokenauth]
              pipelines: {traces: {receivers: [zipkin], exporters: [testexp]}}
            """, serverSide)
        let port = (server.nodes.first { $0.label == "receiver/zipkin" }!.component as! ZipkinReceiver).port!

        let clientSide = TestHarness()
        let client = try await build(
            """
            extensions: {bearertokenauth/out: {token: s3cret}}
            receivers: {testrecv: }
            exporters:
              zipkin:
                endpoint: https://localhost:\(port)/api/v2/spans
                tls: {ca_file: \(PKI.path("ca.crt")), cert_file: \(PKI.path("client.crt")), key_file: \(PKI.path("client.key"))}
                auth: {authenticator: bearertokenauth/out}
                sending_queue: {enabled: false}
            service:
              extensions: [bearertokenauth/out]
              pipelines: {traces: {receivers: [testrecv], exporters: [zipkin]}}
            """, clientSide)
        try await clientSide.send(TestData.traces(3), via: "testrecv")
        #expect(await eventually { serverSide.exporter("testexp").itemCount == 3 })

        // Straight to the receiver: no client certificate → the handshake fails; a certificate but a
        // wrong token → 401 with a Bearer challenge.
        var noCert = TLSConfiguration.makeClientConfiguration()
        noCert.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(PKI.path("ca.crt")))
        var withCert = noCert
        withCert.certificateChain = try NIOSSLCertificate.fromPEMFile(PKI.path("client.crt")).map { .certificate($0) }
        withCert.privateKey = .privateKey(try NIOSSLPrivateKey(file: PKI.path("client.key"), format: .pem))
        for (tls, token, expected) in [(noCert, "s3cret", nil), (withCert, "wrong", 401), (withCert, "s3cret", 202)] as [(TLSConfiguration, String, Int?)] {
            var config = HTTPClient.Configuration()
            config.tlsConfiguration = tls
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            var request = HTTPClientRequest(url: "https://localhost:\(port)/api/v2/spans")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "authorization", value: "Bearer \(token)")
            request.body = .bytes(ByteBuffer(string: #"[{"traceId":"0123456789abcdef0123456789abcdef","id":"0123456789abcdef","name":"x","timestamp":1700000000000000,"duration":1}]"#))
            let code: UInt? = try? await http.execute(request, timeout: .seconds(5)).status.code
            let status: Int? = code.map { Int($0) }
            #expect(status == expected, "token \(token)")
            if status == 401 {
                let r = try await http.execute(request, timeout: .seconds(5))
                #expect(r.headers.first(name: "www-authenticate") == "Bearer")
            }
            try await http.shutdown()
        }
        await client.shutdown()
        await server.shutdown()
    }

    /// Sextant to Sextant over OTLP/gRPC: the `otlp` exporter (client certificate, `server_name_override`
    /// for an IP endpoint, bearer token as metadata) into a receiver requiring mutual TLS and the token.
    @Test func otlpGRPCOverMutualTLSWithBearerToken() async throws {
        let serverSide = TestHarness()
        let server = try await build(
            """
            extensions: {bearertokenauth: {token: grpc-s3cret}}
            receivers:
              otlp:
                protocols:
                  grpc:
                    endpoint: 127.0.0.1:0
                    tls: {cert_file: \(PKI.path("server.crt")), key_file: \(PKI.path("server.key")), client_ca_file: \(PKI.path("ca.crt")), min_version: "1.3"}
                    auth: {authenticator: bearertokenauth}
            exporters: {testexp: }
            service:
              extensions: [bearertokenauth]
              pipelines: {traces: {receivers: [otlp], exporters: [testexp]}}
            """, serverSide)
        let port = (server.nodes.first { $0.label == "receiver/otlp" }!.component as! OTLPReceiver).grpcPort!

        func exporterSide(token: String, certificate: Bool) async throws -> (TestHarness, CollectorGraph) {
            let clientSide = TestHarness()
            let cert = certificate ? ", cert_file: \(PKI.path("client.crt")), key_file: \(PKI.path("client.key"))" : ""
            let graph = try await build(
                """
                extensions: {bearertokenauth/out: {token: \(token)}}
                receivers: {testrecv: }
                exporters:
                  otlp:
                    endpoint: 127.0.0.1:\(port)
                    tls: {ca_file: \(PKI.path("ca.crt")), server_name_override: localhost\(cert)}
                    auth: {authenticator: bearertokenauth/out}
                    sending_queue: {enabled: false}
                    retry_on_failure: {enabled: false}
                service:
                  extensions: [bearertokenauth/out]
                  pipelines: {traces: {receivers: [testrecv], exporters: [otlp]}}
                """, clientSide)
            return (clientSide, graph)
        }

        let (good, goodGraph) = try await exporterSide(token: "grpc-s3cret", certificate: true)
        try await good.send(TestData.traces(4), via: "testrecv")
        #expect(serverSide.exporter("testexp").itemCount == 4)
        await goodGraph.shutdown()

        // A wrong token is refused by the server (UNAUTHENTICATED: permanent, not retried); so is a
        // client without a certificate (the handshake fails).
        for (token, certificate) in [("wrong", true), ("grpc-s3cret", false)] {
            let (bad, badGraph) = try await exporterSide(token: token, certificate: certificate)
            await #expect(throws: (any Error).self) { try await bad.send(TestData.traces(1), via: "testrecv") }
            await badGraph.shutdown()
        }
        #expect(serverSide.exporter("testexp").itemCount == 4)
        await server.shutdown()
    }
}
