import SextantModel
import SextantOTLP

// MARK: OpenTelemetry → Zipkin

/// One OpenTelemetry span in Zipkin's form, as the encoders write it (`exporter-zipkin.md`; the
/// collector's `from_translator.go`). The fields Zipkin has of its own are computed; the tags are
/// references to the attributes they come from (``ZipkinOutgoingTags``), and the annotations are
/// the span's events, read when written. Nothing of the span is copied.
struct ZipkinOutgoingSpan {
    var kind = ZipkinKind.unspecified
    /// Epoch microseconds; `0` when absent.
    var timestamp: UInt64 = 0
    /// Microseconds; `0` when absent.
    var duration: UInt64 = 0
    var localEndpoint: ZipkinEndpoint?
    var remoteEndpoint: ZipkinEndpoint?
    let tags = ZipkinOutgoingTags()
}

/// The tags of one outgoing span: the scope's tags (resource attributes and scope name/version),
/// the span's attributes and the tags the mapping makes (status, trace state, links, …), merged by
/// key (a later one replaces an earlier one) and sorted by key in UTF-8 byte order, as Go's
/// `json.Marshal` orders a map (and so the collector's Zipkin exporter).
///
/// Entries refer to their key and value by position; ``key(_:)`` and ``value(_:)`` read them.
/// One instance is reused for every span of a request (a class, so that reading a key or a value
/// never copies the lists).
final class ZipkinOutgoingTags {
    /// Where an entry's key and value are.
    enum Origin: UInt8 {
        /// `scope[index]`.
        case scope
        /// The span's `attributes[index]`.
        case attribute
        /// `made[index]`.
        case made
    }

    /// One tag: where its key and value are, and what sorting needs to know of its key.
    struct Entry {
        var origin: Origin
        /// Taken by the mapping (into an endpoint, or replaced by the span's status).
        var dropped = false
        var index: Int32
        /// Order of addition: of entries with one key, the last added is kept.
        var sequence: Int32
        var length: Int32
        /// The key's first 16 bytes, big-endian, zero-padded: most keys sort on these alone.
        var prefix: (UInt64, UInt64)
    }

    /// A scope tag: classified and measured once for all the scope's spans.
    struct ScopeTag {
        var key: String
        var value: String
        var role: ZipkinTagRole?
        var length: Int32
        var prefix: (UInt64, UInt64)

        init(key: String, value: String) {
            self.key = key
            self.value = value
            (role, length, prefix) = ZipkinOutgoingTags.measure(key)
        }
    }

    /// The current scope's tags; set by the caller before the scope's spans.
    var scope: [ScopeTag] = []
    /// The current span's attributes.
    private var attributes: [KeyValue] = []
    /// The entries; sorted and merged after ``finish()``.
    private(set) var entries: [Entry] = []
    private var made: [(key: String, value: String)] = []
    /// The entry of each single-valued role (by raw value), `-1` when absent.
    private var positions = [Int32](repeating: -1, count: ZipkinTagRole.link.rawValue)

    /// Starts a span's tags: the scope's, then the span's attributes.
    func start(_ attributes: [KeyValue]) {
        self.attributes = attributes
        entries.removeAll(keepingCapacity: true)
        made.removeAll(keepingCapacity: true)
        for r in positions.indices { positions[r] = -1 }
        for i in scope.indices {
            add(.scope, i, role: scope[i].role, length: scope[i].length, prefix: scope[i].prefix)
        }
        for i in attributes.indices {
            let (role, length, prefix) = Self.measure(attributes[i].key)
            add(.attribute, i, role: role, length: length, prefix: prefix)
        }
    }

    private func add(_ origin: Origin, _ index: Int, role: ZipkinTagRole?, length: Int32, prefix: (UInt64, UInt64)) {
        let position = entries.count
        entries.append(
            Entry(origin: origin, index: Int32(index), sequence: Int32(position), length: length, prefix: prefix))
        // A role names one key, so a second entry of a role is a later value of the same key.
        if let role, role != .resource, role != .link { positions[role.rawValue] = Int32(position) }
    }

    /// The entry of the tag with `role`, unless it was removed.
    func entry(_ role: ZipkinTagRole) -> Entry? {
        let i = positions[role.rawValue]
        return i < 0 ? nil : entries[Int(i)]
    }

    /// Removes the tag with `role`.
    func remove(_ role: ZipkinTagRole) {
        let i = positions[role.rawValue]
        guard i >= 0 else { return }
        positions[role.rawValue] = -1
        entries[Int(i)].dropped = true
    }

    /// Sets the tag with `role` (named `key`): a made tag replaces the value of any the span has.
    func set(_ role: ZipkinTagRole, _ key: String, _ value: String) {
        made.append((key: key, value: value))
        let i = Int(positions[role.rawValue])
        if i >= 0 {
            entries[i].origin = .made
            entries[i].index = Int32(made.count - 1)
        } else {
            let (_, length, prefix) = Self.measure(made[made.count - 1].key)
            add(.made, made.count - 1, role: role, length: length, prefix: prefix)
        }
    }

