import Foundation
import SextantCollector
import SextantPipeline
import SextantReceivers
import SextantSecurity
import Testing

/// The `prometheus` receiver's scrape client settings: `tls_config`, `basic_auth`, `authorization` and
/// the legacy bearer token keys, their errors, and that their secrets never print.
@Suite struct PrometheusScrapeSecurityTests {
    static let fixtures = "/" + #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/SextantSecurityTests/Fixtures"

    static func load(_ scrapeConfig: String) throws -> ScrapeConfig {
        let yaml = """
            receivers:
              prometheus:
                config:
                  scrape_configs:
            \(scrapeConfig)
            exporters:
              nop:
            service:
              pipelines:
                metrics: {receivers: [prometheus], exporters: [nop]}
            """
        let c = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: BuiltinComponents.registry)
        let def = try #require(c.definitions[.receiver]?[ComponentID(type: "prometheus")])
        return try #require((def.config as? PrometheusReceiverConfig)?.scrapeConfigs.first)
    }

    static func errors(_ scrapeConfig: String) -> String {
        do {
            _ = try load(scrapeConfig)
            return ""
        } catch let e as ConfigError {
            return e.diagnostics.map(\.description).joined(separator: "\n")
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func tlsConfigAndBasicAuthAreReadAndSecretsRedacted() throws {
        let sc = try Self.load(
            """
                    - job_name: secure
                      scheme: https
                      tls_config: {ca_file: \(Self.fixtures)/ca.crt, cert_file: \(Self.fixtures)/client.crt, key_file: \(Self.fixtures)/client.key, min_version: TLS13, server_name: metrics.internal}
                      basic_auth: {username: scraper, password: "hunter2:pw"}
                      static_configs: [{targets: ["localhost:9100"]}]
            """)
        let tls = try #require(sc.tls)
        #expect(tls.caFile == "\(Self.fixtures)/ca.crt" && tls.certFile != nil && tls.minVersion == .tls13)
        #expect(sc.serverName == "metrics.internal")
        #expect(try sc.authorization?.headerValue() == "Basic " + Data("scraper:hunter2:pw".utf8).base64EncodedString())
        var dumped = ""
        dump(sc, to: &dumped)
        #expect(!dumped.contains("hunter2") && !"\(sc)".contains("hunter2"))
    }

    @Test func authorizationFilesAreReadAtEveryScrape() throws {
        let file = NSTemporaryDirectory() + "sextant-scrape-token-\(UInt64.random(in: 0..<UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "first-token\n".write(toFile: file, atomically: true, encoding: .utf8)
        let sc = try Self.load(
            """
                    - job_name: a
                      authorization: {credentials_file: \(file)}
                      static_configs: [{targets: ["localhost:9100"]}]
            """)
        #expect(try sc.authorization?.headerValue() == "Bearer first-token")
        try "rotated".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try sc.authorization?.headerValue() == "Bearer rotated")
        let legacy = try Self.load(
            """
                    - job_name: a
                      bearer_token: s3cret
                      static_configs: [{targets: ["localhost:9100"]}]
            """)
        #expect(try legacy.authorization?.headerValue() == "Bearer s3cret")
        #expect(!"\(legacy)".contains("s3cret"))
        let custom = try Self.load(
            """
                    - job_name: a
                      authorization: {type: Token, credentials: abc}
                      static_configs: [{targets: ["localhost:9100"]}]
            """)
        #expect(try custom.authorization?.headerValue() == "Token abc")
    }

    @Test func errorsPointAtTheirKeys() {
        let all = Self.errors(
            """
                    - job_name: a
                      scheme: https
                      tls_config: {ca_file: /nonexistent/ca.crt, server_name: 10.0.0.1, min_version: TLS10, cert_file: \(Self.fixtures)/client.crt}
                      basic_auth: {username: u, password: p, password_file: /nonexistent/pw}
                      authorization: {credentials: x}
                      static_configs: [{targets: ["localhost:9100"]}]
            """)
        #expect(all.contains("c.yaml:7:"), "\(all)")
        #expect(all.contains("cannot read certificate file '/nonexistent/ca.crt'"), "\(all)")
        #expect(all.contains("server_name must be a host name, not an IP address"), "\(all)")
        #expect(all.contains("TLS versions before 1.2 are not supported"), "\(all)")
        #expect(all.contains("cert_file and key_file go together"), "\(all)")
        #expect(all.contains("set only one of basic_auth, authorization"), "\(all)")
        #expect(all.contains("set password or password_file, not both") && all.contains("cannot read '/nonexistent/pw'"), "\(all)")
    }
}
