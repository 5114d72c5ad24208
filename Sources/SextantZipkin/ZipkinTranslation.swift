import SextantModel
import SextantOTLP

/// Zipkin span ↔ OpenTelemetry span, following the OpenTelemetry specification
/// (`exporter-zipkin.md`, `mapping-to-non-otlp.md`) and the collector's translator
/// (opentelemetry-collector-contrib `pkg/translator/zipkin/zipkinv2`, `to_translator.go` and
/// `from_translator.go`), so that spans look the same whichever collector they pass through.
enum ZipkinTranslation {}

// MARK: Zipkin → OpenTelemetry

extension ZipkinTranslation {
    /// Builds OpenTelemetry traces from Zipkin spans as a decoder reads them, one at a time.
    ///
    /// Spans are grouped by resource (local service name plus resource tags) and scope, in order of
    /// first appearance. (The collector sorts by service name instead; appearance order keeps
    /// output deterministic without reordering the caller's spans.) Consecutive spans of one service
    /// are the common case, so the last group is tried before any lookup.
    struct Assembler {
        private(set) var data = TracesData()
        private var resourceIndex: [[String]: Int] = [:]
        private var scopeIndex: [ScopeKey: Int] = [:]
        private var last: (resource: Int, scope: Int)?

        init() {}

        /// Maps `z` and adds it; `z`'s tags are moved out.
        mutating func add(_ z: inout ZipkinSpan) {
            var tags = MappedTags(&z.tags)
            let resource = ZipkinTranslation.takeResource(z, &tags)
            let scope = ZipkinTranslation.takeScope(&tags)
            let (ri, si) = group(resource, scope)
            data.resourceSpans[ri].scopeSpans[si].spans.append(ZipkinTranslation.span(from: &z, tags: &tags))
        }

        private mutating func group(_ resource: Resource, _ scope: InstrumentationScope) -> (Int, Int) {
            if let last {
                let rs = data.resourceSpans[last.resource]
                if rs.resource == resource && rs.scopeSpans[last.scope].scope == scope { return last }
            }
            let resourceKey = resource.attributes.flatMap { [$0.key, $0.value.asString] }
            let ri: Int
            if let i = resourceIndex[resourceKey] {
                ri = i
            } else {
                ri = data.resourceSpans.count
                resourceIndex[resourceKey] = ri
                data.resourceSpans.append(ResourceSpans(resource: resource))
            }
            let scopeKey = ScopeKey(resource: ri, name: scope.name, version: scope.version)
            let si: Int
            if let i = scopeIndex[scopeKey] {
                si = i
            } else {
                si = data.resourceSpans[ri].scopeSpans.count
                scopeIndex[scopeKey] = si
                data.resourceSpans[ri].scopeSpans.append(ScopeSpans(scope: scope))
            }
            last = (ri, si)
            return (ri, si)
        }
    }

    private struct ScopeKey: Hashable {
        var resource: Int
        var name: String
        var version: String
    }

    /// A decoded span's tags while the mapping takes the ones it consumes; what is left becomes
    /// the span's attributes.
    struct MappedTags {
        var tags: [KeyValue]
        var positions: ZipkinTagPositions
        var dropped = ZipkinDroppedTags()

        init(_ tags: inout [KeyValue]) {
            self.tags = []
            swap(&self.tags, &tags)
            positions = ZipkinTagPositions(of: self.tags)
        }

        func value(at i: Int) -> String { tags[i].value.asString }

        func peek(_ role: ZipkinTagRole) -> String? { positions[role].map(value(at:)) }

        mutating func take(_ role: ZipkinTagRole) -> String? {
            guard let i = positions[role] else { return nil }
            positions[role] = nil
            dropped.insert(i)
            return value(at: i)
        }

        /// Sets the tag of `role` (named `key`) in place, or appends it.
        mutating func set(_ role: ZipkinTagRole, _ key: String, _ value: AnyValue) {
            if let i = positions[role] {
                tags[i].value = value
            } else {
                positions[role] = tags.count
                tags.append(KeyValue(key, value))
            }
        }

        /// The tags not taken, in order.
        consuming func remaining() -> [KeyValue] {
            dropped.remove(from: &tags)
            return tags
        }
    }

