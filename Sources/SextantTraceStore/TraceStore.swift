// SextantTraceStore: the bounded in-memory trace store behind the `jaeger_query` exporter, and
// jaeger-query's HTTP JSON API over it, which the Jaeger UI and Grafana's Jaeger data source read
// (jaegertracing/jaeger `cmd/query/app/http_handler.go` and `query_parser.go`; the UI model in
// `model/json/model.go`). Pure: no I/O, no Foundation; the exporter owns the HTTP server.
//
// Where things are: `StoredSpan+OTLP.swift` (OTLP → Jaeger), `TraceStore.swift` (bounds, eviction,
// indexes), `TraceQuery.swift` (search semantics), `JaegerQueryAPI*.swift` (routes, parameters, JSON).

import SextantModel
import Synchronization

/// A bounded in-memory store of recent traces: the store behind the `jaeger_query` exporter.
///
/// Spans are translated to Jaeger's model on insert (`StoredSpan`), grouped by trace, and indexed by
/// service and operation. The store never holds more than `maxSpans` spans nor more than about
/// `maxBytes` bytes (`StoredSpan`'s estimate: strings and values plus a fixed overhead per span, tag
/// and log, each distinct process charged once per trace); past either bound it evicts whole traces,
/// oldest first by when their first span arrived, as Jaeger's memory store does
/// (`internal/storage/v2/memory/tenant.go`). Spans of a stored trace are appended to it. Spans with
/// the invalid all-zero trace ID cannot be looked up and are not stored.
///
/// Thread-safe; every method takes one lock and returns.
public final class TraceStore: Sendable {
    public let maxSpans: Int
    public let maxBytes: Int
    private let state: Mutex<State>

    public init(maxSpans: Int, maxBytes: Int) {
        precondition(maxSpans > 0 && maxBytes > 0, "a trace store needs positive bounds")
        self.maxSpans = maxSpans
        self.maxBytes = maxBytes
        self.state = Mutex(State())
    }

    /// Adds the spans of `traces`, then evicts the oldest traces while over a bound.
    public func insert(_ traces: TracesData) {
        // Translate outside the lock: it is the expensive part and touches no shared state.
        var spans: [StoredSpan] = []
        spans.reserveCapacity(traces.spanCount)
        for resourceSpans in traces.resourceSpans {
            let process = StoredSpan.process(from: resourceSpans.resource)
            for scopeSpans in resourceSpans.scopeSpans {
                let scopeTags = StoredSpan.scopeTags(scopeSpans.scope)
                for span in scopeSpans.spans where span.traceID.isValid {
                    spans.append(StoredSpan(span, process: process, scopeTags: scopeTags))
                }
            }
        }
        guard !spans.isEmpty else { return }
        let sizes = spans.map(\.approximateSize)
        state.withLock { state in
            for (span, size) in zip(spans, sizes) { state.add(span, size: size) }
            state.evict(maxSpans: maxSpans, maxBytes: maxBytes)
        }
    }

    /// Spans and bytes held, traces held, and what eviction has dropped so far.
    public var stats: (spans: Int, bytes: Int, traces: Int, evictedSpans: Int, evictedTraces: Int) {
        state.withLock { ($0.spanCount, $0.byteCount, $0.traces.count, $0.evictedSpans, $0.evictedTraces) }
    }

    /// The services of the stored spans, sorted.
    public func services() -> [String] {
        state.withLock { Array($0.services.keys) }.sorted()
    }

    /// The operations of `service`'s stored spans, sorted by name then kind; all kinds when
    /// `spanKind` is `nil` or empty (as jaeger-query), otherwise those of that `span.kind` value.
    public func operations(service: String, spanKind: String? = nil) -> [(name: String, spanKind: String)] {
        let keys = state.withLock { state -> [OperationKey] in
            guard let index = state.services[service] else { return [] }
            guard let spanKind, !spanKind.isEmpty else { return Array(index.operations.keys) }
            return index.operations.keys.filter { $0.spanKind == spanKind }
        }
        return keys.sorted().map { ($0.name, $0.spanKind) }
    }

    /// The spans of one trace, sorted by start time; `nil` when it is not stored.
    public func trace(_ id: TraceID) -> [StoredSpan]? {
        state.withLock { $0.traces[id]?.spans }.map(Self.sortedByStart)
    }

