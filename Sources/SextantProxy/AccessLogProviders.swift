import Logging
import NIOCore
import SextantIstio
import SextantModel
import SextantPipeline

/// The access logs Istio would configure for this proxy: `meshConfig.accessLogFile` (the built-in `envoy`
/// provider) plus the providers named by the workload's `Telemetry` `accessLogging` (else
/// `meshConfig.defaultProviders.accessLogging`): `envoyFileAccessLog` (a file with its own TEXT format or
/// JSON `labels`) and `envoyOtelAls` (OTLP log records to a collector, Envoy's OpenTelemetry access logger).
public enum AccessLogSink: Sendable {
    case file(path: String, encoding: AccessLogObserver.Encoding)
    case openTelemetry(destination: TelemetryDestination, body: AccessLogFormat, labels: [(String, AccessLogFormat)])

    /// Resolves the sinks; `fileOverride` replaces `meshConfig.accessLogFile`'s path (a pod's own stdout, in
    /// `sextant demo`). Throws on a format Envoy would reject.
    public static func resolve(_ table: RouteTable, fileOverride: String? = nil) throws(AccessLogFormat.FormatError) -> [AccessLogSink] {
        let mesh = table.mesh
        let applicable = table.applicableTelemetry
        if applicable.first(where: { $0.accessLogDisabled != nil })?.accessLogDisabled == true { return [] }
        var sinks: [AccessLogSink] = []
        func meshFile(_ path: String) throws(AccessLogFormat.FormatError) -> AccessLogSink {
            switch mesh.accessLogEncoding {
            case .text:
                return .file(path: path, encoding: .text(mesh.accessLogFormat.isEmpty ? .istioText : try AccessLogFormat(mesh.accessLogFormat)))
            case .json:
                return .file(path: path, encoding: .json(try jsonFields(mesh.accessLogFormat)))
            }
        }
        if !mesh.accessLogFile.isEmpty { sinks.append(try meshFile(fileOverride ?? mesh.accessLogFile)) }
        let providers = applicable.first(where: { !$0.accessLogProviders.isEmpty })?.accessLogProviders ?? mesh.defaultAccessLogProviders
        for name in providers {
            if name == "envoy" {
                if mesh.accessLogFile.isEmpty { sinks.append(try meshFile(fileOverride ?? "/dev/stdout")) }
                continue
            }
            guard let p = mesh.extensionProviders.first(where: { $0.name == name }) else { continue }
            switch p.kind {
            case .envoyFileAccessLog(let path, let text, let labels):
                if labels.isEmpty {
                    let format = try text.map { t throws(AccessLogFormat.FormatError) in try AccessLogFormat(t.hasSuffix("\n") ? t : t + "\n") }
                    sinks.append(.file(path: path, encoding: .text(format ?? .istioText)))
                } else {
                    sinks.append(.file(path: path, encoding: .json(try compile(labels))))
                }
            case .envoyOtelAls(let service, let port, let text, let labels):
                let (host, port) = table.providerAddress(service: service, port: port)
                let body = try text.map { t throws(AccessLogFormat.FormatError) in try AccessLogFormat(t) } ?? .istioTextBody
                sinks.append(.openTelemetry(destination: .otlpGRPC(host: host, port: port), body: body, labels: try compile(labels)))
            default:
                continue
            }
        }
        return sinks
    }

    /// `logFormat.labels`: each value is a format of its own.
    static func compile(_ labels: [(String, String)]) throws(AccessLogFormat.FormatError) -> [(String, AccessLogFormat)] {
        var out: [(String, AccessLogFormat)] = []
        for (k, v) in labels { out.append((k, try AccessLogFormat(v))) }
        return out
    }

    /// `accessLogFormat` with JSON encoding is a JSON object of `key: "%COMMAND%"` pairs (Envoy's
    /// `json_format`); empty means Istio's field set.
    static func jsonFields(_ format: String) throws(AccessLogFormat.FormatError) -> [(String, AccessLogFormat)] {
        if format.allSatisfy({ $0.isWhitespace }) { return AccessLogFormat.istioJSON }
        guard let node = YAMLLoader.parse(format, file: "accessLogFormat", diagnostics: Diagnostics(), environment: [:]),
            case .mapping(let entries) = node.value
        else {
            throw AccessLogFormat.FormatError(description: "accessLogFormat with JSON encoding must be a JSON object of \"key\": \"%COMMAND%\" pairs")
        }
        var fields: [(String, AccessLogFormat)] = []
        for e in entries {
            guard case .scalar(let value, _) = e.value.value else {
                throw AccessLogFormat.FormatError(description: "accessLogFormat JSON value of '\(e.key)' must be a string")
            }
            fields.append((e.key, try AccessLogFormat(value)))
        }
        return fields
    }
}

extension AccessLogFormat {
    /// Istio's default text format without the trailing newline: the body of an `envoyOtelAls` record.
    public static let istioTextBody: AccessLogFormat = AccessLogFormat(pieces: {
        var p = istioText.pieces
        if case .literal(let s)? = p.last, s.hasSuffix("\n") {
            p.removeLast()
            if s.count > 1 { p.append(.literal(String(s.dropLast()))) }
        }
        return p
    }())

    /// The value of a single-command format as a typed OTLP value (numbers stay numbers).
    func anyValue(_ r: ProxyRecord) -> AnyValue {
        if pieces.count == 1, case .command(let c, _) = pieces[0], case .number(let n)? = Self.value(c, r) { return .int(n) }
        return .string(render(r))
    }
}

/// Envoy's OpenTelemetry access logger (`envoy.access_loggers.open_telemetry`): one OTLP log record per
/// request, the formatted line as body, `labels` as attributes, this hop's trace and span IDs, under a
/// resource naming the proxy (`log_name`, `zone_name`, `cluster_name`, `node_name`, as Envoy sets them).
/// Records are batched and sent without ever blocking a request; overflow and failures are counted.
final class OTelAccessLogObserver: ProxyObserver {
    let body: AccessLogFormat
    let labels: [(String, AccessLogFormat)]
    let batcher: TelemetryBatcher<LogRecord>

    init(destination: TelemetryDestination, body: AccessLogFormat, labels: [(String, AccessLogFormat)], identity: ProxyIdentity,
        group: any EventLoopGroup, logger: Logger)
    {
        self.body = body
        self.labels = labels
        let me = PeerMetadata(identity: identity)
        let resource = Resource(attributes: [
            KeyValue("log_name", .string("otel_envoy_accesslog")), KeyValue("zone_name", .string("")),
            KeyValue("cluster_name", .string("\(me.canonicalService).\(identity.namespace)")),
            KeyValue("node_name", .string(SpanBuilder.nodeID(identity))),
            KeyValue("service.name", .string("\(me.canonicalService).\(identity.namespace)")),
        ])
        let transport = TelemetryTransport(destination: destination, group: group, logger: logger)
        batcher = TelemetryBatcher(transport: transport) { [transport] records in
            await transport.send(LogsData(resourceLogs: [ResourceLogs(resource: resource, scopeLogs: [ScopeLogs(logRecords: records)])]))
        }
    }

    func requestFinished(_ r: ProxyRecord) {
        let record = LogRecord(
            timeUnixNano: r.startUnixNanos, observedTimeUnixNano: WallClock.nowNanos(), body: .string(body.render(r)),
            attributes: labels.map { KeyValue($0.0, $0.1.anyValue(r)) }, traceID: r.traceID, spanID: r.spanID)
        batcher.add(record)
    }
}