    /// `localEndpoint.serviceName` becomes `service.name` (or the attribute named by
    /// `otlp.service.name.source`); tags with resource attribute names move to the resource.
    fileprivate static func takeResource(_ zspan: ZipkinSpan, _ tags: inout MappedTags) -> Resource {
        var resource = Resource()
        let source = tags.take(.serviceNameSource)
        if let name = zspan.localEndpoint?.serviceName, !name.isEmpty {
            resource.attributes.append(KeyValue(source ?? ZipkinTagNames.serviceName, .string(name)))
        }
        for i in tags.positions.resource {
            tags.dropped.insert(i)
            resource.attributes.set(tags.tags[i].key, tags.tags[i].value)
        }
        return resource
    }

    /// `otel.scope.*`, or the older `otel.library.*`, become the instrumentation scope.
    fileprivate static func takeScope(_ tags: inout MappedTags) -> InstrumentationScope {
        let name = tags.take(.scopeName)
        let libraryName = tags.take(.libraryName)
        let version = tags.take(.scopeVersion)
        let libraryVersion = tags.take(.libraryVersion)
        return InstrumentationScope(name: name ?? libraryName ?? "", version: version ?? libraryVersion ?? "")
    }

    fileprivate static func span(from z: inout ZipkinSpan, tags: inout MappedTags) -> Span {
        var span = Span(traceID: z.traceID, spanID: z.id, name: z.name)
        span.traceState = tags.take(.traceState) ?? ""
        // A span that names itself as its parent is a root (collector behaviour).
        if let parent = z.parentID, parent != z.id { span.parentSpanID = parent }
        span.kind = kind(z.kind, &tags)
        span.status = status(&tags)
        span.links = links(&tags)
        span.droppedAttributesCount = tags.take(.droppedAttributesCount).flatMap { UInt32($0) } ?? 0
        span.droppedEventsCount = tags.take(.droppedEventsCount).flatMap { UInt32($0) } ?? 0
        span.droppedLinksCount = tags.take(.droppedLinksCount).flatMap { UInt32($0) } ?? 0

        // Tags are strings; typed parsing of "123"/"true" (the collector's opt-in
        // `parse_string_tags`) is not done, so values round-trip unchanged. The endpoint attributes
        // replace tags of the same name in place, or follow the tags.
        if let local = z.localEndpoint {
            if !local.ipv4.isEmpty { tags.set(.hostIP, ZipkinTagNames.hostIP, .string(local.ipv4)) }
            if !local.ipv6.isEmpty { tags.set(.hostIP, ZipkinTagNames.hostIP, .string(local.ipv6)) }
            if local.port > 0 { tags.set(.hostPort, ZipkinTagNames.hostPort, .int(Int64(local.port))) }
        }
        if let remote = z.remoteEndpoint {
            if !remote.serviceName.isEmpty { tags.set(.peerService, ZipkinTagNames.peerService, .string(remote.serviceName)) }
            if !remote.ipv4.isEmpty { tags.set(.peerIP, ZipkinTagNames.peerIP, .string(remote.ipv4)) }
            if !remote.ipv6.isEmpty { tags.set(.peerIP, ZipkinTagNames.peerIP, .string(remote.ipv6)) }
            if remote.port > 0 { tags.set(.peerPort, ZipkinTagNames.peerPort, .int(Int64(remote.port))) }
        }

        // Zipkin allows an absent timestamp; OTLP needs one, so the span starts at the epoch and
        // is marked, letting the exporter leave `timestamp` out again.
        if z.timestamp == 0 {
            span.startTimeUnixNano = 0
            span.endTimeUnixNano = nanos(z.duration)
            tags.set(.startTimeAbsent, ZipkinTagNames.startTimeAbsent, .bool(true))
        } else {
            span.startTimeUnixNano = nanos(z.timestamp)
            span.endTimeUnixNano = nanos(z.timestamp &+ z.duration)
        }
        span.attributes = tags.remaining()
        if !z.annotations.isEmpty {
            span.events.reserveCapacity(z.annotations.count)
            for a in z.annotations { span.events.append(event(from: a)) }
        }
        return span
    }

    /// Microseconds to nanoseconds, saturating (Zipkin µs overflow ns only after year 2554).
    private static func nanos(_ micros: UInt64) -> UInt64 {
        let (v, overflow) = micros.multipliedReportingOverflow(by: 1000)
        return overflow ? .max : v
    }

    private static func kind(_ kind: ZipkinKind, _ tags: inout MappedTags) -> SpanKind {
        switch kind {
        case .client: return .client
        case .server: return .server
        case .producer: return .producer
        case .consumer: return .consumer
        case .unspecified:
            return tags.take(.spanKind) == "internal" ? .internal : .unspecified
        }
    }

