import Foundation
import Logging
import NIOSSL
import SextantCollector
import SextantModel
import SextantPipeline
import SextantTesting
import Testing

@testable import SextantSecurity

/// The throwaway PKI in `Fixtures/` (see `Fixtures/generate.sh`).
enum PKI {
    static let dir: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast()
        return parts.joined(separator: "/") + "/Fixtures"
    }()
    static func path(_ name: String) -> String { "\(dir)/\(name)" }
}

func configErrors(_ yaml: String) -> [String] {
    do {
        _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: TestHarness().registry(base: BuiltinComponents.registry))
        return []
    } catch let e as ConfigError {
        return e.diagnostics.map(\.description)
    } catch {
        return ["unexpected \(error)"]
    }
}

/// `tls` and `auth` blocks: what loads, and the exact diagnostics for what does not (all at once,
/// each at its `file:line:column`).
@Suite struct TLSConfigTests {
    static let pipelines = """
        service:
          pipelines:
            traces: {receivers: [otlp], exporters: [testexp]}
        """

    static let table: [(String, String, [String])] = [
        (
            "server: mutual TLS on both protocols loads",
            """
            receivers:
              otlp:
                protocols:
                  grpc: {endpoint: "127.0.0.1:0", tls: {cert_file: \(PKI.path("server.crt")), key_file: \(PKI.path("server.key")), client_ca_file: \(PKI.path("ca.crt")), min_version: "1.3"}}
                  http: {endpoint: "127.0.0.1:0", tls: {cert_file: \(PKI.path("server.crt")), key_file: \(PKI.path("server.key"))}}
            exporters: {testexp: }
            \(pipelines)
            """,
            []
        ),
        (
            "server: cert_file without key_file, a missing file, a bad version",
            """
            receivers:
              otlp:
                protocols:
                  http:
                    tls:
                      cert_file: /nonexistent/server.crt
                      min_version: "1.1"
            exporters: {testexp: }
            \(pipelines)
            """,
            [
                "c.yaml:6:11: error: receivers::otlp::protocols::http::tls: a server needs both cert_file and key_file (or cert_pem and key_pem)",
                "c.yaml:6:22: error: receivers::otlp::protocols::http::tls::cert_file: cannot read certificate file '/nonexistent/server.crt': No such file or directory",
                "c.yaml:7:24: error: receivers::otlp::protocols::http::tls::min_version: '1.1' is not one of 1.2, 1.3 (did you mean '1.2'?)",
            ]
        ),
        (
            "server: a key that is not PEM, client-only keys, max below min",
            """
            receivers:
              otlp:
                protocols:
                  http:
                    tls:
                      cert_file: \(PKI.path("server.crt"))
                      key_file: \(PKI.path("generate.sh"))
                      insecure_skip_verify: true
                      ca_file: \(PKI.path("ca.crt"))
                      min_version: "1.3"
                      max_version: "1.2"
            exporters: {testexp: }
            \(pipelines)
            """,
            [
                "c.yaml:7:21: error: receivers::otlp::protocols::http::tls::key_file: '\(PKI.path("generate.sh"))' is not a PEM private key file (failedToLoadPrivateKey)",
                "c.yaml:8:33: error: receivers::otlp::protocols::http::tls::insecure_skip_verify is not a server setting: it applies to clients (exporters)",
                "c.yaml:9:20: error: receivers::otlp::protocols::http::tls::ca_file is not a server setting: use client_ca_file to verify client certificates",
                "c.yaml:11:24: error: receivers::otlp::protocols::http::tls::max_version (1.2) is below min_version (1.3)",
            ]
        ),
        (
            "server: a key that does not match the certificate",
            """
            receivers:
              otlp:
                protocols:
                  http: {tls: {cert_file: \(PKI.path("server.crt")), key_file: \(PKI.path("client.key"))}}
            exporters: {testexp: }
            \(pipelines)
            """,
            [
                "c.yaml:4:19: error: receivers::otlp::protocols::http::tls: key_file '\(PKI.path("client.key"))' is not the private key of cert_file '\(PKI.path("server.crt"))'"
            ]
        ),
        (
            "exporters: otlp TLS by default, insecure, https; server-only and unsupported keys",
            """
            receivers: {otlp: {protocols: {http: }}}
            exporters:
              testexp:
              otlp/tls: {endpoint: "127.0.0.1:4317", tls: {ca_file: \(PKI.path("ca.crt")), cert_file: \(PKI.path("client.crt")), key_file: \(PKI.path("client.key")), server_name_override: localhost}}
              otlp/plain: {endpoint: "127.0.0.1:4317", tls: {insecure: true}}
              otlphttp:
                endpoint: "https://127.0.0.1:4318"
                tls:
                  ca_file: \(PKI.path("ca.crt"))
                  client_ca_file: \(PKI.path("ca.crt"))
              zipkin:
                endpoint: "https://127.0.0.1:9411/api/v2/spans"
                tls:
                  server_name_override: x
                  cert_file: \(PKI.path("client.crt"))
            service:
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp, otlp/tls, otlp/plain, otlphttp, zipkin]}
            """,
            [
                "c.yaml:10:23: error: exporters::otlphttp::tls::client_ca_file is a server setting (receivers); an exporter verifies its server with ca_file",
                "c.yaml:14:29: error: exporters::zipkin::tls::server_name_override is supported by the otlp (gRPC) exporter only; HTTP exporters check the URL's host",
                "c.yaml:15:18: error: exporters::zipkin::tls: cert_file and key_file go together (a client certificate needs its key)",
            ]
        ),
        (
            "auth: undefined, not enabled, wrong side, missing authenticator",
            """
            extensions:
              basicauth/out: {client_auth: {username: u, password: p}}
              bearertokenauth: {token: s3cret}
            receivers:
              otlp:
                protocols:
                  grpc: {auth: {authenticator: bearertokenauth/missing}}
                  http: {auth: {authenticator: basicauth/out}}
              zipkin: {auth: {}}
              jaeger: {protocols: {thrift_http: {auth: {authenticator: bearertokenauth}}}}
            exporters:
              testexp:
              otlphttp: {endpoint: "http://127.0.0.1:4318", auth: {authenticator: basicauth/out}}
            service:
              extensions: [basicauth/out]
              pipelines:
                traces: {receivers: [otlp, zipkin, jaeger], exporters: [testexp, otlphttp]}
            """,
            [
                "c.yaml:7:36: error: receivers::otlp::protocols::grpc::auth::authenticator references extension 'bearertokenauth/missing' which is not defined under 'extensions'",
                "c.yaml:8:36: error: receivers::otlp::protocols::http::auth::authenticator: 'basicauth/out' cannot authenticate incoming requests (use bearertokenauth)",
                "c.yaml:9:18: error: receivers::zipkin::auth::authenticator is required (the ID of an authenticator extension)",
                "c.yaml:10:60: error: receivers::jaeger::protocols::thrift_http::auth::authenticator references extension 'bearertokenauth', which is not enabled: add it to service::extensions",
            ]
        ),
        (
            "extensions: bearertokenauth and basicauth settings",
            """
            extensions:
              bearertokenauth/none: {}
              bearertokenauth/both: {token: a, filename: /tmp/t}
              basicauth/server: {htpasswd: {inline: "u:p"}}
              basicauth/colon: {client_auth: {username: "a:b", password: p}}
            receivers: {otlp: {protocols: {http: }}}
            exporters: {testexp: }
            service:
              extensions: [bearertokenauth/none, bearertokenauth/both, basicauth/server, basicauth/colon]
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp]}
            """,
            [
                "c.yaml:2:25: error: extensions::bearertokenauth/none needs token or filename",
                "c.yaml:3:46: error: extensions::bearertokenauth/both: set token or filename, not both",
                "c.yaml:4:32: error: extensions::basicauth/server::htpasswd: checking Basic credentials on receivers is not supported; use bearertokenauth",
                "c.yaml:5:45: error: extensions::basicauth/colon::client_auth::username cannot contain ':' (RFC 7617 §2)",
            ]
        ),
    ]

