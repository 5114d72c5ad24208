import Logging
import NIOCore
import SextantFluentForward
import SextantIstio
import SextantModel
import SextantPipeline

/// The access logs Istio would configure for this proxy: `meshConfig.accessLogFile` (the built-in `envoy`
/// provider) plus the providers named by the workload's `Telemetry` `accessLogging` (else
/// `meshConfig.defaultProviders.accessLogging`): `envoyFileAccessLog` (a file with its own TEXT format or
/// JSON `labels`), `envoyOtelAls` (OTLP log records to a collector, Envoy's OpenTelemetry access logger) and
/// Sextant's `envoyFluentdAccessLog` (Forward protocol records to Fluentd or Fluent Bit, Envoy's Fluentd logger).
public enum AccessLogSink: Sendable {
    case file(path: String, encoding: AccessLogObserver.Encoding)
    /// `provider` is the extension provider's name.
    case openTelemetry(provider: String, destination: TelemetryDestination, body: AccessLogFormat, labels: [(String, AccessLogFormat)])
    case fluentd(
        provider: String, host: String, port: Int, tag: String, record: [(String, AccessLogFormat)], flushInterval: Duration,
        bufferSizeBytes: Int, retry: MeshConfig.FluentdRetryOptions)

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
                sinks.append(
                    .openTelemetry(provider: name, destination: .otlpGRPC(host: host, port: port), body: body, labels: try compile(labels)))
            case .envoyFluentdAccessLog(let service, let port, let tag, let labels, let interval, let size, let retry):
                let (host, port) = table.providerAddress(service: service, port: port)
                let record = labels.isEmpty ? AccessLogFormat.istioJSON : try compile(labels)
                sinks.append(
                    .fluentd(
                        provider: name, host: host, port: port, tag: tag, record: record, flushInterval: interval, bufferSizeBytes: size,
                        retry: retry))
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
}

/// Envoy's OpenTelemetry access logger (`envoy.access_loggers.open_telemetry`): one OTLP log record per
/// request, the formatted line as body, `labels` as attributes, this hop's trace and span IDs, under a
/// resource naming the proxy (`log_name`, `zone_name`, `cluster_name`, `node_name`, as Envoy sets them).
/// Records are batched and sent without ever blocking a request; overflow and failures are counted.
final class OTelAccessLogObserver: ExportingObserver {
    let provider: String
    /// The record, compiled once (`LineProgram(otlpLog:labels:)`): written in wire form when the request ends.
    let record: LineProgram
    let batcher: TelemetryBatcher<TelemetryRecords>

    init(
        provider: String, destination: TelemetryDestination, body: AccessLogFormat, labels: [(String, AccessLogFormat)],
        identity: ProxyIdentity, group: any EventLoopGroup, logger: Logger
    ) {
        self.provider = provider
        record = LineProgram(otlpLog: body, labels: labels)
        let me = PeerMetadata(identity: identity)
        let resource = Resource(attributes: [
            KeyValue("log_name", .string("otel_envoy_accesslog")), KeyValue("zone_name", .string("")),
            KeyValue("cluster_name", .string("\(me.canonicalService).\(identity.namespace)")),
            KeyValue("node_name", .string(SpanBuilder.nodeID(identity))),
            KeyValue("service.name", .string("\(me.canonicalService).\(identity.namespace)")),
        ])
        let transport = TelemetryTransport(destination: destination, group: group, logger: logger)
        batcher = TelemetryBatcher(TelemetryRecords(), transport: transport) { [transport] records in
            await transport.send(framed: records.bytes, resource: resource, .logs)
        }
    }

    func run() async { await batcher.run() }
    var sent: Int { batcher.sent }
    var dropped: Int { batcher.dropped }

    func requestFinished(_ r: ProxyRecord) {
        batcher.add { record.append(r, into: &$0) }
    }
}

/// An observer that sends what it collects from a task of its own, which `run` is (until cancelled).
protocol ExportingObserver: ProxyObserver {
    /// The extension provider's name.
    var provider: String { get }
    func run() async
    /// Items delivered, and dropped (queue full or export failed).
    var sent: Int { get }
    var dropped: Int { get }
}

/// Envoy's Fluentd access logger (`envoy.access_loggers.fluentd`), as Sextant's `envoyFluentdAccessLog`
/// provider: one record per request, `[EventTime, {field: value}]` (Forward protocol v1, "Entry"; the time is
/// the request's start with nanoseconds), its fields the `labels` formats (Istio's JSON field set by default),
/// a field that is one numeric command a msgpack integer, every other a string (`-` when empty).
///
/// Records are encoded when the request ends and queued; once `bufferSizeBytes` of them wait, or every
/// `bufferFlushInterval`, they go out as one PackedForward frame (spec v1, "PackedForward Mode"; Envoy sends
/// Forward mode, which every forward input reads alike) tagged `tag`, without acks, as Envoy's logger sends.
/// A request is never delayed: when the forward input is slow or down, records past 64 buffers (at least
/// 1 MiB) are dropped and counted, as are the records of a frame that could not be written, and the
/// connection is reopened as `retry` says (Envoy's defaults: 500 ms doubling to 5 s, no limit on attempts).
final class FluentdAccessLogObserver: ExportingObserver {
    let provider: String
    /// The record, compiled once (`LineProgram(msgpack:)`).
    let record: LineProgram
    let batcher: TelemetryBatcher<TelemetryRecords>

    init(
        provider: String, host: String, port: Int, tag: String, record: [(String, AccessLogFormat)], flushInterval: Duration,
        bufferSizeBytes: Int, retry: MeshConfig.FluentdRetryOptions = .init(), group: any EventLoopGroup, logger: Logger
    ) {
        self.provider = provider
        self.record = LineProgram(msgpack: record)
        let transport = TelemetryTransport(destination: .fluentForward(host: host, port: port), forwardRetry: retry, group: group, logger: logger)
        batcher = TelemetryBatcher(
            TelemetryRecords(weighsBytes: true), transport: transport, maxQueued: max(64 * bufferSizeBytes, 1 << 20),
            batchSize: bufferSizeBytes, interval: .nanoseconds(Int64(flushInterval / .nanoseconds(1)))
        ) { [transport] entries in
            await transport.send(
                forwardFrame: ForwardCodec.packedForward(tag: tag, stream: entries.bytes, entryCount: entries.count, chunk: nil, compressed: false))
        }
    }

    func run() async { await batcher.run() }
    var sent: Int { batcher.sent }
    var dropped: Int { batcher.dropped }

    func requestFinished(_ r: ProxyRecord) {
        batcher.add { record.append(r, into: &$0) }
    }
}