    /// The traces with a span matching `query`, newest first (by their earliest span's start, then
    /// by arrival), at most `query.limit` of them; each trace's spans sorted by start time.
    public func findTraces(_ query: TraceQuery) -> [[StoredSpan]] {
        let found = state.withLock { state -> [[StoredSpan]] in
            guard let index = state.services[query.service] else { return [] }
            var matches: [(start: UInt64, seq: UInt64, id: TraceID)] = []
            func consider(_ id: TraceID) {
                guard let entry = state.traces[id], entry.spans.contains(where: query.matches) else { return }
                matches.append((entry.startTime, entry.seq, id))
            }
            if let operation = query.operation {
                for id in index.operationTraces[operation] ?? [] { consider(id) }
            } else {
                for id in index.traces { consider(id) }
            }
            matches.sort { ($0.start, $0.seq) > ($1.start, $1.seq) }
            if query.limit > 0 && matches.count > query.limit { matches.removeLast(matches.count - query.limit) }
            return matches.map { state.traces[$0.id]!.spans }
        }
        return found.map(Self.sortedByStart)
    }

    /// Sorted by start time; spans that start together keep their arrival order.
    static func sortedByStart(_ spans: [StoredSpan]) -> [StoredSpan] {
        spans.enumerated().sorted { ($0.element.startTime, $0.offset) < ($1.element.startTime, $1.offset) }.map(\.element)
    }
}

/// An operation of a service: its name and `span.kind`.
struct OperationKey: Hashable, Comparable {
    var name: String
    var spanKind: String

    static func < (a: OperationKey, b: OperationKey) -> Bool { (a.name, a.spanKind) < (b.name, b.spanKind) }
}

extension TraceStore {
    struct Entry {
        /// Arrival order of the trace's first span.
        var seq: UInt64
        var spans: [StoredSpan] = []
        /// The distinct processes of `spans`; their spans share these instances.
        var processes: [StoredSpan.Process] = []
        var bytes = 0
        var startTime = UInt64.max

        /// Appends a span, sharing an equal process already held; returns the bytes charged.
        mutating func append(_ span: StoredSpan, size: Int) -> Int {
            var span = span
            var charged = size
            if let shared = processes.first(where: { $0 == span.process }) {
                span.process = shared
            } else {
                processes.append(span.process)
                charged += span.process.approximateSize
            }
            spans.append(span)
            bytes += charged
            startTime = min(startTime, span.startTime)
            return charged
        }
    }

    /// What the store knows of one service.
    struct ServiceIndex {
        var spans = 0
        var traces: Set<TraceID> = []
        /// Span counts per operation, so an operation disappears with its last span.
        var operations: [OperationKey: Int] = [:]
        var operationTraces: [String: Set<TraceID>] = [:]
    }

    struct State {
        var traces: [TraceID: Entry] = [:]
        /// Trace IDs by arrival; `order[head...]` are the stored ones, oldest first. Traces leave only
        /// by eviction, which takes the oldest, so this stays exactly the stored set.
        var order: [TraceID] = []
        var head = 0
        var services: [String: ServiceIndex] = [:]
        var nextSeq: UInt64 = 0
        var spanCount = 0
        var byteCount = 0
        var evictedSpans = 0
        var evictedTraces = 0

        mutating func add(_ span: StoredSpan, size: Int) {
            let id = span.traceID
            if traces[id] == nil {
                order.append(id)
                nextSeq += 1
                traces[id] = Entry(seq: nextSeq)
            }
            byteCount += traces[id]!.append(span, size: size)
            spanCount += 1
            let key = OperationKey(name: span.operationName, spanKind: span.spanKind)
            services[span.process.serviceName, default: ServiceIndex()].add(key, trace: id)
        }

        mutating func evict(maxSpans: Int, maxBytes: Int) {
            while (spanCount > maxSpans || byteCount > maxBytes) && head < order.count {
                let id = order[head]
                head += 1
                guard let entry = traces.removeValue(forKey: id) else { continue }
                for span in entry.spans {
                    let service = span.process.serviceName
                    let key = OperationKey(name: span.operationName, spanKind: span.spanKind)
                    if services[service]?.remove(key, trace: id) == true { services[service] = nil }
                }
                spanCount -= entry.spans.count
                byteCount -= entry.bytes
                evictedSpans += entry.spans.count
                evictedTraces += 1
            }
            // Drop the evicted prefix once it is the larger part, keeping eviction amortized O(1).
            if head > 1024 && head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}

extension TraceStore.ServiceIndex {
    mutating func add(_ key: OperationKey, trace: TraceID) {
        spans += 1
        traces.insert(trace)
        operations[key, default: 0] += 1
        operationTraces[key.name, default: []].insert(trace)
    }

    /// Removes one span of an evicted trace; true when the service has no spans left.
    mutating func remove(_ key: OperationKey, trace: TraceID) -> Bool {
        spans -= 1
        traces.remove(trace)
        if let n = operations[key] { operations[key] = n > 1 ? n - 1 : nil }
        if operationTraces[key.name]?.remove(trace) != nil, operationTraces[key.name]!.isEmpty {
            operationTraces[key.name] = nil
        }
        return spans == 0
    }
}
