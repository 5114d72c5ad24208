import SextantModel
import SextantOTLP

/// Zipkin span ↔ OpenTelemetry span, following the OpenTelemetry specification
/// (`exporter-zipkin.md`, `mapping-to-non-otlp.md`) and the collector's translator
/// (opentelemetry-collector-contrib `pkg/translator/zipkin/zipkinv2`, `to_translator.go` and
/// `from_translator.go`), so that spans look the same whichever collector they pass through.
enum ZipkinTranslation {}

// MARK: Zipkin → OpenTelemetry

extension ZipkinTranslation {
    /// Groups spans by resource (local service name plus resource tags) and scope, in order of
    /// first appearance. (The collector sorts by service name instead; appearance order keeps
    /// output deterministic without reordering the caller's spans.)
    static func traces(from spans: [ZipkinSpan]) -> TracesData {
        var data = TracesData()
        var resourceIndex: [[String]: Int] = [:]
        var scopeIndex: [ScopeKey: Int] = [:]
        for zspan in spans {
            var tags = TagSet(zspan.tags)
            let resource = takeResource(zspan, &tags)
            let scope = takeScope(&tags)
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
            data.resourceSpans[ri].scopeSpans[si].spans.append(span(from: zspan, tags: &tags))
        }
        return data
    }

    private struct ScopeKey: Hashable {
        var resource: Int
        var name: String
        var version: String
    }

    /// `localEndpoint.serviceName` becomes `service.name` (or the attribute named by
    /// `otlp.service.name.source`); tags with resource attribute names move to the resource.
    private static func takeResource(_ zspan: ZipkinSpan, _ tags: inout TagSet) -> Resource {
        var resource = Resource()
        let source = tags.take(ZipkinTagNames.serviceNameSource)
        if let name = zspan.localEndpoint?.serviceName, !name.isEmpty {
            resource.attributes.append(KeyValue(source ?? ZipkinTagNames.serviceName, .string(name)))
        }
        for key in tags.keys where ZipkinTagNames.resourceKeys.contains(key) {
            if let value = tags.take(key) { resource.attributes.set(key, .string(value)) }
        }
        return resource
    }

    /// `otel.scope.*`, or the older `otel.library.*`, become the instrumentation scope.
    private static func takeScope(_ tags: inout TagSet) -> InstrumentationScope {
        let name = tags.take(ZipkinTagNames.scopeName)
        let libraryName = tags.take(ZipkinTagNames.libraryName)
        let version = tags.take(ZipkinTagNames.scopeVersion)
        let libraryVersion = tags.take(ZipkinTagNames.libraryVersion)
        return InstrumentationScope(name: name ?? libraryName ?? "", version: version ?? libraryVersion ?? "")
    }

