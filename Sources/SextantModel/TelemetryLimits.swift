/// Bounds on what one item may carry, as the OTel SDKs' span and log record limits define them
/// (specification "Attribute Limits" and "Span Limits"), enforced by the collector on input it
/// cannot trust.
///
/// Excess attributes, events and links are dropped, keeping the first ones (the SDKs keep the
/// first ones too), and the item's `dropped_*_count` is raised by the number dropped. String and
/// bytes values longer than `maxAttributeValueLength` bytes are cut at a UTF-8 boundary, inside
/// arrays and key-value lists too. Log bodies are not attributes and are not cut (the request
/// size limit bounds them). A limit of 0 means unlimited.
public struct TelemetryLimits: Sendable, Equatable {
    /// Attributes per span, event, link, log record, data point, resource and scope.
    public var maxAttributes: Int
    /// The longest string or bytes attribute value, in bytes.
    public var maxAttributeValueLength: Int
    /// Events per span.
    public var maxEvents: Int
    /// Links per span.
    public var maxLinks: Int

    public init(maxAttributes: Int = 128, maxAttributeValueLength: Int = 65536, maxEvents: Int = 128, maxLinks: Int = 128) {
        self.maxAttributes = maxAttributes
        self.maxAttributeValueLength = maxAttributeValueLength
        self.maxEvents = maxEvents
        self.maxLinks = maxLinks
    }

    /// No limit at all: `apply` does nothing.
    public static let unlimited = TelemetryLimits(maxAttributes: 0, maxAttributeValueLength: 0, maxEvents: 0, maxLinks: 0)

    public var isUnlimited: Bool { self == .unlimited }

    /// What `apply` removed or cut from one batch.
    public struct Counts: Sendable, Equatable {
        public var droppedAttributes = 0
        public var truncatedAttributes = 0
        public var droppedEvents = 0
        public var droppedLinks = 0

        public init(droppedAttributes: Int = 0, truncatedAttributes: Int = 0, droppedEvents: Int = 0, droppedLinks: Int = 0) {
            self.droppedAttributes = droppedAttributes
            self.truncatedAttributes = truncatedAttributes
            self.droppedEvents = droppedEvents
            self.droppedLinks = droppedLinks
        }

        public var isZero: Bool { self == Counts() }
    }

    /// Enforces the limits on `telemetry` in place and reports what it changed.
    ///
    /// One pass that only reads while everything is within bounds: a batch under the limits is never
    /// written to, so its copy-on-write storage is not copied. Only the path down to an offending
    /// list is made unique and rewritten.
    @discardableResult
    public func apply(to telemetry: inout Telemetry) -> Counts {
        guard !isUnlimited else { return Counts() }
        var counts = Counts()
        switch telemetry {
        case .traces(let data):
            if let fixed = enforced(data, &counts) { telemetry = .traces(fixed) }
        case .metrics(let data):
            if let fixed = enforced(data, &counts) { telemetry = .metrics(fixed) }
        case .logs(let data):
            if let fixed = enforced(data, &counts) { telemetry = .logs(fixed) }
        }
        return counts
    }

    // MARK: Signals

    /// The batch with the limits enforced, or `nil` when it is within them.
    func enforced(_ data: TracesData, _ c: inout Counts) -> TracesData? {
        // An encoded batch within the limits stays encoded; otherwise the model is checked as usual.
        if let e = data.encoded, admits(e.extent) { return nil }
        var out: TracesData?
        for i in data.resourceSpans.indices {
            let rs = data.resourceSpans[i]
            if exceeds(rs.resource.attributes) {
                if out == nil { out = data }
                enforce(&out!.resourceSpans[i].resource, &c)
            }
            for j in rs.scopeSpans.indices {
                let ss = rs.scopeSpans[j]
                if exceeds(ss.scope.attributes) {
                    if out == nil { out = data }
                    enforce(&out!.resourceSpans[i].scopeSpans[j].scope, &c)
                }
                // Checked field by field in the array's buffer: handing a whole `Span` to a function
                // copied it (a retain and release of each of its fields, for every span of every batch).
                var spans: [Int] = []
                ss.spans.withUnsafeBufferPointer { b in
                    for k in b.indices where exceeds(attributes: b[k].attributes, events: b[k].events, links: b[k].links) {
                        spans.append(k)
                    }
                }
                for k in spans {
                    if out == nil { out = data }
                    enforceSpan(&out!.resourceSpans[i].scopeSpans[j].spans[k], &c)
                }
            }
        }
        return out
    }

