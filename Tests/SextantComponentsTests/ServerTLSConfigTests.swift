import SextantCollector
import SextantExporters
import SextantPipeline
import SextantSecurity
import Testing

/// `tls` server blocks on the collector's own HTTP endpoints: the `prometheus` and `jaeger_query`
/// exporters, `health_check`, and `service::telemetry::metrics`.
@Suite struct ServerTLSConfigTests {
    static let fixtures = "/" + #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/SextantSecurityTests/Fixtures"

    static func config(tls: String) -> String {
        """
        extensions:
          health_check: {endpoint: 127.0.0.1:0, tls: \(tls)}
        receivers:
          otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}
        exporters:
          prometheus: {endpoint: 127.0.0.1:0, tls: \(tls)}
          jaeger_query: {endpoint: 127.0.0.1:0, tls: \(tls)}
        service:
          extensions: [health_check]
          telemetry: {metrics: {address: 127.0.0.1:0, tls: \(tls)}}
          pipelines:
            metrics: {receivers: [otlp], exporters: [prometheus]}
            traces: {receivers: [otlp], exporters: [jaeger_query]}
        """
    }

    @Test func everyEndpointReadsAServerBlock() throws {
        let tls = "{cert_file: \(Self.fixtures)/server.crt, key_file: \(Self.fixtures)/server.key, client_ca_file: \(Self.fixtures)/ca.crt}"
        let c = try CollectorConfig.load(yaml: Self.config(tls: tls), file: "c.yaml", registry: BuiltinComponents.registry)
        let prometheus = try #require(c.definition(.exporter, ComponentID(type: "prometheus"))?.config as? PrometheusExporterConfig)
        #expect(prometheus.tls?.requiresClientCertificate == true)
        let jaeger = try #require(c.definition(.exporter, ComponentID(type: "jaeger_query"))?.config as? JaegerQueryExporterConfig)
        #expect(jaeger.tls?.certFile == "\(Self.fixtures)/server.crt")
        #expect((c.telemetry.metricsTLS as? TLSSettings)?.requiresClientCertificate == true)
    }

    @Test func problemsAreReportedAtEachBlock() {
        do {
            _ = try CollectorConfig.load(
                yaml: Self.config(tls: "{cert_file: /nonexistent/server.crt, key_file: /nonexistent/server.key, ca_file: x}"), file: "c.yaml",
                registry: BuiltinComponents.registry)
            Issue.record("config accepted")
        } catch let e as ConfigError {
            let all = e.diagnostics.map(\.description)
            for line in [2, 6, 7, 10] {
                #expect(all.contains { $0.hasPrefix("c.yaml:\(line):") && $0.contains("/nonexistent/server.crt") }, "line \(line): \(all)")
            }
            #expect(all.filter { $0.contains("ca_file is not a server setting") }.count == 4, "\(all)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
