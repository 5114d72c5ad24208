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

        init() {
            tags = []
            positions = ZipkinTagPositions()
        }

        /// Empties the set, taking over `storage`'s allocation.
        mutating func reset(reusing storage: inout [KeyValue]) {
            swap(&tags, &storage)
            tags.removeAll(keepingCapacity: true)
            positions = ZipkinTagPositions()
            dropped = ZipkinDroppedTags()
        }

        /// Adds a tag classified as `role`; a tag with the same key takes the new value in place.
        mutating func merge(_ key: String, _ value: AnyValue, role: ZipkinTagRole?) {
            switch role {
            case .some(.resource), .some(.link), .none: tags.set(key, value)
            case .some(let role): set(role, key, value)
            }
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
        // Searched as UTF-8: `|` and `{` are ASCII, and the indices are the string's own.
        if let first = v.utf8.firstIndex(of: UInt8(ascii: "|")), let last = v.utf8.lastIndex(of: UInt8(ascii: "|")), first != last,
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

// MARK: OpenTelemetry → Zipkin

extension ZipkinTranslation {
    /// Calls `body` with each span of `data` in Zipkin's form, in order or (for writers that
    /// prepend) in reverse. One `ZipkinSpan` is reused, so its arrays are allocated once per call.
    static func forEachZipkinSpan(in data: TracesData, reversed: Bool = false, _ body: (ZipkinSpan) -> Void) {
        var z = ZipkinSpan()
        var tags = MappedTags()
        for ri in order(data.resourceSpans.count, reversed) {
            let rs = data.resourceSpans[ri]
            var resourceTags = rs.resource.attributes.map { KeyValue($0.key, .string(tagValue($0.value))) }
            let serviceName = takeServiceName(&resourceTags)
            for si in order(rs.scopeSpans.count, reversed) {
                let ss = rs.scopeSpans[si]
                var baseTags = resourceTags
                if !ss.scope.name.isEmpty { baseTags.append(KeyValue(ZipkinTagNames.scopeName, .string(ss.scope.name))) }
                if !ss.scope.version.isEmpty { baseTags.append(KeyValue(ZipkinTagNames.scopeVersion, .string(ss.scope.version))) }
                // Classified once for all the scope's spans.
                let classified = baseTags.map { (tag: $0, role: ZipkinTagRole.of($0.key)) }
                for i in order(ss.spans.count, reversed) {
                    fill(&z, &tags, from: ss.spans[i], serviceName: serviceName, baseTags: classified)
                    body(z)
                }
            }
        }
    }

    private static func order(_ count: Int, _ reversed: Bool) -> StrideTo<Int> {
        reversed ? stride(from: count - 1, to: -1, by: -1) : stride(from: 0, to: count, by: 1)
    }

    /// `service.name`, else the collector's fallbacks (recording which one in
    /// `otlp.service.name.source`); removed from the tags.
    private static func takeServiceName(_ tags: inout [KeyValue]) -> String {
        if let i = tags.firstIndex(where: { $0.key == ZipkinTagNames.serviceName }) {
            return tags.remove(at: i).value.asString
        }
        for key in ZipkinTagNames.serviceNameFallbacks {
            if let i = tags.firstIndex(where: { $0.key == key }) {
                let name = tags.remove(at: i).value.asString
                tags.append(KeyValue(ZipkinTagNames.serviceNameSource, .string(key)))
                return name
            }
        }
        return ""
    }

    /// Sets `z` to the Zipkin form of `span`, reusing `z`'s arrays; `tags` is scratch space.
    private static func fill(
        _ z: inout ZipkinSpan, _ tags: inout MappedTags, from span: Span, serviceName: String,
        baseTags: [(tag: KeyValue, role: ZipkinTagRole?)]
    ) {
        z.traceID = span.traceID
        z.id = span.spanID
        z.parentID = span.parentSpanID
        z.name = span.name
        z.debug = false
        z.shared = false
        tags.reset(reusing: &z.tags)
        for (tag, role) in baseTags { tags.merge(tag.key, tag.value, role: role) }
        for kv in span.attributes { tags.merge(kv.key, .string(tagValue(kv.value)), role: ZipkinTagRole.of(kv.key)) }
        if !span.traceState.isEmpty { tags.set(.traceState, ZipkinTagNames.traceState, .string(span.traceState)) }

        switch span.kind {
        case .client: z.kind = .client
        case .server: z.kind = .server
        case .producer: z.kind = .producer
        case .consumer: z.kind = .consumer
        case .internal:
            z.kind = .unspecified
            tags.set(.spanKind, ZipkinTagNames.spanKind, .string("internal"))
        default: z.kind = .unspecified
        }

        // Times: µs rounded to nearest, as the OpenTelemetry SDK exporters do; a non-zero
        // duration never rounds to 0 (Zipkin reads 0 as "unknown").
        _ = tags.take(.startTimeAbsent)
        z.timestamp = span.startTimeUnixNano == 0 ? 0 : micros(span.startTimeUnixNano)
        let durationNanos = span.durationNanos
        z.duration = durationNanos == 0 ? 0 : max(1, micros(durationNanos))

        z.localEndpoint = endpoint(serviceName: serviceName, tags: &tags, ip: .hostIP, port: .hostPort)
        let peer = tags.take(.peerService) ?? ""
        z.remoteEndpoint = endpoint(serviceName: peer, tags: &tags, ip: .peerIP, port: .peerPort)

        // exporter-zipkin.md "Status": the code unless UNSET, and for ERROR an `error` tag with
        // the description; an `error` tag must not be sent otherwise.
        _ = tags.take(.error)
        switch span.status.code {
        case .ok:
            tags.set(.statusCode, ZipkinTagNames.statusCode, .string("OK"))
        case .error:
            tags.set(.statusCode, ZipkinTagNames.statusCode, .string("ERROR"))
            tags.set(.error, ZipkinTagNames.error, .string(span.status.message))
        default: break
        }

        if span.droppedAttributesCount > 0 {
            tags.set(.droppedAttributesCount, ZipkinTagNames.droppedAttributesCount, .string(String(span.droppedAttributesCount)))
        }
        if span.droppedEventsCount > 0 {
            tags.set(.droppedEventsCount, ZipkinTagNames.droppedEventsCount, .string(String(span.droppedEventsCount)))
        }
        if span.droppedLinksCount > 0 {
            tags.set(.droppedLinksCount, ZipkinTagNames.droppedLinksCount, .string(String(span.droppedLinksCount)))
        }

        for (i, link) in span.links.enumerated() {
            let value = link.traceID.hex + "|" + link.spanID.hex + "|" + link.traceState + "|"
                + AttributeJSON.objectText(link.attributes) + "|" + String(link.droppedAttributesCount)
            tags.merge(ZipkinTagNames.linkPrefix + String(i), .string(value), role: .link)
        }

        z.annotations.removeAll(keepingCapacity: true)
        for event in span.events {
            var value = event.name
            if !event.attributes.isEmpty || event.droppedAttributesCount > 0 {
                value += "|" + AttributeJSON.objectText(event.attributes) + "|" + String(event.droppedAttributesCount)
            }
            z.annotations.append(ZipkinAnnotation(timestamp: micros(event.timeUnixNano), value: value))
        }

        // Sorted, so output is deterministic (and matches the Go and Python encoders' map order).
        tags.dropped.remove(from: &tags.tags)
        tags.tags.sort { $0.key < $1.key }
        swap(&z.tags, &tags.tags)
    }

    private static func micros(_ nanos: UInt64) -> UInt64 { nanos / 1000 + (nanos % 1000 >= 500 ? 1 : 0) }

    /// An endpoint from a service name and the IP/port attributes; `nil` when all are empty.
    /// Attributes that are not a valid address or port stay tags.
    private static func endpoint(serviceName: String, tags: inout MappedTags, ip: ZipkinTagRole, port: ZipkinTagRole) -> ZipkinEndpoint? {
        var e = ZipkinEndpoint(serviceName: serviceName)
        if let text = tags.peek(ip) {
            if IPAddress.parseIPv4Value(text) != nil {
                e.ipv4 = text
                _ = tags.take(ip)
            } else if let v6 = IPAddress.parseIPv6(text) {
                e.ipv6 = IPAddress.formatIPv6(v6)
                _ = tags.take(ip)
            }
        }
        if let text = tags.peek(port), let number = UInt16(text) {
            e.port = number
            _ = tags.take(port)
        }
        return e.isEmpty ? nil : e
    }

    /// An attribute as a tag value: scalars as text, arrays and maps as JSON (as the collector's
    /// `AsString` does), bytes as base64.
    static func tagValue(_ v: AnyValue) -> String {
        switch v {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return d.description
        case .bytes(let b): return Base64.encode(b)
        case .array, .kvlist: return AttributeJSON.valueText(v)
        case .empty: return ""
        }
    }
}
