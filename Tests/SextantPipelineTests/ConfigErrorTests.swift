import SextantModel
import SextantPipeline
import SextantTesting
import Testing

/// Broken configs and the exact diagnostics they must produce: every error, at once, with its position.
@Suite struct ConfigErrorTests {
    let registry = TestHarness().registry()

    func errors(_ yaml: String, env: [String: String] = [:]) -> [String] {
        do {
            _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: registry, environment: env)
            return []
        } catch let e as ConfigError {
            return e.diagnostics.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    static let table: [(String, String, [String])] = [
        (
            "unknown key with suggestion",
            """
            receivers:
              testrecv:
                tagg: x
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [testexp]}
            """,
            ["c.yaml:3:5: error: unknown key 'tagg' in receivers::testrecv (did you mean 'tag'?)"]
        ),
        (
            "unknown component type",
            """
            receivers:
              testrecv:
              zipkin:
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [testexp]}
            """,
            ["c.yaml:3:3: error: unknown receiver type 'zipkin' (known: testrecv)"]
        ),
        (
            "undefined components in a pipeline, unknown signal, unknown top-level key",
            """
            receivers:
              testrecv:
            exporters:
              testexp:
            servce: {}
            service:
              pipelines:
                traces:
                  receivers: [testrecv, otlp]
                  processors: [testproc]
                  exporters: [testexpp]
                tracez:
                  receivers: [testrecv]
                  exporters: [testexp]
            """,
            [
                "c.yaml:5:1: error: unknown key 'servce' in config (did you mean 'service'?)",
                "c.yaml:9:29: error: pipeline 'traces' references receiver 'otlp' which is not defined under 'receivers' or 'connectors'",
                "c.yaml:10:20: error: pipeline 'traces' references processor 'testproc' which is not defined under 'processors'",
                "c.yaml:11:19: error: pipeline 'traces' references exporter 'testexpp' which is not defined under 'exporters' or 'connectors' (did you mean 'testexp'?)",
                "c.yaml:12:5: error: pipeline 'tracez': unknown signal 'tracez' (expected traces, metrics or logs) (did you mean 'traces'?)",
            ]
        ),
        (
            "wrong value types",
            """
            receivers:
              testrecv:
                tag: [a, b]
            exporters:
              testexp:
            service:
              shutdown_timeout: 10
              telemetry:
                metrics:
                  level: loud
              pipelines:
                traces: {receivers: [testrecv], exporters: [testexp]}
            """,
            [
                "c.yaml:3:10: error: receivers::testrecv::tag must be a string, found a sequence",
                "c.yaml:7:21: error: service::shutdown_timeout must be a duration such as 200ms, 5s or 1m30s, found '10'",
                "c.yaml:10:14: error: service::telemetry::metrics::level: 'loud' is not one of none, basic, normal, detailed",
            ]
        ),
        (
            "connector used only on one side, and on an unsupported route",
            """
            receivers:
              testrecv:
            exporters:
              testexp:
            connectors:
              testconn:
              testconn/b:
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [testconn, testconn/b]}
                logs: {receivers: [testconn], exporters: [testexp]}
            """,
            [
                "c.yaml:6:3: error: connector 'testconn' cannot connect traces to logs (pipelines 'traces' → 'logs')",
                "c.yaml:7:3: error: connector 'testconn/b' is used as an exporter but not as a receiver in any pipeline",
            ]
        ),
        (
            "cycle through connectors",
            """
            receivers:
              testrecv:
            exporters:
              testexp:
            connectors:
              testconn:
              testconn/back:
            service:
              pipelines:
                traces/a: {receivers: [testrecv, testconn/back], exporters: [testconn]}
                traces/b: {receivers: [testconn], exporters: [testconn/back, testexp]}
            """,
            ["c.yaml:10:5: error: pipelines form a cycle through connectors: traces/a → traces/b → traces/a"]
        ),
        (
            "no pipelines, YAML syntax error position",
            """
            receivers:
              testrecv: {tag: "x"
            """,
            ["c.yaml:3:1: error: invalid YAML: did not find expected ',' or '}'"]
        ),
        (
            "empty pipelines and missing exporters",
            """
            receivers:
              testrecv:
            service:
              pipelines:
                logs:
                  receivers: [testrecv]
            """,
            ["c.yaml:5:5: error: pipeline 'logs' must have at least one exporter"]
        ),
    ]

    @Test(arguments: table.indices)
    func reportsEveryErrorWithPosition(_ i: Int) {
        let (name, yaml, expected) = Self.table[i]
        #expect(errors(yaml) == expected, "\(name)")
    }

    @Test func unsupportedSignalForComponent() {
        var r = registry
        r.register(TracesOnlyExporter())
        let yaml = """
            receivers:
              testrecv:
            exporters:
              tracesonly:
            service:
              pipelines:
                logs: {receivers: [testrecv], exporters: [tracesonly]}
            """
        do {
            _ = try CollectorConfig.load(yaml: yaml, file: "c.yaml", registry: r)
            Issue.record("expected an error")
        } catch let e as ConfigError {
            #expect(
                e.diagnostics.map(\.description) == [
                    "c.yaml:7:47: error: exporter 'tracesonly' does not support logs (it supports traces), used in pipeline 'logs'"
                ])
        } catch { Issue.record("\(error)") }
    }