    private static func span(from z: ZipkinSpan, tags: inout TagSet) -> Span {
        var span = Span(traceID: z.traceID, spanID: z.id, name: z.name)
        span.traceState = tags.take(ZipkinTagNames.traceState) ?? ""
        // A span that names itself as its parent is a root (collector behaviour).
        if let parent = z.parentID, parent != z.id { span.parentSpanID = parent }
        span.kind = kind(z.kind, &tags)
        span.status = status(&tags)
        span.links = links(&tags)
        span.droppedAttributesCount = tags.take(ZipkinTagNames.droppedAttributesCount).flatMap { UInt32($0) } ?? 0
        span.droppedEventsCount = tags.take(ZipkinTagNames.droppedEventsCount).flatMap { UInt32($0) } ?? 0
        span.droppedLinksCount = tags.take(ZipkinTagNames.droppedLinksCount).flatMap { UInt32($0) } ?? 0

        // Tags are strings; typed parsing of "123"/"true" (the collector's opt-in
        // `parse_string_tags`) is not done, so values round-trip unchanged.
        span.attributes.reserveCapacity(tags.count + 4)
        for (key, value) in tags.remaining { span.attributes.append(KeyValue(key, .string(value))) }
        if let local = z.localEndpoint {
            if !local.ipv4.isEmpty { span.attributes.set(ZipkinTagNames.hostIP, .string(local.ipv4)) }
            if !local.ipv6.isEmpty { span.attributes.set(ZipkinTagNames.hostIP, .string(local.ipv6)) }
            if local.port > 0 { span.attributes.set(ZipkinTagNames.hostPort, .int(Int64(local.port))) }
        }
        if let remote = z.remoteEndpoint {
            if !remote.serviceName.isEmpty { span.attributes.set(ZipkinTagNames.peerService, .string(remote.serviceName)) }
            if !remote.ipv4.isEmpty { span.attributes.set(ZipkinTagNames.peerIP, .string(remote.ipv4)) }
            if !remote.ipv6.isEmpty { span.attributes.set(ZipkinTagNames.peerIP, .string(remote.ipv6)) }
            if remote.port > 0 { span.attributes.set(ZipkinTagNames.peerPort, .int(Int64(remote.port))) }
        }

        // Zipkin allows an absent timestamp; OTLP needs one, so the span starts at the epoch and
        // is marked, letting the exporter leave `timestamp` out again.
        if z.timestamp == 0 {
            span.startTimeUnixNano = 0
            span.endTimeUnixNano = nanos(z.duration)
            span.attributes.set(ZipkinTagNames.startTimeAbsent, .bool(true))
        } else {
            span.startTimeUnixNano = nanos(z.timestamp)
            span.endTimeUnixNano = nanos(z.timestamp &+ z.duration)
        }
        span.events = z.annotations.map(event(from:))
        return span
    }

    /// Microseconds to nanoseconds, saturating (Zipkin µs overflow ns only after year 2554).
    private static func nanos(_ micros: UInt64) -> UInt64 {
        let (v, overflow) = micros.multipliedReportingOverflow(by: 1000)
        return overflow ? .max : v
    }

    private static func kind(_ kind: ZipkinKind, _ tags: inout TagSet) -> SpanKind {
        switch kind {
        case .client: return .client
        case .server: return .server
        case .producer: return .producer
        case .consumer: return .consumer
        case .unspecified:
            return tags.take(ZipkinTagNames.spanKind) == "internal" ? .internal : .unspecified
        }
    }

