import SextantModel

extension JaegerTranslator {
    /// Translates Jaeger batches to OTLP: one `ResourceSpans` per batch, one `ScopeSpans` per
    /// distinct scope named by the spans' `otel.scope.*` tags, in order of first appearance.
    public static func toTraces(_ batches: [JaegerBatch]) -> DecodeOutcome {
        var traces = TracesData()
        traces.resourceSpans.reserveCapacity(batches.count)
        var rejected = 0
        var firstReason: String?

        for (batchIndex, batch) in batches.enumerated() {
            if batch.process.serviceName.isEmpty && batch.process.tags.isEmpty && batch.spans.isEmpty { continue }
            var resourceSpans = ResourceSpans(resource: resource(from: batch.process))
            var scopeIndex: [ScopeKey: Int] = [:]
            for (spanIndex, jaegerSpan) in batch.spans.enumerated() {
                if let problem = invalidIDs(jaegerSpan) {
                    rejected += 1
                    if firstReason == nil {
                        firstReason = "batch \(batchIndex) span \(spanIndex) (\"\(jaegerSpan.operationName)\"): \(problem)"
                    }
                    continue
                }
                var tags = jaegerSpan.tags
                let scope = takeScope(from: &tags)
                let span = span(from: jaegerSpan, tags: tags)
                let key = ScopeKey(name: scope.name, version: scope.version)
                if let i = scopeIndex[key] {
                    resourceSpans.scopeSpans[i].spans.append(span)
                } else {
                    scopeIndex[key] = resourceSpans.scopeSpans.count
                    resourceSpans.scopeSpans.append(ScopeSpans(scope: scope, spans: [span]))
                }
            }
            traces.resourceSpans.append(resourceSpans)
        }

        let reason = firstReason.map { rejected > 1 ? "\($0) (\(rejected) rejected in total)" : $0 }
        return DecodeOutcome(traces: traces, rejectedSpans: rejected, rejectionReason: reason)
    }

    private struct ScopeKey: Hashable {
        var name: String
        var version: String
    }

    /// OTLP requires a non-zero trace ID and span ID (trace.proto); the collector would pass such a
    /// span on, but every OTLP backend rejects it, so it is counted here instead.
    private static func invalidIDs(_ span: JaegerSpan) -> String? {
        if span.traceIdHigh == 0 && span.traceIdLow == 0 { return "trace ID is all zero" }
        if span.spanId == 0 { return "span ID is zero" }
        return nil
    }

    // MARK: Resource

    /// `service.name` first, then the process tags; the collector also renames the Jaeger
    /// clients' `hostname` and `jaeger.version` tags (`translateHostnameAttr`,
    /// `translateJaegerVersionAttr`).
    static func resource(from process: JaegerProcess) -> Resource {
        var builder = AttributeBuilder(capacity: process.tags.count + 1)
        if !process.serviceName.isEmpty { builder.put(Key.serviceName, .string(process.serviceName)) }
        builder.put(process.tags)
        var attributes = builder.attributes
        if attributes[key: Key.hostName] == nil, let hostname = attributes.remove(key: Key.hostname) {
            attributes.append(KeyValue(Key.hostName, hostname))
        }
        if attributes[key: Key.exporterVersion] == nil, let version = attributes.remove(key: Key.jaegerVersion) {
            attributes.append(KeyValue(Key.exporterVersion, .string("Jaeger-" + version.stringOrEmpty)))
        }
        return Resource(attributes: attributes)
    }

    // MARK: Span

    /// Removes the scope tags: `otel.scope.name`/`otel.scope.version`, or the older
    /// `otel.library.name`/`otel.library.version`. The version counts only with a name.
    static func takeScope(from tags: inout [JaegerTag]) -> InstrumentationScope {
        for (nameKey, versionKey) in [(Key.scopeName, Key.scopeVersion), (Key.libraryName, Key.libraryVersion)] {
            guard let i = tags.firstIndex(where: { $0.key == nameKey }) else { continue }
            let name = tags.remove(at: i).vStr ?? ""
            var version = ""
            if let j = tags.firstIndex(where: { $0.key == versionKey }) { version = tags.remove(at: j).vStr ?? "" }
            return InstrumentationScope(name: name, version: version)
        }
        return InstrumentationScope()
    }