    /// `otel.status_code` (+ `otel.status_description`) set the status; an `error` tag means
    /// ERROR (Zipkin: any `error` tag marks a failed span) and, unless it is just `true`, carries
    /// the description (`exporter-zipkin.md`, "Status").
    private static func status(_ tags: inout MappedTags) -> SpanStatus {
        var status = SpanStatus()
        let codeText = tags.take(.statusCode)
        if let codeText {
            status.code = statusCode(codeText)
            status.message = tags.take(.statusDescription) ?? ""
        }
        if let error = tags.peek(.error),
            status.code == .error || (codeText == nil && error != "false")
        {
            _ = tags.take(.error)
            status.code = .error
            if status.message.isEmpty && error != "true" { status.message = error }
        }
        return status
    }

    /// `OK`/`ERROR`/`UNSET` as the specification writes them; also the collector's `Ok`/`Error`
    /// and the OTLP enum names `STATUS_CODE_*`.
    private static func statusCode(_ text: String) -> SpanStatus.Code {
        var name = text.uppercased()
        if name.hasPrefix("STATUS_CODE_") { name.removeFirst("STATUS_CODE_".count) }
        switch name {
        case "OK": return .ok
        case "ERROR": return .error
        default: return .unset
        }
    }

    /// `otlp.link.<i>` tags: `traceid|spanid|tracestate|{attributes}|dropped` (collector format),
    /// from `<i>` = 0 up to the first missing one. A tag that does not parse stays an attribute.
    private static func links(_ tags: inout MappedTags) -> [SpanLink] {
        guard !tags.positions.links.isEmpty else { return [] }
        let prefixCount = ZipkinTagNames.linkPrefix.utf8.count
        var byNumber: [Int: Int] = [:]
        for i in tags.positions.links {
            let suffix = tags.tags[i].key.utf8.dropFirst(prefixCount)
            // Only the numbers `String(i)` writes: no sign, no leading zero.
            guard let n = Int(Substring(suffix)), n >= 0, n < 128, String(n).utf8.elementsEqual(suffix) else { continue }
            byNumber[n] = i
        }
        var links: [SpanLink] = []
        for n in 0..<128 {
            guard let i = byNumber[n] else { break }
            let parts = tags.value(at: i).split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count >= 5,
                let traceID = TraceID(hex: parts[0]),
                let spanID = SpanID(hex: parts[1]),
                let dropped = UInt32(parts[parts.count - 1]),
                let attributes = AttributeJSON.parseObject(parts[3..<(parts.count - 1)].joined(separator: "|"))
            else { continue }
            tags.dropped.insert(i)
            links.append(
                SpanLink(
                    traceID: traceID, spanID: spanID, traceState: String(parts[2]), attributes: attributes,
                    droppedAttributesCount: dropped))
        }
        return links
    }

    /// An annotation becomes an event named by its value. Values the OpenTelemetry exporters wrote
    /// for events with attributes are unpacked: the collector's `name|{attributes}|dropped` and
    /// the SDKs' `{"name": {attributes}}`.
    static func event(from a: ZipkinAnnotation) -> SpanEvent {
        var event = SpanEvent(timeUnixNano: nanos(a.timestamp), name: a.value)
        let v = a.value
        // Searched as UTF-8: `|` and `{` are ASCII, and the indices are the string's own. Most values
        // are plain names, ruled out by one scan of the bytes in place.
        let bar = UInt8(ascii: "|")
        let packed = v.utf8.withContiguousStorageIfAvailable { $0.contains(bar) } ?? v.utf8.contains(bar)
        if packed, let first = v.utf8.firstIndex(of: bar), let last = v.utf8.lastIndex(of: bar), first != last,
            let dropped = UInt32(v[v.utf8.index(after: last)...]),
            let attributes = AttributeJSON.parseObject(v[v.utf8.index(after: first)..<last])
        {
            event.name = String(v[..<first])
            event.attributes = attributes
            event.droppedAttributesCount = dropped
        } else if v.utf8.first == UInt8(ascii: "{"), let members = AttributeJSON.parseObject(v), members.count == 1,
            case .kvlist(let attributes) = members[0].value
        {
            event.name = members[0].key
            event.attributes = attributes
        }
        return event
    }
}
