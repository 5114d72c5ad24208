import SextantEnvoyAccessLog
import SextantModel
import SextantPipeline

/// `envoyaccesslog` processor: parses Envoy/Istio access-log lines held in log records (the body,
/// or `source_attribute`) into structured attributes (`EnvoyAccessLogEntry.attributes`).
///
/// A record whose line parses gets the attributes (replacing same-named ones), its time from
/// `%START_TIME%` when it had none, and — with `trace_correlation` — its trace and span IDs from a
/// `traceparent` / B3 value among the parsed fields or the record's attributes, when not already
/// set. A line that parses in none of `formats` is passed on unchanged and counted.
public struct EnvoyAccessLogProcessorFactory: ProcessorFactory {
    struct Config: ComponentConfig {
        var formats = EnvoyAccessLogFormat.allCases
        var sourceAttribute: String?
        var traceCorrelation = true
    }

    public init() {}
    public let type = "envoyaccesslog"
    public let signals: Set<Signal> = [.logs]
    public let summary = "parses Envoy/Istio access-log lines (default text, Istio text and JSON) into attributes; trace correlation"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        let allowed = EnvoyAccessLogFormat.allCases.map(\.rawValue)
        if r.keys.contains("formats") {
            let names = r.stringList("formats")
            var formats: [EnvoyAccessLogFormat] = []
            for n in names {
                if let f = EnvoyAccessLogFormat(rawValue: n) {
                    if !formats.contains(f) { formats.append(f) }
                } else {
                    r.error("formats", "\(r.qualified("formats")): '\(n)' is not one of \(allowed.joined(separator: ", "))")
                }
            }
            if names.isEmpty { r.error("formats", "\(r.qualified("formats")) must name at least one of \(allowed.joined(separator: ", "))") }
            c.formats = formats.isEmpty ? EnvoyAccessLogFormat.allCases : formats
        }
        c.sourceAttribute = r.optionalString("source_attribute")
        if c.sourceAttribute?.isEmpty == true { c.sourceAttribute = nil }
        c.traceCorrelation = r.bool("trace_correlation", default: true)
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        let c = config as! Config
        let labels = [("processor", settings.id.description), ("pipeline", pipeline.description)]
        let parsed = settings.telemetry.counter(
            "sextant_envoyaccesslog_parsed_records_total", help: "Log records whose access-log line was parsed.", labels: labels)
        let unparsed = settings.telemetry.counter(
            "sextant_envoyaccesslog_unparsed_records_total",
            help: "Log records passed on unchanged because their line matched none of the configured formats.", labels: labels)
        let correlated = settings.telemetry.counter(
            "sextant_envoyaccesslog_trace_correlated_records_total",
            help: "Log records that got their trace and span IDs from traceparent or B3 values.", labels: labels)
        return TransformProcessor(settings, pipeline: pipeline, next: next) { batch in
            guard case .logs(var logs) = batch else { return batch }
            var counts = (parsed: 0, unparsed: 0, correlated: 0)
            for i in logs.resourceLogs.indices {
                for j in logs.resourceLogs[i].scopeLogs.indices {
                    for k in logs.resourceLogs[i].scopeLogs[j].logRecords.indices {
                        EnvoyAccessLogProcessing.process(&logs.resourceLogs[i].scopeLogs[j].logRecords[k], c, &counts)
                    }
                }
            }
            parsed.add(counts.parsed)
            unparsed.add(counts.unparsed)
            correlated.add(counts.correlated)
            return .logs(logs)
        }
    }
}

enum EnvoyAccessLogProcessing {
    static func process(
        _ record: inout LogRecord, _ c: EnvoyAccessLogProcessorFactory.Config, _ counts: inout (parsed: Int, unparsed: Int, correlated: Int)
    ) {
        let source: AnyValue? = c.sourceAttribute.map { record.attributes[key: $0] } ?? record.body
        guard case .string(let line)? = source, let entry = EnvoyAccessLogParser.parse(line, formats: c.formats) else {
            counts.unparsed += 1
            return
        }
        counts.parsed += 1
        for kv in entry.attributes { record.attributes.set(kv.key, kv.value) }
        if record.timeUnixNano == 0, let t = entry.startTimeUnixNano { record.timeUnixNano = t }
        guard c.traceCorrelation, record.traceID == nil || record.traceID?.isValid == false else { return }
        let found = TraceContextHeaders.find { name in
            for (k, v) in entry.extra where isHeader(k, name) { return v }
            for kv in record.attributes where isHeader(kv.key, name) {
                if case .string(let s) = kv.value { return s }
            }
            return nil
        }
        if let (trace, span) = found {
            record.traceID = trace
            record.spanID = span
            counts.correlated += 1
        }
    }

    /// Whether attribute `key` names header `name` (lower case): ASCII case-insensitively, with `_`
    /// standing for `-` (`X-B3-TraceId`, `x_b3_traceid`). Compares bytes; allocates nothing.
    static func isHeader(_ key: String, _ name: String) -> Bool {
        let k = key.utf8
        let n = name.utf8
        guard k.count == n.count else { return false }
        for (a, b) in zip(k, n) {
            var c = a
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { c += 32 }
            if c == UInt8(ascii: "_") { c = UInt8(ascii: "-") }
            if c != b { return false }
        }
        return true
    }
}