    func enforced(_ data: MetricsData, _ c: inout Counts) -> MetricsData? {
        var out: MetricsData?
        for i in data.resourceMetrics.indices {
            let rm = data.resourceMetrics[i]
            if exceeds(rm.resource.attributes) {
                if out == nil { out = data }
                enforce(&out!.resourceMetrics[i].resource, &c)
            }
            for j in rm.scopeMetrics.indices {
                let sm = rm.scopeMetrics[j]
                if exceeds(sm.scope.attributes) {
                    if out == nil { out = data }
                    enforce(&out!.resourceMetrics[i].scopeMetrics[j].scope, &c)
                }
                for k in offending(sm.metrics, { exceeds($0.data) }) {
                    if out == nil { out = data }
                    enforce(&out!.resourceMetrics[i].scopeMetrics[j].metrics[k].data, &c)
                }
            }
        }
        return out
    }

    func enforced(_ data: LogsData, _ c: inout Counts) -> LogsData? {
        var out: LogsData?
        for i in data.resourceLogs.indices {
            let rl = data.resourceLogs[i]
            if exceeds(rl.resource.attributes) {
                if out == nil { out = data }
                enforce(&out!.resourceLogs[i].resource, &c)
            }
            for j in rl.scopeLogs.indices {
                let sl = rl.scopeLogs[j]
                if exceeds(sl.scope.attributes) {
                    if out == nil { out = data }
                    enforce(&out!.resourceLogs[i].scopeLogs[j].scope, &c)
                }
                for k in offending(sl.logRecords, { exceeds($0.attributes) }) {
                    if out == nil { out = data }
                    enforce(&out!.resourceLogs[i].scopeLogs[j].logRecords[k], &c)
                }
            }
        }
        return out
    }

    /// Whether a batch of this extent is within every limit.
    public func admits(_ e: AttributeExtent) -> Bool {
        (maxAttributes == 0 || e.attributes <= maxAttributes) && (maxAttributeValueLength == 0 || e.valueLength <= maxAttributeValueLength)
            && (maxEvents == 0 || e.events <= maxEvents) && (maxLinks == 0 || e.links <= maxLinks)
    }

    // MARK: Items

    /// Inlined into the batch check, which then reads the span's arrays in place (a call would retain
    /// and release each of them).
    @inline(__always)
    func exceeds(attributes: [KeyValue], events: [SpanEvent], links: [SpanLink]) -> Bool {
        if maxEvents > 0 && events.count > maxEvents { return true }
        if maxLinks > 0 && links.count > maxLinks { return true }
        if exceeds(attributes) { return true }
        return !offending(events, { exceeds($0.attributes) }).isEmpty || !offending(links, { exceeds($0.attributes) }).isEmpty
    }

    func enforceSpan(_ span: inout Span, _ c: inout Counts) {
        if maxEvents > 0 && span.events.count > maxEvents {
            let n = span.events.count - maxEvents
            span.events.removeLast(n)
            span.droppedEventsCount = span.droppedEventsCount.saturatingAdd(n)
            c.droppedEvents += n
        }
        if maxLinks > 0 && span.links.count > maxLinks {
            let n = span.links.count - maxLinks
            span.links.removeLast(n)
            span.droppedLinksCount = span.droppedLinksCount.saturatingAdd(n)
            c.droppedLinks += n
        }
        if exceeds(span.attributes) { enforce(&span, &c) }
        for i in span.events.indices where exceeds(span.events[i].attributes) {
            enforce(&span.events[i], &c)
        }
        for i in span.links.indices where exceeds(span.links[i].attributes) {
            enforce(&span.links[i], &c)
        }
    }

    func exceeds(_ data: MetricData) -> Bool {
        switch data {
        case .gauge(let p), .sum(let p, _, _): return !offending(p, { exceeds($0.attributes) }).isEmpty
        case .histogram(let p, _): return !offending(p, { exceeds($0.attributes) }).isEmpty
        case .exponentialHistogram(let p, _): return !offending(p, { exceeds($0.attributes) }).isEmpty
        case .summary(let p): return !offending(p, { exceeds($0.attributes) }).isEmpty
        case .empty: return false
        }
    }

    /// Data points have no dropped-attributes count in OTLP: what is dropped is only counted here.
    func enforce(_ data: inout MetricData, _ c: inout Counts) {
        switch data {
        case .gauge(var p):
            for i in p.indices where exceeds(p[i].attributes) { _ = enforce(&p[i].attributes, &c) }
            data = .gauge(p)
        case .sum(var p, let temporality, let monotonic):
            for i in p.indices where exceeds(p[i].attributes) { _ = enforce(&p[i].attributes, &c) }
            data = .sum(p, temporality: temporality, isMonotonic: monotonic)
        case .histogram(var p, let temporality):
            for i in p.indices where exceeds(p[i].attributes) { _ = enforce(&p[i].attributes, &c) }
            data = .histogram(p, temporality: temporality)
        case .exponentialHistogram(var p, let temporality):
            for i in p.indices where exceeds(p[i].attributes) { _ = enforce(&p[i].attributes, &c) }
            data = .exponentialHistogram(p, temporality: temporality)
        case .summary(var p):
            for i in p.indices where exceeds(p[i].attributes) { _ = enforce(&p[i].attributes, &c) }
            data = .summary(p)
        case .empty:
            break
        }
    }

