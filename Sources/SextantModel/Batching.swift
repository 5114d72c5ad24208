extension Telemetry {
    /// Appends `other` (same signal) to this batch. Resource and scope groups are kept as they are:
    /// merging identical resources is an exporter concern, and this keeps appends O(groups).
    public mutating func append(_ other: Telemetry) {
        switch (self, other) {
        case (.traces(let a), .traces(let b)) where a.encoded != nil && b.encoded != nil:
            self = .traces(TracesData(encoded: a.encoded!.appending(b.encoded!)))
        case (.traces(var a), .traces(let b)):
            self = .metrics(MetricsData())  // drop our reference so `a` is uniquely owned
            a.resourceSpans.append(contentsOf: b.resourceSpans)
            self = .traces(a)
        case (.metrics(var a), .metrics(let b)):
            self = .logs(LogsData())
            a.resourceMetrics.append(contentsOf: b.resourceMetrics)
            self = .metrics(a)
        case (.logs(var a), .logs(let b)):
            self = .traces(TracesData())
            a.resourceLogs.append(contentsOf: b.resourceLogs)
            self = .logs(a)
        default:
            preconditionFailure("cannot append \(other.signal) to a \(signal) batch")
        }
    }

    /// Splits into batches of at most `maxItems` items each (spans, data points or log records),
    /// repeating resource and scope in each piece. A metric's points may be split across pieces.
    public func split(maxItems: Int) -> [Telemetry] {
        precondition(maxItems > 0)
        guard itemCount > maxItems else { return [self] }
        switch self {
        case .traces(let t):
            if let e = t.encoded { return e.split(maxItems: maxItems).map(Telemetry.traces) }
            return Splitter.split(t.resourceSpans, maxItems: maxItems, scopes: \.scopeSpans, items: \.spans).map {
                .traces(TracesData(resourceSpans: $0))
            }
        case .logs(let l):
            return Splitter.split(l.resourceLogs, maxItems: maxItems, scopes: \.scopeLogs, items: \.logRecords).map {
                .logs(LogsData(resourceLogs: $0))
            }
        case .metrics(let m):
            return Splitter.splitMetrics(m.resourceMetrics, maxItems: maxItems).map { .metrics(MetricsData(resourceMetrics: $0)) }
        }
    }
}

enum Splitter {
    /// Splits resource groups into pieces of at most `maxItems` items; empty scopes are dropped.
    static func split<R, S, I>(
        _ resources: [R], maxItems: Int, scopes: WritableKeyPath<R, [S]>, items: WritableKeyPath<S, [I]>
    ) -> [[R]] {
        var out: [[R]] = []
        var current: [R] = []
        var count = 0
        for r in resources {
            var emptyResource = r
            emptyResource[keyPath: scopes] = []
            var resourceStarted = false
            for s in r[keyPath: scopes] {
                var emptyScope = s
                emptyScope[keyPath: items] = []
                var scopeStarted = false
                var remaining = s[keyPath: items][...]
                while !remaining.isEmpty {
                    let take = min(maxItems - count, remaining.count)
                    if !resourceStarted {
                        current.append(emptyResource)
                        resourceStarted = true
                        scopeStarted = false
                    }
                    let ri = current.count - 1
                    if !scopeStarted {
                        current[ri][keyPath: scopes].append(emptyScope)
                        scopeStarted = true
                    }
                    let si = current[ri][keyPath: scopes].count - 1
                    current[ri][keyPath: scopes][si][keyPath: items].append(contentsOf: remaining.prefix(take))
                    remaining = remaining.dropFirst(take)
                    count += take
                    if count == maxItems {
                        out.append(current)
                        current = []
                        count = 0
                        resourceStarted = false
                    }
                }
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static func splitMetrics(_ resources: [ResourceMetrics], maxItems: Int) -> [[ResourceMetrics]] {
        // Flatten to (resource index, scope index, metric with a slice of points), then regroup.
        var pieces: [[ResourceMetrics]] = []
        var current: [ResourceMetrics] = []
        var count = 0
        func flush() {
            if !current.isEmpty { pieces.append(current) }
            current = []
            count = 0
        }
        for rm in resources {
            var rStarted = false
            for sm in rm.scopeMetrics {
                var sStarted = false
                for metric in sm.metrics {
                    var offset = 0
                    let total = metric.data.pointCount
                    repeat {
                        let take = total == 0 ? 0 : min(maxItems - count, total - offset)
                        var m = metric
                        m.data = metric.data.slice(offset..<(offset + take))
                        if !rStarted {
                            current.append(ResourceMetrics(resource: rm.resource, scopeMetrics: [], schemaURL: rm.schemaURL))
                            rStarted = true
                            sStarted = false
                        }
                        if !sStarted {
                            current[current.count - 1].scopeMetrics.append(ScopeMetrics(scope: sm.scope, metrics: [], schemaURL: sm.schemaURL))
                            sStarted = true
                        }
                        let last = current.count - 1
                        current[last].scopeMetrics[current[last].scopeMetrics.count - 1].metrics.append(m)
                        offset += take
                        count += take
                        if count >= maxItems {
                            flush()
                            rStarted = false
                            sStarted = false
                        }
                    } while offset < total
                }
            }
        }
        flush()
        return pieces
    }
}

extension MetricData {
    /// The same metric data restricted to the points in `range`.
    public func slice(_ range: Range<Int>) -> MetricData {
        switch self {
        case .gauge(let p): return .gauge(Array(p[range]))
        case .sum(let p, let t, let m): return .sum(Array(p[range]), temporality: t, isMonotonic: m)
        case .histogram(let p, let t): return .histogram(Array(p[range]), temporality: t)
        case .exponentialHistogram(let p, let t): return .exponentialHistogram(Array(p[range]), temporality: t)
        case .summary(let p): return .summary(Array(p[range]))
        case .empty: return .empty
        }
    }
}