    @Test(arguments: table.indices)
    func diagnostics(_ i: Int) {
        let (name, yaml, expected) = Self.table[i]
        #expect(configErrors(yaml) == expected, "\(name)")
    }

    /// `cert_pem`/`key_pem` inline (a YAML block scalar) load like files; mixing a file and its inline
    /// form, or inline text that is not PEM, are errors — and the message never repeats a key.
    @Test func inlinePEM() throws {
        func block(_ name: String, indent: Int) throws -> String {
            let text = try String(contentsOfFile: PKI.path(name), encoding: .utf8)
            return text.split(separator: "\n").map { String(repeating: " ", count: indent) + $0 }.joined(separator: "\n")
        }
        let yaml = """
            receivers:
              otlp:
                protocols:
                  http:
                    tls:
                      cert_pem: |
            \(try block("server.crt", indent: 12))
                      key_pem: |
            \(try block("server.key", indent: 12))
                  grpc:
                    tls:
                      cert_file: \(PKI.path("server.crt"))
                      cert_pem: "x"
                      key_pem: "-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END PRIVATE KEY-----"
            exporters:
              testexp:
              otlp: {endpoint: "127.0.0.1:4317", tls: {ca_pem: "not pem", include_system_ca_certs_pool: true}}
            service:
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp, otlp]}
            """
        let errors = configErrors(yaml)
        #expect(errors.count == 3, "\(errors)")
        #expect(!errors.contains { $0.contains("protocols::http") }, "\(errors)")
        #expect(errors.contains { $0.hasSuffix("error: receivers::otlp::protocols::grpc::tls: set cert_file or cert_pem, not both") }, "\(errors)")
        #expect(errors.contains { $0.contains("receivers::otlp::protocols::grpc::tls::key_pem: not a PEM private key") }, "\(errors)")
        #expect(errors.contains { $0.contains("exporters::otlp::tls::ca_pem: not a PEM certificate") }, "\(errors)")
        #expect(!errors.joined().contains("bm90IGEga2V5"))

        var client = TLSSettings(role: .client)
        client.caPEM = try String(contentsOfFile: PKI.path("ca.crt"), encoding: .utf8)
        client.includeSystemCACertsPool = true
        let c = try client.makeConfiguration()
        #expect(c.trustRoots == .default)
        #expect(c.additionalTrustRoots.count == 1)
    }