    /// Adds a made tag without a single-valued role (`otlp.link.<i>`); it replaces a tag of the same key.
    func merge(_ key: String, _ value: String) {
        made.append((key: key, value: value))
        let (_, length, prefix) = Self.measure(key)
        add(.made, made.count - 1, role: nil, length: length, prefix: prefix)
    }

    /// Sorts the entries by key and keeps, of each key, the last added unless it was taken.
    func finish() {
        if entries.count <= 24 {
            // Insertion sort: spans have a handful of tags, and most compare on their prefixes.
            for i in entries.indices.dropFirst() {
                let e = entries[i]
                var j = i
                while j > 0 && precedes(e, entries[j - 1]) {
                    entries[j] = entries[j - 1]
                    j -= 1
                }
                entries[j] = e
            }
        } else {
            // Sorted out of place: the comparison reads keys through `self`.
            var list: [Entry] = []
            swap(&list, &entries)
            list.sort(by: precedes)
            swap(&list, &entries)
        }
        var kept = 0
        for i in entries.indices {
            let shadowed = i + 1 < entries.count && sameKey(entries[i], entries[i + 1])
            if !shadowed && !entries[i].dropped {
                entries[kept] = entries[i]
                kept += 1
            }
        }
        entries.removeLast(entries.count - kept)
    }

    /// By key in UTF-8 byte order, then in order of addition.
    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        if a.prefix != b.prefix { return a.prefix < b.prefix }
        // Equal first 16 bytes: a key that ends within them is a prefix of the other.
        if a.length <= 16 || b.length <= 16 {
            if a.length != b.length { return a.length < b.length }
        } else if !sameKey(a, b) {
            return key(a).utf8.lexicographicallyPrecedes(key(b).utf8)
        }
        return a.sequence < b.sequence
    }

    private func sameKey(_ a: Entry, _ b: Entry) -> Bool {
        a.prefix == b.prefix && a.length == b.length && (a.length <= 16 || key(a).utf8.elementsEqual(key(b).utf8))
    }

    func key(_ e: Entry) -> String {
        switch e.origin {
        case .scope: scope[Int(e.index)].key
        case .attribute: attributes[Int(e.index)].key
        case .made: made[Int(e.index)].key
        }
    }

    /// The value as tag text (``ZipkinOutgoingSpan/tagValue(_:)`` for attributes).
    func value(_ e: Entry) -> String {
        switch e.origin {
        case .scope: scope[Int(e.index)].value
        case .attribute: ZipkinOutgoingSpan.tagValue(attributes[Int(e.index)].value)
        case .made: made[Int(e.index)].value
        }
    }

    /// The value as a port number (what `UInt16(value(e))` gives, without the text for an integer).
    func port(_ e: Entry) -> UInt16? {
        if e.origin == .attribute, case .int(let n) = attributes[Int(e.index)].value { return UInt16(exactly: n) }
        return UInt16(value(e))
    }

    /// A key's role, byte length and sort prefix, from one look at its UTF-8.
    static func measure(_ key: String) -> (ZipkinTagRole?, Int32, (UInt64, UInt64)) {
        func measure(_ u: UnsafeBufferPointer<UInt8>) -> (ZipkinTagRole?, Int32, (UInt64, UInt64)) {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: u.prefix(16)))) }
            return (ZipkinTagRole.of(u), Int32(u.count), (UInt64(bigEndian: words.0), UInt64(bigEndian: words.1)))
        }
        return key.withUTF8Buffer(measure)
    }
}

extension ZipkinOutgoingSpan {
    /// Calls `body` with each span of `data` and its Zipkin form, in order or (for writers that
    /// prepend) in reverse. One ``ZipkinOutgoingSpan`` is reused, so its arrays are allocated once per call.
    static func forEach(in data: TracesData, reversed: Bool = false, _ body: (Span, ZipkinOutgoingSpan) -> Void) {
        var z = ZipkinOutgoingSpan()
        for ri in order(data.resourceSpans.count, reversed) {
            let rs = data.resourceSpans[ri]
            var resourceTags = rs.resource.attributes.map { (key: $0.key, value: tagValue($0.value)) }
            let serviceName = takeServiceName(&resourceTags)
            // Measured once for all the resource's scopes.
            let measured = resourceTags.map { ZipkinOutgoingTags.ScopeTag(key: $0.key, value: $0.value) }
            for si in order(rs.scopeSpans.count, reversed) {
                let ss = rs.scopeSpans[si]
                z.tags.scope = measured
                if !ss.scope.name.isEmpty { z.tags.scope.append(.init(key: ZipkinTagNames.scopeName, value: ss.scope.name)) }
                if !ss.scope.version.isEmpty {
                    z.tags.scope.append(.init(key: ZipkinTagNames.scopeVersion, value: ss.scope.version))
                }
                // Spans read in place: a copy would retain each of their fields.
                ss.spans.withUnsafeBufferPointer { spans in
                    for i in order(spans.count, reversed) {
                        z.fill(from: spans[i], serviceName: serviceName)
                        body(spans[i], z)
                    }
                }
            }
        }
    }

