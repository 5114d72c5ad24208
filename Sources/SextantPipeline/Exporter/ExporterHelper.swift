import Logging
import SextantModel
import Synchronization

/// The machinery every exporter shares (OTel's `exporterhelper`): a bounded sending queue drained by
/// `num_consumers` workers, a per-attempt timeout, and retries with exponential backoff and jitter.
///
/// An exporter supplies only `send`, which throws `ConsumerError.permanent` for data that can never be
/// accepted (dropped at once) or any other error for a retryable failure. Every item is counted exactly
/// once as sent, failed (given up on) or refused at enqueue — except with a persistent queue
/// (`sending_queue::storage`), where what is still queued at shutdown or a crash stays on disk and is
/// sent after the restart (at-least-once: a batch in flight at a crash may be sent twice).
public final class ExporterHelper<C: Clock>: Sendable where C.Duration == Duration {
    public typealias Send = @Sendable (Telemetry) async throws -> Void

    private struct SignalCounters: Sendable {
        var sent: SelfTelemetry.Counter
        var failed: SelfTelemetry.Counter
        var enqueueFailed: SelfTelemetry.Counter
        var retries: SelfTelemetry.Counter
    }

    public let settings: ExporterHelperSettings
    private let logger: Logger
    private let clock: C
    private let send: Send
    private let queue: BoundedQueue<Telemetry>?
    private let durable: DurableQueue?
    /// Fired at shutdown: interrupts retry backoffs of a persistent queue's workers.
    private let stopping = StopSignal()
    private let workers = Mutex<[Task<Void, Never>]>([])
    private let counters: [Signal: SignalCounters]
    private let queueSize: SelfTelemetry.Gauge
    private let id: String
    private let countsSent: Bool

    /// `countsSent: false` for an exporter that counts `sextant_exporter_sent_items_total` itself, per
    /// item (the `elasticsearch` exporter, whose `send` settles every document).
    public init(
        _ settings: ExporterHelperSettings, component: ComponentSettings, clock: C, countsSent: Bool = true, send: @escaping Send
    ) {
        self.settings = settings
        self.countsSent = countsSent
        self.logger = component.logger
        self.clock = clock
        self.send = send
        self.id = component.id.description
        let t = component.telemetry
        var c: [Signal: SignalCounters] = [:]
        for s in Signal.allCases {
            let labels = [("exporter", id), ("signal", s.rawValue)]
            c[s] = SignalCounters(
                sent: t.counter("sextant_exporter_sent_items_total", help: "Items successfully sent.", labels: labels),
                failed: t.counter(
                    "sextant_exporter_send_failed_items_total",
                    help: "Items dropped after a permanent error or exhausted retries.", labels: labels),
                enqueueFailed: t.counter(
                    "sextant_exporter_enqueue_failed_items_total", help: "Items refused because the sending queue was full.",
                    labels: labels),
                retries: t.counter(
                    "sextant_exporter_retries_total", help: "Send attempts retried after a retryable failure.", labels: labels))
        }
        counters = c
        queueSize = t.gauge(
            "sextant_exporter_queue_size", help: "Current size of the sending queue (in its sizer's units).",
            labels: [("exporter", id)])
        let capacity = t.gauge(
            "sextant_exporter_queue_capacity", help: "Capacity of the sending queue (in its sizer's units).",
            labels: [("exporter", id)])
        if settings.queue.enabled, let storageID = settings.queue.storage {
            // The config loader has checked that the extension exists and is enabled.
            guard let storage = component.extensions[storageID] as? FileStorage else {
                preconditionFailure("exporter '\(id)': sending_queue::storage '\(storageID)' is not a running file_storage extension")
            }
            durable = storage.queue(
                for: component.id, policy: settings.queue.whenFull, blockTimeout: settings.queue.blockTimeout, telemetry: t,
                logger: component.logger)
            queue = nil
        } else if settings.queue.enabled {
            queue = BoundedQueue(capacity: settings.queue.queueSize)
            capacity.set(settings.queue.queueSize)
            durable = nil
        } else {
            queue = nil
            durable = nil
        }
    }

