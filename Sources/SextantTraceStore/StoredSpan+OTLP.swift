import SextantModel

/// OTLP → Jaeger, as Jaeger's own translation does it (opentelemetry-collector-contrib
/// `pkg/translator/jaeger/traces_to_jaegerproto.go`, which jaeger-query uses for OTLP data):
/// `service.name` → process `serviceName`, other resource attributes → process tags; scope name and
/// version → `otel.scope.name`/`otel.scope.version` tags; kind → `span.kind`; status →
/// `otel.status_code` (+ `error=true`) and `otel.status_description`; trace state →
/// `w3c.tracestate`; parent → first `CHILD_OF` reference; links → `FOLLOWS_FROM` references (unless
/// their `opentracing.ref_type` says `child_of`); events → logs whose `event` field holds the name.
extension StoredSpan {
    enum Key {
        static let serviceName = "service.name"
        static let spanKind = "span.kind"
        static let error = "error"
        static let statusCode = "otel.status_code"
        static let statusDescription = "otel.status_description"
        static let traceState = "w3c.tracestate"
        static let scopeName = "otel.scope.name"
        static let scopeVersion = "otel.scope.version"
        static let event = "event"
        static let refType = "opentracing.ref_type"
    }

    /// The service name the translator gives a resource without attributes.
    public static let noServiceName = "OTLPResourceNoServiceName"

    /// The Jaeger process of a resource.
    public static func process(from resource: Resource) -> Process {
        if resource.attributes.isEmpty { return Process(serviceName: noServiceName) }
        var serviceName = ""
        if case .string(let s)? = resource.attributes[key: Key.serviceName] { serviceName = s }
        var tags: [Tag] = []
        tags.reserveCapacity(resource.attributes.count)
        for kv in resource.attributes where kv.key != Key.serviceName { tags.append(Tag(kv.key, value(kv.value))) }
        return Process(serviceName: serviceName, tags: tags)
    }

    /// The `otel.scope.*` tags of a scope, put first on each of its spans.
    static func scopeTags(_ scope: InstrumentationScope) -> [Tag] {
        var tags: [Tag] = []
        if !scope.name.isEmpty { tags.append(Tag(Key.scopeName, .string(scope.name))) }
        if !scope.version.isEmpty { tags.append(Tag(Key.scopeVersion, .string(scope.version))) }
        return tags
    }

    /// Translates one OTLP span; `scopeTags` come from `scopeTags(_:)`.
    public init(_ span: Span, process: Process, scope: InstrumentationScope) {
        self.init(span, process: process, scopeTags: Self.scopeTags(scope))
    }

    init(_ span: Span, process: Process, scopeTags: [Tag]) {
        let kind = Self.kindName(span.kind)
        var tags = scopeTags
        tags.reserveCapacity(scopeTags.count + span.attributes.count + 4)
        for kv in span.attributes { tags.append(Tag(kv.key, Self.value(kv.value))) }
        if !kind.isEmpty { tags.append(Tag(Key.spanKind, .string(kind))) }
        switch span.status.code {
        case .ok: tags.append(Tag(Key.statusCode, .string("OK")))
        case .error:
            tags.append(Tag(Key.statusCode, .string("ERROR")))
            tags.append(Tag(Key.error, .bool(true)))
        default: break
        }
        if !span.status.message.isEmpty { tags.append(Tag(Key.statusDescription, .string(span.status.message))) }
        if !span.traceState.isEmpty { tags.append(Tag(Key.traceState, .string(span.traceState))) }

        self.init(
            traceID: span.traceID, spanID: span.spanID, operationName: span.name, spanKind: kind,
            references: Self.references(span), flags: span.flags & 0x01, startTime: span.startTimeUnixNano / 1000,
            duration: span.durationNanos / 1000, tags: tags, logs: span.events.map(Self.log), process: process)
    }

    /// The `span.kind` tag value; "" for unspecified and unknown kinds (no tag).
    static func kindName(_ kind: SpanKind) -> String {
        switch kind {
        case .server: return "server"
        case .client: return "client"
        case .producer: return "producer"
        case .consumer: return "consumer"
        case .internal: return "internal"
        default: return ""
        }
    }

    /// The parent first (backends look for the first `CHILD_OF`), then one reference per link; a
    /// link to the parent itself only sets the parent reference's type.
    static func references(_ span: Span) -> [Reference] {
        var refs: [Reference] = []
        refs.reserveCapacity(span.links.count + 1)
        let parent = span.parentSpanID.flatMap { $0.isValid ? $0 : nil }
        if let parent { refs.append(Reference(.childOf, traceID: span.traceID, spanID: parent)) }
        for link in span.links {
            var refType = Reference.Kind.followsFrom
            if case .string("child_of")? = link.attributes[key: Key.refType] { refType = .childOf }
            if let parent, link.traceID == span.traceID, link.spanID == parent {
                refs[0].refType = refType
                continue
            }
            refs.append(Reference(refType, traceID: link.traceID, spanID: link.spanID))
        }
        return refs
    }

    /// The event name goes first as the `event` field, unless an attribute already has that key.
    static func log(_ event: SpanEvent) -> Log {
        var fields: [Tag] = []
        fields.reserveCapacity(event.attributes.count + 1)
        if !event.name.isEmpty && event.attributes[key: Key.event] == nil { fields.append(Tag(Key.event, .string(event.name))) }
        for kv in event.attributes { fields.append(Tag(kv.key, value(kv.value))) }
        return Log(timestamp: event.timeUnixNano / 1000, fields: fields)
    }

    /// Scalars keep their type; arrays and maps become their JSON text (pdata `AsString`); an empty
    /// value becomes "".
    static func value(_ v: AnyValue) -> Value {
        switch v {
        case .string(let s): return .string(s)
        case .bool(let b): return .bool(b)
        case .int(let i): return .int64(i)
        case .double(let d): return .float64(d)
        case .bytes(let b): return .binary(b)
        case .array, .kvlist:
            var w = JSONWriter()
            w.anyValue(v)
            return .string(w.text)
        case .empty: return .string("")
        }
    }

    // MARK: Size

    /// Bytes charged per span besides its strings and values: IDs, times, array headers.
    static let spanOverhead = 128
    static let entryOverhead = 16

    /// The approximate in-memory size of the span without its process.
    var approximateSize: Int {
        var n = Self.spanOverhead + operationName.utf8.count + references.count * 32
        for tag in tags { n += tag.approximateSize }
        for log in logs {
            n += Self.entryOverhead
            for field in log.fields { n += field.approximateSize }
        }
        return n
    }
}

extension StoredSpan.Process {
    /// The approximate in-memory size, charged once per trace that holds the process.
    var approximateSize: Int { StoredSpan.spanOverhead / 2 + serviceName.utf8.count + tags.reduce(0) { $0 + $1.approximateSize } }
}

extension StoredSpan.Tag {
    var approximateSize: Int {
        let v: Int
        switch value {
        case .string(let s): v = s.utf8.count
        case .bool: v = 1
        case .int64, .float64: v = 8
        case .binary(let b): v = b.count
        }
        return StoredSpan.entryOverhead + key.utf8.count + v
    }
}