    /// `otel.status_code` (+ `otel.status_description`) set the status; an `error` tag means
    /// ERROR (Zipkin: any `error` tag marks a failed span) and, unless it is just `true`, carries
    /// the description (`exporter-zipkin.md`, "Status").
    private static func status(_ tags: inout TagSet) -> SpanStatus {
        var status = SpanStatus()
        let codeText = tags.take(ZipkinTagNames.statusCode)
        if let codeText {
            status.code = statusCode(codeText)
            status.message = tags.take(ZipkinTagNames.statusDescription) ?? ""
        }
        if let error = tags.peek(ZipkinTagNames.error),
            status.code == .error || (codeText == nil && error != "false")
        {
            _ = tags.take(ZipkinTagNames.error)
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

    /// `otlp.link.<i>` tags: `traceid|spanid|tracestate|{attributes}|dropped` (collector format).
    /// A tag that does not parse stays an attribute.
    private static func links(_ tags: inout TagSet) -> [SpanLink] {
        var links: [SpanLink] = []
        for i in 0..<128 {
            let key = ZipkinTagNames.linkPrefix + String(i)
            guard let value = tags.peek(key) else { break }
            let parts = value.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count >= 5,
                let traceID = TraceID(hex: parts[0]),
                let spanID = SpanID(hex: parts[1]),
                let dropped = UInt32(parts[parts.count - 1]),
                let attributes = AttributeJSON.parseObject(parts[3..<(parts.count - 1)].joined(separator: "|"))
            else { continue }
            _ = tags.take(key)
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
        if let first = v.firstIndex(of: "|"), let last = v.lastIndex(of: "|"), first != last,
            let dropped = UInt32(v[v.index(after: last)...]),
            let attributes = AttributeJSON.parseObject(v[v.index(after: first)..<last])
        {
            event.name = String(v[..<first])
            event.attributes = attributes
            event.droppedAttributesCount = dropped
        } else if v.hasPrefix("{"), let members = AttributeJSON.parseObject(v), members.count == 1,
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
    static func zipkinSpans(from data: TracesData) -> [ZipkinSpan] {
        var out: [ZipkinSpan] = []
        out.reserveCapacity(data.spanCount)
        for rs in data.resourceSpans {
            var resourceTags: [(key: String, value: String)] = rs.resource.attributes.map { ($0.key, tagValue($0.value)) }
            let serviceName = takeServiceName(&resourceTags)
            for ss in rs.scopeSpans {
                var baseTags = resourceTags
                if !ss.scope.name.isEmpty { baseTags.append((ZipkinTagNames.scopeName, ss.scope.name)) }
                if !ss.scope.version.isEmpty { baseTags.append((ZipkinTagNames.scopeVersion, ss.scope.version)) }
                for span in ss.spans { out.append(zipkinSpan(from: span, serviceName: serviceName, baseTags: baseTags)) }
            }
        }
        return out
    }

    /// `service.name`, else the collector's fallbacks (recording which one in
    /// `otlp.service.name.source`); removed from the tags.
    private static func takeServiceName(_ tags: inout [(key: String, value: String)]) -> String {
        if let i = tags.firstIndex(where: { $0.key == ZipkinTagNames.serviceName }) {
            return tags.remove(at: i).value
        }
        for key in ZipkinTagNames.serviceNameFallbacks {
            if let i = tags.firstIndex(where: { $0.key == key }) {
                let name = tags.remove(at: i).value
                tags.append((ZipkinTagNames.serviceNameSource, key))
                return name
            }
        }
        return ""
    }

    private static func zipkinSpan(from span: Span, serviceName: String, baseTags: [(key: String, value: String)]) -> ZipkinSpan {
        var z = ZipkinSpan()
        z.traceID = span.traceID
        z.id = span.spanID
        z.parentID = span.parentSpanID
        z.name = span.name
        var tags = TagSet(baseTags + span.attributes.map { ($0.key, tagValue($0.value)) })
        if !span.traceState.isEmpty { tags.set(ZipkinTagNames.traceState, span.traceState) }

        switch span.kind {
        case .client: z.kind = .client
        case .server: z.kind = .server
        case .producer: z.kind = .producer
        case .consumer: z.kind = .consumer
        case .internal:
            z.kind = .unspecified
            tags.set(ZipkinTagNames.spanKind, "internal")
        default: z.kind = .unspecified
        }

        // Times: µs rounded to nearest, as the OpenTelemetry SDK exporters do; a non-zero
        // duration never rounds to 0 (Zipkin reads 0 as "unknown").
        _ = tags.take(ZipkinTagNames.startTimeAbsent)
        z.timestamp = span.startTimeUnixNano == 0 ? 0 : micros(span.startTimeUnixNano)
        let durationNanos = span.durationNanos
        z.duration = durationNanos == 0 ? 0 : max(1, micros(durationNanos))

        z.localEndpoint = endpoint(
            serviceName: serviceName, tags: &tags, ipKey: ZipkinTagNames.hostIP, portKey: ZipkinTagNames.hostPort)
        let peer = tags.take(ZipkinTagNames.peerService) ?? ""
        z.remoteEndpoint = endpoint(
            serviceName: peer, tags: &tags, ipKey: ZipkinTagNames.peerIP, portKey: ZipkinTagNames.peerPort)

        // exporter-zipkin.md "Status": the code unless UNSET, and for ERROR an `error` tag with
        // the description; an `error` tag must not be sent otherwise.
        _ = tags.take(ZipkinTagNames.error)
        switch span.status.code {
        case .ok:
            tags.set(ZipkinTagNames.statusCode, "OK")
        case .error:
            tags.set(ZipkinTagNames.statusCode, "ERROR")
            tags.set(ZipkinTagNames.error, span.status.message)
        default: break
        }

        for (key, dropped) in [
            (ZipkinTagNames.droppedAttributesCount, span.droppedAttributesCount),
            (ZipkinTagNames.droppedEventsCount, span.droppedEventsCount),
            (ZipkinTagNames.droppedLinksCount, span.droppedLinksCount),
        ] where dropped > 0 {
            tags.set(key, String(dropped))
        }

        for (i, link) in span.links.enumerated() {
            let value = link.traceID.hex + "|" + link.spanID.hex + "|" + link.traceState + "|"
                + AttributeJSON.objectText(link.attributes) + "|" + String(link.droppedAttributesCount)
            tags.set(ZipkinTagNames.linkPrefix + String(i), value)
        }

        z.annotations = span.events.map { event in
            var value = event.name
            if !event.attributes.isEmpty || event.droppedAttributesCount > 0 {
                value += "|" + AttributeJSON.objectText(event.attributes) + "|" + String(event.droppedAttributesCount)
            }
            return ZipkinAnnotation(timestamp: micros(event.timeUnixNano), value: value)
        }

        // Sorted, so output is deterministic (and matches the Go and Python encoders' map order).
        z.tags = tags.remaining.sorted { $0.key < $1.key }
        return z
    }

    private static func micros(_ nanos: UInt64) -> UInt64 { nanos / 1000 + (nanos % 1000 >= 500 ? 1 : 0) }

    /// An endpoint from a service name and the IP/port attributes; `nil` when all are empty.
    /// Attributes that are not a valid address or port stay tags.
    private static func endpoint(serviceName: String, tags: inout TagSet, ipKey: String, portKey: String) -> ZipkinEndpoint? {
        var e = ZipkinEndpoint(serviceName: serviceName)
        if let ip = tags.peek(ipKey) {
            if IPAddress.parseIPv4(ip) != nil {
                e.ipv4 = ip
                _ = tags.take(ipKey)
            } else if let v6 = IPAddress.parseIPv6(ip) {
                e.ipv6 = IPAddress.formatIPv6(v6)
                _ = tags.take(ipKey)
            }
        }
        if let text = tags.peek(portKey), let port = UInt16(text) {
            e.port = port
            _ = tags.take(portKey)
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

/// Tags with unique keys (the last value wins, as for a JSON object or protobuf map) that keep
/// their first position, with removal by key.
struct TagSet {
    private var entries: [(key: String, value: String?)] = []
    /// Key → entry of the tags still present; only built past `linearLimit` tags, because a span's few
    /// tags are found faster by comparing keys than by hashing them.
    private var index: [String: Int]?
    private var live = 0
    private static let linearLimit = 16

    init(_ tags: [(key: String, value: String)]) {
        entries.reserveCapacity(tags.count)
        for (key, value) in tags { set(key, value) }
    }

    /// The entry holding `key`, if the tag is present (taken tags are not).
    private func find(_ key: String) -> Int? {
        if let index { return index[key] }
        return entries.firstIndex { $0.value != nil && $0.key == key }
    }

    mutating func set(_ key: String, _ value: String) {
        if let i = find(key) {
            entries[i].value = value
            return
        }
        if index == nil, live >= Self.linearLimit {
            var built: [String: Int] = [:]
            for (i, e) in entries.enumerated() where e.value != nil { built[e.key] = i }
            index = built
        }
        index?[key] = entries.count
        entries.append((key, value))
        live += 1
    }

    func peek(_ key: String) -> String? { find(key).flatMap { entries[$0].value } }

    mutating func take(_ key: String) -> String? {
        guard let i = find(key) else { return nil }
        index?.removeValue(forKey: key)
        live -= 1
        defer { entries[i].value = nil }
        return entries[i].value
    }

    var count: Int { live }

    /// Keys still present, in order.
    var keys: [String] { entries.compactMap { $0.value == nil ? nil : $0.key } }

    var remaining: [(key: String, value: String)] {
        entries.compactMap { entry in entry.value.map { (entry.key, $0) } }
    }
}