    /// Starts the queue workers. A persistent queue must have been opened (its `file_storage`
    /// extension starts before the exporters).
    public func start() {
        if let durable {
            let tasks = (0..<settings.queue.numConsumers).map { _ in
                Task { [self] in
                    while let item = await durable.pop() {
                        // A batch interrupted by shutdown stays queued for the next start.
                        if case .interrupted = await exportWithRetry(item.telemetry, keepOnInterrupt: true) { continue }
                        await durable.ack(item.seq)
                    }
                }
            }
            workers.withLock { $0 = tasks }
            return
        }
        guard let queue else { return }
        let tasks = (0..<settings.queue.numConsumers).map { _ in
            Task { [self] in
                while let batch = await queue.pop() {
                    queueSize.set(queue.used)
                    await exportWithRetry(batch)
                }
            }
        }
        workers.withLock { $0 = tasks }
    }

    /// Hands a batch to the exporter: enqueues it (queue enabled) or sends it now, retrying as configured.
    public func consume(_ telemetry: Telemetry) async throws {
        let n = telemetry.itemCount
        guard n > 0 else { return }
        if let durable {
            do {
                try await durable.push(telemetry)
            } catch {
                counters[telemetry.signal]!.enqueueFailed.add(n)
                throw error
            }
            return
        }
        guard let queue else {
            if case .dropped(let error) = await exportWithRetry(telemetry) { throw error }
            return
        }
        let weight = settings.queue.sizer == .items ? n : 1
        let ok =
            settings.queue.blockOnOverflow
            ? await queue.push(telemetry, weight: weight) : queue.tryPush(telemetry, weight: weight)
        queueSize.set(queue.used)
        if !ok {
            counters[telemetry.signal]!.enqueueFailed.add(n)
            throw ConsumerError.overloaded("sending queue of exporter '\(id)' is full (\(settings.queue.queueSize) \(settings.queue.sizer.rawValue))")
        }
    }

    /// Stops taking data and drains the queue. If the caller is cancelled (shutdown timeout), in-flight
    /// retries stop and what remains is counted as failed. A persistent queue is not drained: the
    /// batches in flight finish (or are interrupted at the deadline) and everything else stays on disk.
    public func shutdown() async {
        if let durable {
            // Stop taking batches out; what is queued stays on disk for the next start. The
            // `file_storage` extension closes the files after every exporter has stopped.
            durable.stopReading()
            stopping.fire()
            await waitForWorkers()
            return
        }
        guard let queue else { return }
        queue.close()
        await waitForWorkers()
        for batch in queue.drainRemaining() {
            counters[batch.signal]!.failed.add(batch.itemCount)
            logger.error("dropping batch at shutdown", metadata: ["exporter": "\(id)", "items": "\(batch.itemCount)"])
        }
        queueSize.set(0)
    }

    /// Waits for the workers; if the caller is cancelled (shutdown timeout), cancels them.
    private func waitForWorkers() async {
        let tasks = workers.withLock { $0 }
        await withTaskCancellationHandler {
            for t in tasks { await t.value }
        } onCancel: {
            for t in tasks { t.cancel() }
        }
    }

    /// How `exportWithRetry` ended.
    enum ExportOutcome {
        case sent
        /// Given up on (permanent error, retries disabled or exhausted); counted as failed.
        case dropped(ConsumerError)
        /// Cancelled by shutdown with `keepOnInterrupt`: not counted, the batch stays queued.
        case interrupted
    }