    @Test func secretsNeverPrint() {
        let s = Secret("hunter2")
        #expect("\(s)" == "<redacted>")
        #expect(String(reflecting: s) == "<redacted>")
        struct Holder { var token: Secret }
        var dumped = ""
        dump(Holder(token: s), to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect(!"\(Holder(token: s))".contains("hunter2"))
    }

    @Test func constantTimeEquality() {
        let cases: [(String, String, Bool)] = [
            ("Bearer abc", "Bearer abc", true), ("Bearer abd", "Bearer abc", false), ("Bearer ab", "Bearer abc", false),
            ("Bearer abcd", "Bearer abc", false), ("", "Bearer abc", false), ("", "", true),
        ]
        for (a, b, equal) in cases { #expect(ConstantTime.equals(Array(a.utf8), Array(b.utf8)) == equal, "\(a) vs \(b)") }
    }

    @Test func serverHostnameForVerification() {
        var t = TLSSettings(role: .client)
        #expect(t.serverHostname(for: "127.0.0.1") == nil)
        #expect(t.serverHostname(for: "::1") == nil)
        #expect(t.serverHostname(for: "collector.example") == "collector.example")
        t.serverNameOverride = "localhost"
        #expect(t.serverHostname(for: "127.0.0.1") == "localhost")
    }

    @Test func buildsMutualTLSServerAndClientConfigurations() throws {
        var server = TLSSettings(role: .server)
        server.certFile = PKI.path("server.crt")
        server.keyFile = PKI.path("server.key")
        server.clientCAFile = PKI.path("ca.crt")
        server.minVersion = .tls13
        let s = try server.makeConfiguration(applicationProtocols: ["h2"])
        #expect(s.certificateVerification == .noHostnameVerification)
        #expect(s.minimumTLSVersion == .tlsv13)
        #expect(s.applicationProtocols == ["h2"])
        #expect(server.requiresClientCertificate)

        var client = TLSSettings(role: .client)
        client.caFile = PKI.path("ca.crt")
        client.insecureSkipVerify = true
        let c = try client.makeConfiguration()
        #expect(c.certificateVerification == .none)
        #expect(c.minimumTLSVersion == .tlsv12)
        #expect(throws: TLSSetupError.self) {
            var missing = client
            missing.caFile = PKI.path("nope.crt")
            _ = try missing.makeConfiguration()
        }
    }
}
