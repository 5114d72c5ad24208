import SextantEnvoyAccessLog
import SextantModel

/// OTLP log records and spans as Elastic Common Schema documents (ECS 8.x field reference).
///
/// Attributes with an ECS home go there (`ECSMapping.attributeFields`, OpenTelemetry
/// semantic-convention names and the older `http.method`-style ones); `envoy.*` attributes (from
/// the `envoyaccesslog` processor) become a custom `envoy` object; every other string attribute goes
/// to `labels` (dots in its key become `_`, as ECS asks of label keys) and every other value to
/// `attributes` under its own key. Record attributes win over resource attributes.
public enum ECSMapping {
    /// `data_stream.*` fields for documents written to a data stream.
    public struct DataStream: Sendable, Equatable {
        public var type: String
        public var dataset: String
        public var namespace: String
        public init(type: String, dataset: String, namespace: String) {
            self.type = type
            self.dataset = dataset
            self.namespace = namespace
        }
    }

    /// How an attribute maps onto ECS.
    enum Target {
        /// Copied to this ECS field.
        case field(String)
        /// Integer-valued, copied to this ECS field.
        case integer(String)
        /// `host:port` split into `<prefix>.address` (+ `.ip` when an IP) and `<prefix>.port`.
        case endpoint(String)
        /// An address going to `<prefix>.address` (and `<prefix>.ip` when it is an IP literal).
        case address(String)
        /// Milliseconds, written as nanoseconds to this field.
        case millisAsNanos(String)
    }

    /// Record and span attributes with an ECS home.
    static let attributeFields: [String: Target] = [
        "http.request.method": .field("http.request.method"),
        "http.method": .field("http.request.method"),
        "http.response.status_code": .integer("http.response.status_code"),
        "http.status_code": .integer("http.response.status_code"),
        "http.request.body.size": .integer("http.request.body.bytes"),
        "http.response.body.size": .integer("http.response.body.bytes"),
        "http.request.header.x-request-id": .field("http.request.id"),
        "http.request.id": .field("http.request.id"),
        "guid:x-request-id": .field("http.request.id"),
        "url.path": .field("url.path"),
        "http.target": .field("url.path"),
        "url.query": .field("url.query"),
        "url.full": .field("url.full"),
        "http.url": .field("url.full"),
        "url.scheme": .field("url.scheme"),
        "server.address": .field("url.domain"),
        "server.port": .integer("url.port"),
        "user_agent.original": .field("user_agent.original"),
        "http.user_agent": .field("user_agent.original"),
        "network.protocol.name": .field("network.protocol"),
        "network.protocol.version": .field("http.version"),
        "client.address": .address("source"),
        "client.port": .integer("source.port"),
        "envoy.upstream_host": .endpoint("destination"),
        "envoy.duration_ms": .millisAsNanos("event.duration"),
    ]

    /// Resource attributes with an ECS home.
    static let resourceFields: [String: String] = [
        "service.name": "service.name",
        "service.version": "service.version",
        "service.namespace": "service.namespace",
        "service.instance.id": "service.node.name",
        "deployment.environment": "service.environment",
        "deployment.environment.name": "service.environment",
        "host.name": "host.name",
        "host.id": "host.id",
        "host.arch": "host.architecture",
        "os.type": "host.os.type",
        "container.id": "container.id",
        "container.name": "container.name",
        "k8s.namespace.name": "orchestrator.namespace",
        "cloud.provider": "cloud.provider",
        "cloud.region": "cloud.region",
    ]

    // MARK: Logs

    /// One log record as an ECS document. `fallbackTimeUnixNano` stamps a record with neither a
    /// time nor an observed time.
    public static func document(
        log: LogRecord, resource: Resource, scope: InstrumentationScope, fallbackTimeUnixNano: UInt64, dataStream: DataStream? = nil
    ) -> ECSDocument {
        var d = ECSDocument()
        let t = log.timeUnixNano != 0 ? log.timeUnixNano : log.observedTimeUnixNano != 0 ? log.observedTimeUnixNano : fallbackTimeUnixNano
        d.set("@timestamp", .string(UTCTime(unixNano: t).rfc3339Nano))
        if let body = log.body {
            if case .string(let s) = body { d.set("message", .string(s)) } else { d.set("message", .string(body.asString)) }
        }
        if !log.severityText.isEmpty {
            d.set("log.level", .string(log.severityText))
        } else if log.severityNumber != .unspecified {
            d.set("log.level", .string(log.severityNumber.shortName))
        }
        if let id = log.traceID, id.isValid { d.set("trace.id", .string(id.hex)) }
        if let id = log.spanID, id.isValid { d.set("span.id", .string(id.hex)) }
        if !log.eventName.isEmpty { d.set("event.action", .string(log.eventName)) }
        if !scope.name.isEmpty { d.set("log.logger", .string(scope.name)) }
        mapResource(resource, into: &d)
        mapAttributes(log.attributes, into: &d)
        if let ds = dataStream { setDataStream(ds, into: &d) }
        return d
    }