    // MARK: Attributes

    /// Whether a list has too many attributes or a value that is too long. Reads only.
    @inline(__always)
    func exceeds(_ attributes: [KeyValue]) -> Bool {
        if maxAttributes > 0 && attributes.count > maxAttributes { return true }
        guard maxAttributeValueLength > 0 else { return false }
        return attributes.withUnsafeBufferPointer { buffer in
            for i in buffer.indices where isTooLong(buffer[i].value) { return true }
            return false
        }
    }

    /// The indices of the items that `test` picks. Each item is lent from the array's buffer rather
    /// than copied out of it, so checking a batch within the limits costs no retain or release.
    func offending<T>(_ items: [T], _ test: (T) -> Bool) -> [Int] {
        items.withUnsafeBufferPointer { buffer in
            var out: [Int] = []
            for i in buffer.indices where test(buffer[i]) { out.append(i) }
            return out
        }
    }

    /// Drops the attributes past `maxAttributes` and cuts long values; returns how many were dropped.
    func enforce(_ attributes: inout [KeyValue], _ c: inout Counts) -> Int {
        var dropped = 0
        if maxAttributes > 0 && attributes.count > maxAttributes {
            dropped = attributes.count - maxAttributes
            attributes.removeLast(dropped)
            c.droppedAttributes += dropped
        }
        guard maxAttributeValueLength > 0 else { return dropped }
        for i in attributes.indices where isTooLong(attributes[i].value) {
            attributes[i].value = truncated(attributes[i].value)
            c.truncatedAttributes += 1
        }
        return dropped
    }

    /// The same for an item with a dropped-attributes count, which grows by the number dropped.
    func enforce(_ item: inout some DroppableAttributes, _ c: inout Counts) {
        let dropped = enforce(&item.attributes, &c)
        item.droppedAttributesCount = item.droppedAttributesCount.saturatingAdd(dropped)
    }

    private func isTooLong(_ value: AnyValue) -> Bool {
        switch value {
        case .string(let s): return s.utf8.count > maxAttributeValueLength
        case .bytes(let b): return b.count > maxAttributeValueLength
        case .array(let a): return a.contains { isTooLong($0) }
        case .kvlist(let kv): return kv.contains { isTooLong($0.value) }
        case .bool, .int, .double, .empty: return false
        }
    }

    private func truncated(_ value: AnyValue) -> AnyValue {
        switch value {
        case .string(let s): return .string(Self.truncate(s, toUTF8Length: maxAttributeValueLength))
        case .bytes(let b): return b.count > maxAttributeValueLength ? .bytes(Array(b.prefix(maxAttributeValueLength))) : value
        case .array(let a): return .array(a.map { isTooLong($0) ? truncated($0) : $0 })
        case .kvlist(let kv): return .kvlist(kv.map { isTooLong($0.value) ? KeyValue($0.key, truncated($0.value)) : $0 })
        case .bool, .int, .double, .empty: return value
        }
    }

    /// The longest prefix of `s` of at most `n` UTF-8 bytes that ends on a scalar boundary.
    public static func truncate(_ s: String, toUTF8Length n: Int) -> String {
        let utf8 = s.utf8
        guard utf8.count > n else { return s }
        var end = utf8.index(utf8.startIndex, offsetBy: n)
        // A continuation byte (10xxxxxx) at the cut means a scalar straddles it: back off to its start.
        while end > utf8.startIndex && utf8[end] & 0xC0 == 0x80 { end = utf8.index(before: end) }
        return String(decoding: utf8[utf8.startIndex..<end], as: UTF8.self)
    }
}

/// The OTLP messages with attributes and a `dropped_attributes_count`.
protocol DroppableAttributes {
    var attributes: [KeyValue] { get set }
    var droppedAttributesCount: UInt32 { get set }
}

extension Resource: DroppableAttributes {}
extension InstrumentationScope: DroppableAttributes {}
extension Span: DroppableAttributes {}
extension SpanEvent: DroppableAttributes {}
extension SpanLink: DroppableAttributes {}
extension LogRecord: DroppableAttributes {}

extension UInt32 {
    fileprivate func saturatingAdd(_ n: Int) -> UInt32 {
        let (sum, overflow) = addingReportingOverflow(UInt32(clamping: n))
        return overflow ? .max : sum
    }
}
