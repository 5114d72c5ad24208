import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// `debug` exporter config (OTel's `debug` exporter).
public struct DebugExporterConfig: ComponentConfig {
    public enum Verbosity: String, Sendable {
        case basic
        case normal
        case detailed
    }

    public var verbosity: Verbosity = .basic
    /// Per second, the first `samplingInitial` batches are printed, then every `samplingThereafter`-th.
    public var samplingInitial = 2
    public var samplingThereafter = 1
    public var helper = ExporterHelperSettings.synchronous
}

public struct DebugExporterFactory: ExporterFactory {
    public init() {}
    public let type = "debug"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "prints telemetry to the log (verbosity basic, normal, detailed)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = DebugExporterConfig()
        c.verbosity = .init(rawValue: r.choice("verbosity", ["basic", "normal", "detailed"], default: "basic"))!
        c.samplingInitial = r.int("sampling_initial", default: c.samplingInitial, min: 1)
        c.samplingThereafter = r.int("sampling_thereafter", default: c.samplingThereafter, min: 1)
        c.helper = ExporterHelperSettings.parse(&r, defaults: c.helper)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        DebugExporter(config as! DebugExporterConfig, settings: settings)
    }
}

/// Prints what it receives: counts (`basic`), one line per item (`normal`), or everything (`detailed`).
public final class DebugExporter: ConsumingComponent {
    private let config: DebugExporterConfig
    private let logger: Logger
    private let helper: ExporterHelper<ContinuousClock>
    /// (second, count in that second) for the sampler.
    private let sampler = Mutex<(Int64, Int)>((0, 0))

    public init(_ config: DebugExporterConfig, settings: ComponentSettings) {
        self.config = config
        let logger = settings.logger
        self.logger = logger
        let verbosity = config.verbosity
        self.helper = ExporterHelper(config.helper, component: settings) { batch in
            logger.info("\(DebugFormatter.render(batch, verbosity: verbosity))")
        }
    }

    public func start() async throws { helper.start() }
    public func shutdown() async { await helper.shutdown() }

    public func consume(_ telemetry: Telemetry) async throws {
        guard sample() else { return }
        try await helper.consume(telemetry)
    }

    /// zap-style sampling: the first `initial` per second, then every `thereafter`-th.
    private func sample() -> Bool {
        let second = Int64(SystemTime.nowSeconds())
        return sampler.withLock { state in
            if state.0 != second { state = (second, 0) }
            state.1 += 1
            let n = state.1
            return n <= config.samplingInitial || (n - config.samplingInitial) % config.samplingThereafter == 0
        }
    }
}

/// Text renderings of telemetry for the debug exporter.
public enum DebugFormatter {
    public static func render(_ batch: Telemetry, verbosity: DebugExporterConfig.Verbosity) -> String {
        switch batch {
        case .traces(let t):
            var out = "Traces: resource spans: \(t.resourceSpans.count), spans: \(t.spanCount)"
            guard verbosity != .basic else { return out }
            for rs in t.resourceSpans {
                if verbosity == .detailed { out += "\nResourceSpans SchemaURL: \(rs.schemaURL)\nResource attributes:\(attrs(rs.resource.attributes))" }
                for ss in rs.scopeSpans {
                    if verbosity == .detailed { out += "\nScopeSpans: \(ss.scope.name) \(ss.scope.version)" }
                    for s in ss.spans {
                        if verbosity == .normal {
                            out += "\n\(s.name) \(s.traceID.hex) \(s.spanID.hex)\(attrsInline(s.attributes))"
                            continue
                        }
                        out += "\nSpan"
                        out += "\n    Trace ID       : \(s.traceID.hex)"
                        out += "\n    Parent ID      : \(s.parentSpanID?.hex ?? "")"
                        out += "\n    ID             : \(s.spanID.hex)"
                        out += "\n    Name           : \(s.name)"
                        out += "\n    Kind           : \(s.kind)"
                        out += "\n    Start time     : \(s.startTimeUnixNano)"
                        out += "\n    End time       : \(s.endTimeUnixNano)"
                        out += "\n    Status code    : \(s.status.code)"
                        out += "\n    Status message : \(s.status.message)"
                        out += "\nAttributes:\(attrs(s.attributes))"
                        for (i, e) in s.events.enumerated() {
                            out += "\nSpanEvent #\(i)\n     -> Name: \(e.name)\n     -> Timestamp: \(e.timeUnixNano)\(attrs(e.attributes))"
                        }
                        for (i, l) in s.links.enumerated() {
                            out += "\nSpanLink #\(i)\n     -> Trace ID: \(l.traceID.hex)\n     -> ID: \(l.spanID.hex)"
                        }
                    }
                }
            }
            return out
        case .metrics(let m):
            var out = "Metrics: resource metrics: \(m.resourceMetrics.count), data points: \(m.dataPointCount)"
            guard verbosity != .basic else { return out }
            for rm in m.resourceMetrics {
                if verbosity == .detailed { out += "\nResource attributes:\(attrs(rm.resource.attributes))" }
                for sm in rm.scopeMetrics {
                    for metric in sm.metrics {
                        out += "\n\(metric.name){\(metric.data.typeName), unit=\(metric.unit)} points=\(metric.data.pointCount)"
                        if verbosity == .detailed { out += "\n    \(metric.data)" }
                    }
                }
            }
            return out
        case .logs(let l):
            var out = "Logs: resource logs: \(l.resourceLogs.count), log records: \(l.logRecordCount)"
            guard verbosity != .basic else { return out }
            for rl in l.resourceLogs {
                if verbosity == .detailed { out += "\nResource attributes:\(attrs(rl.resource.attributes))" }
                for sl in rl.scopeLogs {
                    for r in sl.logRecords {
                        out += "\n\(r.timeUnixNano) \(r.severityText.isEmpty ? r.severityNumber.shortName : r.severityText) \(r.body?.asString ?? "")"
                        if verbosity == .detailed {
                            out += "\(attrs(r.attributes))\n    Trace ID: \(r.traceID?.hex ?? "")\n    Span ID: \(r.spanID?.hex ?? "")"
                        }
                    }
                }
            }
            return out
        }
    }

    private static func attrs(_ a: [KeyValue]) -> String {
        a.map { "\n     -> \($0.key): \(typeName($0.value))(\($0.value.asString))" }.joined()
    }

    private static func attrsInline(_ a: [KeyValue]) -> String {
        a.isEmpty ? "" : " " + a.map { "\($0.key)=\($0.value.asString)" }.joined(separator: " ")
    }

    private static func typeName(_ v: AnyValue) -> String {
        switch v {
        case .string: return "Str"
        case .bool: return "Bool"
        case .int: return "Int"
        case .double: return "Double"
        case .bytes: return "Bytes"
        case .array: return "Slice"
        case .kvlist: return "Map"
        case .empty: return "Empty"
        }
    }
}