    // MARK: Spans

    /// One span as an ECS-style document: `trace.id`, `span.id`, `parent.id`, `span.name`,
    /// `span.kind`, `event.duration` (ns), `event.outcome`, plus the attribute mapping of logs.
    public static func document(span: Span, resource: Resource, scope: InstrumentationScope, dataStream: DataStream? = nil)
        -> ECSDocument
    {
        var d = ECSDocument()
        d.set("@timestamp", .string(UTCTime(unixNano: span.startTimeUnixNano).rfc3339Nano))
        d.set("trace.id", .string(span.traceID.hex))
        d.set("span.id", .string(span.spanID.hex))
        if let p = span.parentSpanID, p.isValid { d.set("parent.id", .string(p.hex)) }
        d.set("span.name", .string(span.name))
        let kinds = ["unspecified", "internal", "server", "client", "producer", "consumer"]
        d.set("span.kind", .string(kinds.indices.contains(Int(span.kind.rawValue)) ? kinds[Int(span.kind.rawValue)] : "unspecified"))
        d.set("event.duration", .int(Int64(clamping: span.durationNanos)))
        switch span.status.code.rawValue {
        case 1: d.set("event.outcome", .string("success"))
        case 2: d.set("event.outcome", .string("failure"))
        default: d.set("event.outcome", .string("unknown"))
        }
        if !span.status.message.isEmpty { d.set("error.message", .string(span.status.message)) }
        if !scope.name.isEmpty { d.set("span.scope", .string(scope.name)) }
        mapResource(resource, into: &d)
        mapAttributes(span.attributes, into: &d)
        if let ds = dataStream { setDataStream(ds, into: &d) }
        return d
    }

    // MARK: Raw mode

    /// `mapping.mode: raw`: `@timestamp`, the body as `message`, `severity_text`/`severity_number`,
    /// `trace_id`/`span_id`, and every resource and record attribute at the top level under its own
    /// (dotted) key, record attributes winning.
    public static func rawDocument(
        log: LogRecord, resource: Resource, fallbackTimeUnixNano: UInt64, dataStream: DataStream? = nil
    ) -> ECSDocument {
        var d = ECSDocument()
        for kv in resource.attributes where !kv.key.isEmpty { d[kv.key] = ECSDocument.Value(kv.value) }
        for kv in log.attributes where !kv.key.isEmpty { d[kv.key] = ECSDocument.Value(kv.value) }
        let t = log.timeUnixNano != 0 ? log.timeUnixNano : log.observedTimeUnixNano != 0 ? log.observedTimeUnixNano : fallbackTimeUnixNano
        d["@timestamp"] = .string(UTCTime(unixNano: t).rfc3339Nano)
        if let body = log.body { d["message"] = ECSDocument.Value(body) }
        if !log.severityText.isEmpty { d["severity_text"] = .string(log.severityText) }
        if log.severityNumber != .unspecified { d["severity_number"] = .int(Int64(log.severityNumber.rawValue)) }
        if let id = log.traceID, id.isValid { d["trace_id"] = .string(id.hex) }
        if let id = log.spanID, id.isValid { d["span_id"] = .string(id.hex) }
        if let ds = dataStream { setDataStream(ds, into: &d) }
        return d
    }

    /// `mapping.mode: raw` for spans: identifiers, name, kind, times and every attribute at the top level.
    public static func rawDocument(span: Span, resource: Resource, dataStream: DataStream? = nil) -> ECSDocument {
        var d = ECSDocument()
        for kv in resource.attributes where !kv.key.isEmpty { d[kv.key] = ECSDocument.Value(kv.value) }
        for kv in span.attributes where !kv.key.isEmpty { d[kv.key] = ECSDocument.Value(kv.value) }
        d["@timestamp"] = .string(UTCTime(unixNano: span.startTimeUnixNano).rfc3339Nano)
        d["trace_id"] = .string(span.traceID.hex)
        d["span_id"] = .string(span.spanID.hex)
        if let p = span.parentSpanID, p.isValid { d["parent_span_id"] = .string(p.hex) }
        d["name"] = .string(span.name)
        d["kind"] = .int(Int64(span.kind.rawValue))
        d["duration_ns"] = .int(Int64(clamping: span.durationNanos))
        d["status_code"] = .int(Int64(span.status.code.rawValue))
        if let ds = dataStream { setDataStream(ds, into: &d) }
        return d
    }

    // MARK: Pieces

    static func setDataStream(_ ds: DataStream, into d: inout ECSDocument) {
        d.set("data_stream.type", .string(ds.type))
        d.set("data_stream.dataset", .string(ds.dataset))
        d.set("data_stream.namespace", .string(ds.namespace))
    }

    static func mapResource(_ resource: Resource, into d: inout ECSDocument) {
        for kv in resource.attributes {
            if let field = resourceFields[kv.key], case .string(let s) = kv.value {
                d.set(field, .string(s))
            } else {
                other(kv, into: &d)
            }
        }
    }