    static func span(from j: JaegerSpan, tags: [JaegerTag]) -> Span {
        var span = Span(
            traceID: TraceID(high: UInt64(bitPattern: j.traceIdHigh), low: UInt64(bitPattern: j.traceIdLow)),
            spanID: SpanID(UInt64(bitPattern: j.spanId)),
            flags: j.flags & JaegerSpan.sampledFlag != 0 ? sampledTraceFlag : 0,
            name: j.operationName,
            startTimeUnixNano: nanoseconds(j.startTime),
            endTimeUnixNano: nanoseconds(j.startTime &+ j.duration))

        let parent = parentSpanID(of: j)
        if parent != 0 { span.parentSpanID = SpanID(UInt64(bitPattern: parent)) }

        var builder = AttributeBuilder(capacity: tags.count)
        builder.put(tags)
        var attributes = builder.attributes
        if let kind = attributes.remove(key: Key.spanKind) { span.kind = spanKind(kind.stringOrEmpty) }
        span.status = takeStatus(from: &attributes, kind: span.kind)
        if let state = attributes.remove(key: Key.traceState) { span.traceState = state.stringOrEmpty }
        span.attributes = attributes

        span.events = j.logs.map(event(from:))
        span.links = links(from: j.references, excludingParent: parent)
        return span
    }

    /// `parentSpanId`, else the first same-trace `CHILD_OF` reference, else the first same-trace
    /// `FOLLOWS_FROM` one (Jaeger `model.Span.ParentSpanID`, which the collector follows).
    static func parentSpanID(of span: JaegerSpan) -> Int64 {
        if span.parentSpanId != 0 { return span.parentSpanId }
        var followsFrom: Int64?
        for ref in span.references where ref.traceIdHigh == span.traceIdHigh && ref.traceIdLow == span.traceIdLow {
            if ref.refType == .childOf { return ref.spanId }
            if followsFrom == nil && ref.refType == .followsFrom { followsFrom = ref.spanId }
        }
        return followsFrom ?? 0
    }

    /// Every reference but the `CHILD_OF` one that became the parent.
    static func links(from refs: [JaegerSpanRef], excludingParent parent: Int64) -> [SpanLink] {
        var links: [SpanLink] = []
        links.reserveCapacity(refs.count)
        for ref in refs where !(ref.spanId == parent && ref.refType == .childOf) {
            links.append(
                SpanLink(
                    traceID: TraceID(high: UInt64(bitPattern: ref.traceIdHigh), low: UInt64(bitPattern: ref.traceIdLow)),
                    spanID: SpanID(UInt64(bitPattern: ref.spanId)),
                    attributes: [
                        KeyValue(Key.refType, .string(ref.refType == .childOf ? RefTypeValue.childOf : RefTypeValue.followsFrom))
                    ]))
        }
        return links
    }

    static func event(from log: JaegerLog) -> SpanEvent {
        var event = SpanEvent(timeUnixNano: nanoseconds(log.timestamp))
        var builder = AttributeBuilder(capacity: log.fields.count)
        builder.put(log.fields)
        var attributes = builder.attributes
        if let name = attributes.remove(key: Key.event) { event.name = name.stringOrEmpty }
        event.attributes = attributes
        return event
    }

    static func spanKind(_ tag: String) -> SpanKind {
        switch tag {
        case "client": return .client
        case "server": return .server
        case "producer": return .producer
        case "consumer": return .consumer
        case "internal": return .internal
        default: return .unspecified
        }
    }