    private static func order(_ count: Int, _ reversed: Bool) -> StrideTo<Int> {
        reversed ? stride(from: count - 1, to: -1, by: -1) : stride(from: 0, to: count, by: 1)
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
                tags.append((key: ZipkinTagNames.serviceNameSource, value: key))
                return name
            }
        }
        return ""
    }

    /// Sets everything but the scope's tags from `span`.
    private mutating func fill(from span: Span, serviceName: String) {
        tags.start(span.attributes)
        if !span.traceState.isEmpty { tags.set(.traceState, ZipkinTagNames.traceState, span.traceState) }

        switch span.kind {
        case .client: kind = .client
        case .server: kind = .server
        case .producer: kind = .producer
        case .consumer: kind = .consumer
        case .internal:
            kind = .unspecified
            tags.set(.spanKind, ZipkinTagNames.spanKind, "internal")
        default: kind = .unspecified
        }

        // Times: µs rounded to nearest, as the OpenTelemetry SDK exporters do; a non-zero
        // duration never rounds to 0 (Zipkin reads 0 as "unknown").
        tags.remove(.startTimeAbsent)
        timestamp = span.startTimeUnixNano == 0 ? 0 : Self.micros(span.startTimeUnixNano)
        let durationNanos = span.durationNanos
        duration = durationNanos == 0 ? 0 : max(1, Self.micros(durationNanos))

        localEndpoint = endpoint(serviceName: serviceName, ip: .hostIP, port: .hostPort)
        let peer = tags.entry(.peerService).map(tags.value) ?? ""
        tags.remove(.peerService)
        remoteEndpoint = endpoint(serviceName: peer, ip: .peerIP, port: .peerPort)

        // exporter-zipkin.md "Status": the code unless UNSET, and for ERROR an `error` tag with
        // the description; an `error` tag must not be sent otherwise.
        tags.remove(.error)
        switch span.status.code {
        case .ok:
            tags.set(.statusCode, ZipkinTagNames.statusCode, "OK")
        case .error:
            tags.set(.statusCode, ZipkinTagNames.statusCode, "ERROR")
            tags.set(.error, ZipkinTagNames.error, span.status.message)
        default: break
        }

        if span.droppedAttributesCount > 0 {
            tags.set(.droppedAttributesCount, ZipkinTagNames.droppedAttributesCount, String(span.droppedAttributesCount))
        }
        if span.droppedEventsCount > 0 {
            tags.set(.droppedEventsCount, ZipkinTagNames.droppedEventsCount, String(span.droppedEventsCount))
        }
        if span.droppedLinksCount > 0 {
            tags.set(.droppedLinksCount, ZipkinTagNames.droppedLinksCount, String(span.droppedLinksCount))
        }

        for (i, link) in span.links.enumerated() {
            let value = link.traceID.hex + "|" + link.spanID.hex + "|" + link.traceState + "|"
                + AttributeJSON.objectText(link.attributes) + "|" + String(link.droppedAttributesCount)
            tags.merge(ZipkinTagNames.linkPrefix + String(i), value)
        }
        tags.finish()
    }

    private static func micros(_ nanos: UInt64) -> UInt64 { nanos / 1000 + (nanos % 1000 >= 500 ? 1 : 0) }

    /// An endpoint from a service name and the IP/port attributes; `nil` when all are empty.
    /// Attributes that are not a valid address or port stay tags.
    private mutating func endpoint(serviceName: String, ip: ZipkinTagRole, port: ZipkinTagRole) -> ZipkinEndpoint? {
        var e = ZipkinEndpoint(serviceName: serviceName)
        if let entry = tags.entry(ip) {
            let text = tags.value(entry)
            if IPAddress.parseIPv4Value(text) != nil {
                e.ipv4 = text
                tags.remove(ip)
            } else if let v6 = IPAddress.parseIPv6(text) {
                e.ipv6 = IPAddress.formatIPv6(v6)
                tags.remove(ip)
            }
        }
        if let entry = tags.entry(port), let number = tags.port(entry) {
            e.port = number
            tags.remove(port)
        }
        return e.isEmpty ? nil : e
    }

    /// An event as an annotation: its time in µs, and its name, with its attributes and dropped
    /// count appended in the collector's `name|{attributes}|dropped` form when it has any.
    static func annotation(_ event: SpanEvent) -> (timestamp: UInt64, value: String) {
        var value = event.name
        if !event.attributes.isEmpty || event.droppedAttributesCount > 0 {
            value += "|" + AttributeJSON.objectText(event.attributes) + "|" + String(event.droppedAttributesCount)
        }
        return (micros(event.timeUnixNano), value)
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