    /// Sends with retries. With `keepOnInterrupt` (a persistent queue), cancellation leaves the batch
    /// to its queue instead of counting it as failed.
    @discardableResult
    func exportWithRetry(_ batch: Telemetry, keepOnInterrupt: Bool = false) async -> ExportOutcome {
        let n = batch.itemCount
        let c = counters[batch.signal]!
        let started = clock.now
        var interval = settings.retry.initialInterval
        while true {
            do {
                try await attempt(batch)
                if countsSent { c.sent.add(n) }
                return .sent
            } catch {
                let e = ConsumerError.classify(error)
                if keepOnInterrupt && Task.isCancelled && e.kind != .permanent { return .interrupted }
                if e.kind == .permanent || !settings.retry.enabled || Task.isCancelled {
                    c.failed.add(n)
                    logger.error(
                        "dropping data: \(e.kind == .permanent ? "permanent error" : Task.isCancelled ? "shutting down" : "retries disabled")",
                        metadata: ["exporter": "\(id)", "items": "\(n)", "error": "\(e.message)"])
                    return .dropped(e)
                }
                var delay = jittered(interval)
                if let after = e.retryAfter, after > delay { delay = after }
                let elapsed = started.duration(to: clock.now)
                if settings.retry.maxElapsedTime > .zero && elapsed + delay > settings.retry.maxElapsedTime {
                    c.failed.add(n)
                    logger.error(
                        "dropping data: retries exhausted",
                        metadata: ["exporter": "\(id)", "items": "\(n)", "error": "\(e.message)", "elapsed": "\(elapsed)"])
                    return .dropped(ConsumerError(.retryable, "retries exhausted after \(elapsed): \(e.message)"))
                }
                c.retries.increment()
                logger.warning(
                    "export failed, will retry", metadata: ["exporter": "\(id)", "error": "\(e.message)", "delay": "\(delay)"])
                if keepOnInterrupt {
                    guard await sleepUnlessStopping(delay) else { return .interrupted }
                    interval = min(interval * settings.retry.multiplier, settings.retry.maxInterval)
                    continue
                }
                do {
                    try await clock.sleep(for: delay)
                } catch {
                    c.failed.add(n)
                    logger.error("dropping data: shutting down during retry", metadata: ["exporter": "\(id)", "items": "\(n)"])
                    return .dropped(ConsumerError(.retryable, "cancelled while waiting to retry"))
                }
                interval = min(interval * settings.retry.multiplier, settings.retry.maxInterval)
            }
        }
    }

    /// Waits out a retry backoff; `false` when shutdown began (or the task was cancelled) first. A
    /// persistent queue's batch is safe on disk, so shutdown need not wait for its next attempt.
    private func sleepUnlessStopping(_ delay: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { [clock] in (try? await clock.sleep(for: delay)) != nil }
            group.addTask { [stopping] in
                await stopping.wait()
                return false
            }
            let slept = await group.next()!
            group.cancelAll()
            return slept && !stopping.isSet
        }
    }

    /// One attempt, bounded by `timeout` (zero: unbounded, for an exporter that bounds its own requests).
    private func attempt(_ batch: Telemetry) async throws {
        let timeout = settings.timeout
        if timeout == .zero {
            try await send(batch)
            return
        }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { [send] in
                try await send(batch)
                return true
            }
            group.addTask { [clock] in
                try await clock.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            let finished = try await group.next()!
            if !finished { throw ConsumerError.retryable("attempt timed out after \(GoDuration.format(timeout))") }
        }
    }

    /// `interval ± randomization_factor × interval`, as OTel's backoff does.
    private func jittered(_ interval: Duration) -> Duration {
        let f = settings.retry.randomizationFactor
        guard f > 0 else { return interval }
        let r = Double.random(in: (1 - f)...(1 + f))
        return interval * r
    }
}

extension ExporterHelper where C == ContinuousClock {
    public convenience init(
        _ settings: ExporterHelperSettings, component: ComponentSettings, countsSent: Bool = true, send: @escaping Send
    ) {
        self.init(settings, component: component, clock: ContinuousClock(), countsSent: countsSent, send: send)
    }
}

/// A one-shot signal: `wait()` returns once `fire()` was called, or when the waiting task is cancelled.
final class StopSignal: Sendable {
    private struct State {
        var fired = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<Int> = []
    }

    private let state = Mutex(State())

    var isSet: Bool { state.withLock { $0.fired } }

    func fire() {
        let waiters = state.withLock { s in
            s.fired = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.fired || s.cancelled.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                guard let w = s.waiters.removeValue(forKey: id) else {
                    s.cancelled.insert(id)
                    return nil as CheckedContinuation<Void, Never>?
                }
                return w
            }
            waiter?.resume()
        }
    }
}
