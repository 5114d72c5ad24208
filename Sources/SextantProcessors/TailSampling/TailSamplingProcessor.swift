import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// `tail_sampling` processor config (OTel Collector names and defaults).
public struct TailSamplingConfig: ComponentConfig {
    public var decisionWait: Duration = .seconds(30)
    public var numTraces = 50_000
    var policies: [(name: String, policy: TailSamplingPolicy)] = []
    /// How many decided trace IDs are remembered so late spans follow their trace's decision.
    public var decisionCacheSize = 50_000
}

public struct TailSamplingProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "tail_sampling"
    public let signals: Set<Signal> = [.traces]
    public let summary = "samples whole traces after decision_wait by latency, status, attributes, probability"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = TailSamplingConfig()
        c.decisionWait = r.duration("decision_wait", default: c.decisionWait, allowZero: false)
        c.numTraces = r.int("num_traces", default: c.numTraces, min: 1)
        _ = r.int("expected_new_traces_per_sec", default: 0, min: 0)
        var cache = r.section("decision_cache")
        c.decisionCacheSize = cache.int("sampled_cache_size", default: c.decisionCacheSize, min: 0)
        cache.finish()
        c.policies = TailSamplingPolicy.parseList(&r, key: "policies")
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        TailSamplingProcessor(config as! TailSamplingConfig, settings: settings, next: next, clock: ContinuousClock())
    }
}

/// Holds each trace's spans for `decision_wait` after its first span, then keeps or drops the whole
/// trace by policy. Memory is bounded by `num_traces`: past it the oldest pending trace is evicted
/// (its spans dropped, counted). Spans arriving after their trace was decided follow the decision.
public final class TailSamplingProcessor<C: Clock>: ConsumingComponent where C.Duration == Duration {
    private struct State {
        var pending: [TraceID: CollectedTrace] = [:]
        /// Pending traces in arrival order with their decision deadline.
        var order: [(TraceID, C.Instant)] = []
        var head = 0
        var decided: [TraceID: Bool] = [:]
        var decidedOrder: [TraceID] = []
        var decidedHead = 0
    }

    private let config: TailSamplingConfig
    private let next: any Consumer
    private let clock: C
    private let logger: Logger
    private let state = Mutex(State())
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    private let sampled: SelfTelemetry.Counter
    private let notSampled: SelfTelemetry.Counter
    private let evicted: SelfTelemetry.Counter
    private let lateSpans: SelfTelemetry.Counter
    private let pendingGauge: SelfTelemetry.Gauge

    public init(_ config: TailSamplingConfig, settings: ComponentSettings, next: any Consumer, clock: C) {
        self.config = config
        self.next = next
        self.clock = clock
        self.logger = settings.logger
        let t = settings.telemetry
        let l = [("processor", settings.id.description)]
        sampled = t.counter("sextant_processor_tail_sampling_traces_total", help: "Traces decided by tail sampling.", labels: l + [("decision", "sampled")])
        notSampled = t.counter("sextant_processor_tail_sampling_traces_total", help: "Traces decided by tail sampling.", labels: l + [("decision", "not_sampled")])
        evicted = t.counter("sextant_processor_tail_sampling_traces_total", help: "Traces decided by tail sampling.", labels: l + [("decision", "evicted")])
        lateSpans = t.counter("sextant_processor_tail_sampling_late_spans_total", help: "Spans that arrived after their trace was decided.", labels: l)
        pendingGauge = t.gauge("sextant_processor_tail_sampling_pending_traces", help: "Traces waiting for a decision.", labels: l)
    }

    public func start() async throws {
        // Check for due traces at a tenth of decision_wait (at most every second), as the OTel
        // processor's one-second tick does for its default 30 s wait.
        let tick = min(config.decisionWait / 10, .seconds(1))
        let task = Task { [self] in
            while !Task.isCancelled {
                do { try await clock.sleep(for: tick) } catch { return }
                await decideDue()
            }
        }
        ticker.withLock { $0 = task }
    }

    public func shutdown() async {
        ticker.withLock { $0 }?.cancel()
        await ticker.withLock { $0 }?.value
        await decideDue(all: true)
    }

    public func consume(_ telemetry: Telemetry) async throws {
        guard case .traces(let traces) = telemetry else { return }
        var forward: [CollectedTrace.Item] = []
        var droppedLate = 0
        var evictedSpans = 0
        let now = clock.now
        state.withLock { s in
            for rs in traces.resourceSpans {
                for ss in rs.scopeSpans {
                    for span in ss.spans {
                        let item = CollectedTrace.Item(resource: rs.resource, scope: ss.scope, span: span)
                        if let decision = s.decided[span.traceID] {
                            if decision { forward.append(item) } else { droppedLate += 1 }
                            continue
                        }
                        if s.pending[span.traceID] == nil {
                            s.pending[span.traceID] = CollectedTrace(id: span.traceID)
                            s.order.append((span.traceID, now.advanced(by: config.decisionWait)))
                            while s.pending.count > config.numTraces, s.head < s.order.count {
                                let (old, _) = s.order[s.head]
                                s.head += 1
                                if let gone = s.pending.removeValue(forKey: old) {
                                    evictedSpans += gone.spans.count
                                    evicted.increment()
                                }
                            }
                        }
                        s.pending[span.traceID]!.add(item)
                    }
                }
            }
            pendingGauge.set(s.pending.count)
        }
        if droppedLate > 0 || !forward.isEmpty { lateSpans.add(droppedLate + forward.count) }
        if evictedSpans > 0 { logger.warning("tail_sampling evicted pending traces over num_traces", metadata: ["spans": "\(evictedSpans)"]) }
        if !forward.isEmpty { try await next.consume(.traces(CollectedTrace.batch(forward))) }
    }

    /// Decides every trace whose wait is over (or all of them at shutdown) and forwards the kept ones.
    func decideDue(all: Bool = false) async {
        let now = clock.now
        let due: [CollectedTrace] = state.withLock { s in
            var out: [CollectedTrace] = []
            while s.head < s.order.count {
                let (id, deadline) = s.order[s.head]
                guard all || deadline <= now else { break }
                s.head += 1
                if let t = s.pending.removeValue(forKey: id) { out.append(t) }
            }
            if s.head > 4096 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
            pendingGauge.set(s.pending.count)
            return out
        }
        guard !due.isEmpty else { return }
        var keep: [CollectedTrace.Item] = []
        var decisions: [(TraceID, Bool)] = []
        for trace in due {
            let yes = config.policies.contains { $0.policy.samples(trace) }
            decisions.append((trace.id, yes))
            if yes {
                sampled.increment()
                keep += trace.spans
            } else {
                notSampled.increment()
            }
        }
        state.withLock { s in
            for (id, yes) in decisions where config.decisionCacheSize > 0 {
                s.decided[id] = yes
                s.decidedOrder.append(id)
            }
            while s.decidedOrder.count - s.decidedHead > config.decisionCacheSize {
                s.decided.removeValue(forKey: s.decidedOrder[s.decidedHead])
                s.decidedHead += 1
            }
            if s.decidedHead > 4096 && s.decidedHead * 2 > s.decidedOrder.count {
                s.decidedOrder.removeFirst(s.decidedHead)
                s.decidedHead = 0
            }
        }
        guard !keep.isEmpty else { return }
        do {
            try await next.consume(.traces(CollectedTrace.batch(keep)))
        } catch {
            logger.warning("sampled traces dropped: next consumer failed", metadata: ["spans": "\(keep.count)", "error": "\(error)"])
        }
    }
}