    @Test func environmentSubstitution() throws {
        let yaml = """
            receivers:
              testrecv:
                tag: "${env:TAG}-${env:MISSING:-fallback}-$${env:LITERAL}"
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [testrecv], exporters: [testexp]}
            """
        let c = try CollectorConfig.load(yaml: yaml, registry: registry, environment: ["TAG": "blue"])
        let def = try #require(c.definition(.receiver, ComponentID(type: "testrecv")))
        #expect((def.config as! TestHarness.Config).tag == "blue-fallback-${env:LITERAL}")
    }

    @Test func filesMergeInOrder() throws {
        let d = Diagnostics()
        let a = try #require(
            YAMLLoader.parse("receivers:\n  testrecv:\n    tag: a\nexporters:\n  testexp:\n", file: "a.yaml", diagnostics: d))
        let b = try #require(
            YAMLLoader.parse(
                "receivers:\n  testrecv:\n    tag: b\nservice:\n  pipelines:\n    traces: {receivers: [testrecv], exporters: [testexp]}\n",
                file: "b.yaml", diagnostics: d))
        let merged = a.merged(with: b)
        #expect(merged["receivers"]?["testrecv"]?["tag"].map { if case .scalar(let s, _) = $0.value { s } else { "" } } == "b")
        #expect(merged["exporters"]?["testexp"] != nil)
        #expect(merged["receivers"]?["testrecv"]?["tag"]?.location.file == "b.yaml")
    }

    @Test func goDurations() {
        #expect(GoDuration.parse("200ms") == .milliseconds(200))
        #expect(GoDuration.parse("1m30s") == .seconds(90))
        #expect(GoDuration.parse("1.5h") == .seconds(5400))
        #expect(GoDuration.parse("10") == nil)
        #expect(GoDuration.parse("5 parsecs") == nil)
        #expect(GoDuration.format(.seconds(90)) == "1m30s")
        #expect(GoDuration.format(.milliseconds(200)) == "200ms")
    }

    @Test func componentIDs() {
        #expect(ComponentID(parsing: "otlp/in") == ComponentID(type: "otlp", name: "in"))
        #expect(ComponentID(parsing: "otlp/") == nil)
        #expect(ComponentID(parsing: "/x") == nil)
        #expect(ComponentID(parsing: "a b") == nil)
    }
}

struct TracesOnlyExporter: ExporterFactory {
    struct C: ComponentConfig {}
    let type = "tracesonly"
    let signals: Set<Signal> = [.traces]
    let summary = ""
    func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { C() }
    func makeExporter(_ s: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws -> any ConsumingComponent {
        fatalError("not used")
    }
}

@Suite struct ConnectorEdgeTests {
    /// A receiver and an exporter may share an ID (`otlp` in, `otlp` out): that is no connector cycle.
    @Test func sameIDForReceiverAndExporterIsNotACycle() throws {
        var r = TestHarness().registry()
        r.register(SameNameExporter())
        let config = try CollectorConfig.load(
            yaml: """
                receivers:
                  testrecv:
                exporters:
                  testrecv:
                service:
                  pipelines:
                    traces: {receivers: [testrecv], exporters: [testrecv]}
                """, registry: r)
        #expect(config.pipelines.count == 1)
    }
}

struct SameNameExporter: ExporterFactory {
    struct C: ComponentConfig {}
    let type = "testrecv"
    let signals: Set<Signal> = [.traces]
    let summary = ""
    func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { C() }
    func makeExporter(_ s: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws -> any ConsumingComponent {
        fatalError("not used")
    }
}
