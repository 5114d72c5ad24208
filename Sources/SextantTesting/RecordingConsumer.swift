import SextantModel
import SextantPipeline
import Synchronization

/// A consumer that keeps every batch it receives, and can be told to fail.
public final class RecordingConsumer: Consumer, Sendable {
    private let state = Mutex<(batches: [Telemetry], failures: [ConsumerError])>(([], []))

    public init() {}

    /// Makes the next `consume` calls throw these errors, in order.
    public func failNext(_ errors: [ConsumerError]) { state.withLock { $0.failures += errors } }

    public func consume(_ telemetry: Telemetry) async throws {
        let failure = state.withLock { s -> ConsumerError? in
            if !s.failures.isEmpty { return s.failures.removeFirst() }
            s.batches.append(telemetry)
            return nil
        }
        if let failure { throw failure }
    }

    public var batches: [Telemetry] { state.withLock { $0.batches } }
    public var itemCount: Int { batches.reduce(0) { $0 + $1.itemCount } }

    /// All spans received, flattened.
    public var spans: [Span] {
        batches.flatMap { b -> [Span] in
            guard case .traces(let t) = b else { return [] }
            return t.resourceSpans.flatMap { $0.scopeSpans.flatMap(\.spans) }
        }
    }
}

/// Builds simple telemetry for tests.
public enum TestData {
    /// `count` spans under one resource and scope, with sequential span IDs.
    public static func traces(_ count: Int, service: String = "svc", trace: UInt64 = 1, firstSpan: UInt64 = 1) -> Telemetry {
        let spans = (0..<count).map { i in
            Span(
                traceID: TraceID(high: 0, low: trace), spanID: SpanID(firstSpan + UInt64(i)), name: "span-\(i)",
                kind: .server, startTimeUnixNano: 1_000, endTimeUnixNano: 2_000, attributes: [KeyValue("i", .int(Int64(i)))])
        }
        return .traces(
            TracesData(resourceSpans: [
                ResourceSpans(
                    resource: Resource(attributes: [KeyValue("service.name", .string(service))]),
                    scopeSpans: [ScopeSpans(scope: InstrumentationScope(name: "test"), spans: spans)])
            ]))
    }

    public static func logs(_ count: Int) -> Telemetry {
        let records = (0..<count).map { i in LogRecord(timeUnixNano: UInt64(i), body: .string("line \(i)")) }
        return .logs(LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])]))
    }

    public static func gauges(_ count: Int) -> Telemetry {
        let points = (0..<count).map { i in NumberDataPoint(timeUnixNano: UInt64(i), value: .double(Double(i))) }
        return .metrics(
            MetricsData(resourceMetrics: [
                ResourceMetrics(scopeMetrics: [ScopeMetrics(metrics: [Metric(name: "g", data: .gauge(points))])])
            ]))
    }
}