    /// The collector's `setInternalSpanStatus`: `error=true` wins, then `otel.status_code`, then
    /// (for spans with neither) an HTTP status code per the HTTP semantic conventions. The tags
    /// that became the status are removed.
    static func takeStatus(from attributes: inout [KeyValue], kind: SpanKind) -> SpanStatus {
        var code = SpanStatus.Code.unset
        var message = ""
        var found = false

        if case .bool(true)? = attributes[key: Key.error] {
            code = .error
            found = true
            _ = attributes.remove(key: Key.error)
            if let description = attributes.remove(key: Key.statusDescription) {
                message = description.stringOrEmpty
            } else if let httpMessage = attributes[key: Key.httpStatusMessage] {
                message = httpMessage.stringOrEmpty
            }
        }

        if let statusCode = attributes[key: Key.statusCode] {
            if !found {
                found = true
                switch statusCode.stringOrEmpty.uppercased() {
                case StatusValue.ok: code = .ok
                case StatusValue.error: code = .error
                default: break
                }
                if let description = attributes.remove(key: Key.statusDescription) { message = description.stringOrEmpty }
            }
            _ = attributes.remove(key: Key.statusCode)
        } else if !found, let httpCode = attributes[key: Key.httpStatusCode].flatMap(httpStatusCode) {
            let mapped = statusFromHTTP(httpCode, kind: kind)
            if mapped != .unset {
                found = true
                code = mapped
            }
            if let httpMessage = attributes[key: Key.httpStatusMessage] { message = httpMessage.stringOrEmpty }
        }

        return found ? SpanStatus(code: code, message: message) : SpanStatus()
    }

    /// An integer, or a string holding one (`codeFromAttr`).
    private static func httpStatusCode(_ value: AnyValue) -> Int64? {
        switch value {
        case .int(let i): return i
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    /// HTTP semantic conventions, "Status": 4xx is an error for clients but not for servers;
    /// codes outside 1xx–3xx are errors.
    private static func statusFromHTTP(_ code: Int64, kind: SpanKind) -> SpanStatus.Code {
        if code >= 400 && code < 500 {
            if kind == .client { return .error }
            if kind == .server { return .unset }
        }
        return code >= 100 && code < 400 ? .unset : .error
    }

    /// Epoch microseconds to nanoseconds, wrapping like the collector's `uint64(µs) * 1000`.
    @inline(__always)
    static func nanoseconds(_ micros: Int64) -> UInt64 { UInt64(bitPattern: micros) &* 1000 }
}

extension JaegerTag {
    /// The tag's value as an attribute value; an unknown `vType` becomes a descriptive string.
    var attributeValue: AnyValue {
        switch vType {
        case .string: return .string(vStr ?? "")
        case .bool: return .bool(vBool ?? false)
        case .long: return .int(vLong ?? 0)
        case .double: return .double(vDouble ?? 0)
        case .binary: return .bytes(vBinary ?? [])
        default: return .string("<Unknown Jaeger TagType \(vType.rawValue)>")
        }
    }
}

/// Builds an attribute list with map semantics: a repeated key replaces the earlier value in
/// place (pdata `Map.Put*`). Small lists search linearly; past 16 entries a key index keeps a
/// datagram full of tags from costing quadratic time.
struct AttributeBuilder {
    private(set) var attributes: [KeyValue]
    private var index: [String: Int] = [:]
    private static let indexThreshold = 16

    init(capacity: Int) {
        attributes = []
        attributes.reserveCapacity(capacity)
    }

    mutating func put(_ key: String, _ value: AnyValue) {
        if attributes.count < Self.indexThreshold {
            if let i = attributes.firstIndex(where: { $0.key == key }) {
                attributes[i].value = value
            } else {
                attributes.append(KeyValue(key, value))
            }
            return
        }
        if index.isEmpty {
            for (i, kv) in attributes.enumerated() { index[kv.key] = i }
        }
        if let i = index[key] {
            attributes[i].value = value
        } else {
            index[key] = attributes.count
            attributes.append(KeyValue(key, value))
        }
    }

    mutating func put(_ tags: [JaegerTag]) {
        for tag in tags { put(tag.key, tag.attributeValue) }
    }
}

extension Array where Element == KeyValue {
    /// Removes the first attribute with `key` and returns its value.
    mutating func remove(key: String) -> AnyValue? {
        guard let i = firstIndex(where: { $0.key == key }) else { return nil }
        return remove(at: i).value
    }
}