    static func mapAttributes(_ attributes: [KeyValue], into d: inout ECSDocument) {
        for kv in attributes {
            // `envoy.upstream_host` also stays under `envoy` (it may be `tcp://…`, a cluster name, …).
            if let target = attributeFields[kv.key], map(kv.value, target, into: &d), kv.key != "envoy.upstream_host" { continue }
            if kv.key.hasPrefix("envoy."), kv.key.utf8.count > 6 {
                d.set("envoy." + kv.key.dropFirst(6).replacingDots, ECSDocument.Value(kv.value))
                continue
            }
            other(kv, into: &d)
        }
    }

    /// Places a mapped attribute; `false` when its value does not fit the target (it then goes to
    /// labels/attributes like any other).
    static func map(_ v: AnyValue, _ target: Target, into d: inout ECSDocument) -> Bool {
        switch target {
        case .field(let f):
            guard case .string(let s) = v else { return false }
            return d.set(f, .string(s))
        case .integer(let f):
            guard let i = integer(v) else { return false }
            return d.set(f, .int(i))
        case .millisAsNanos(let f):
            guard let i = integer(v), i >= 0, i <= Int64.max / 1_000_000 else { return false }
            return d.set(f, .int(i * 1_000_000))
        case .address(let prefix):
            guard case .string(let s) = v else { return false }
            d.set(prefix + ".address", .string(s))
            if IPLiteral.isIP(s) { d.set(prefix + ".ip", .string(s)) }
            return true
        case .endpoint(let prefix):
            guard case .string(var s) = v else { return false }
            // Envoy prints some upstream hosts with a scheme (`tcp://10.0.2.1:80`).
            if let scheme = s.firstRange(of: "://") { s = String(s[scheme.upperBound...]) }
            let (host, port) = EnvoyAccessLogEntry.splitHostPort(s)
            d.set(prefix + ".address", .string(host))
            if IPLiteral.isIP(host) { d.set(prefix + ".ip", .string(host)) }
            if let port { d.set(prefix + ".port", .int(port)) }
            return true
        }
    }

    static func integer(_ v: AnyValue) -> Int64? {
        switch v {
        case .int(let i): return i
        case .string(let s): return Int64(s)
        case .double(let x) where x.rounded() == x && abs(x) < 9e18: return Int64(x)
        default: return nil
        }
    }

    static func other(_ kv: KeyValue, into d: inout ECSDocument) {
        // Elasticsearch refuses empty field names (the whole document would be rejected).
        guard !kv.key.isEmpty else { return }
        if case .string(let s) = kv.value {
            d.set("labels." + kv.key.replacingDots, .string(s))
        } else {
            // One level under `attributes`, key kept whole (the index template maps it `flattened`).
            var attrs: ECSDocument
            if case .object(let o)? = d["attributes"] { attrs = o } else { attrs = ECSDocument() }
            attrs[kv.key] = ECSDocument.Value(kv.value)
            d["attributes"] = .object(attrs)
        }
    }
}

extension StringProtocol {
    /// ECS label keys and custom field names may not contain dots: `a.b` → `a_b`.
    var replacingDots: String { String(map { $0 == "." ? "_" : $0 }) }
}

/// Whether a string is an IPv4 dotted quad or an IPv6 literal (RFC 4291 §2.2 text forms), so that
/// only real addresses go to ECS `ip`-typed fields (a mapping error otherwise).
enum IPLiteral {
    static func isIP(_ s: String) -> Bool { isIPv4(Substring(s)) || isIPv6(s) }

    static func isIPv4(_ s: Substring) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(p), v <= 255 else { return false }
            if p.count > 1 && p.first == "0" { return false }
        }
        return true
    }

    static func isIPv6(_ s: String) -> Bool {
        // A zone index (`fe80::1%eth0`) is left out: not every `ip` field parser takes one.
        guard !s.contains("%") else { return false }
        let text = Substring(s)
        guard text.contains(":"), text.utf8.count <= 45 else { return false }
        let bytes = Array(text.utf8)
        var doubleColons = 0
        for i in bytes.indices.dropLast() where bytes[i] == UInt8(ascii: ":") && bytes[i + 1] == UInt8(ascii: ":") { doubleColons += 1 }
        guard doubleColons <= 1 else { return false }
        var groups = text.split(separator: ":", omittingEmptySubsequences: true)
        var slots = 0
        if let last = groups.last, last.contains(".") {
            guard isIPv4(last) else { return false }
            groups.removeLast()
            slots += 2
        }
        for g in groups {
            guard g.count <= 4, g.utf8.allSatisfy({ Hex.value(of: $0) != nil }) else { return false }
            slots += 1
        }
        if doubleColons == 1 { return slots < 8 }
        // Without `::` every group must be present, and none may be empty.
        return slots == 8 && !text.hasPrefix(":") && !text.hasSuffix(":")
    }
}
