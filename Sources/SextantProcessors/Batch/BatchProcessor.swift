import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// `batch` processor config, with the OpenTelemetry Collector's defaults.
public struct BatchConfig: ComponentConfig, Equatable {
    /// Items (spans, points, records) that trigger a send regardless of the timeout.
    public var sendBatchSize = 8192
    /// Upper bound on a sent batch; larger batches are split. 0 = no bound.
    public var sendBatchMaxSize = 0
    /// How long the first item of a batch may wait before the batch is sent. 0 = no waiting.
    public var timeout: Duration = .milliseconds(200)

    public init() {}
}

public struct BatchProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "batch"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "groups telemetry into batches by size or time before export"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = BatchConfig()
        c.sendBatchSize = r.int("send_batch_size", default: c.sendBatchSize, min: 0)
        c.sendBatchMaxSize = r.int("send_batch_max_size", default: c.sendBatchMaxSize, min: 0)
        c.timeout = r.duration("timeout", default: c.timeout)
        if c.sendBatchMaxSize > 0 && c.sendBatchMaxSize < c.sendBatchSize {
            r.error("send_batch_max_size", "\(r.path)::send_batch_max_size must be 0 or at least send_batch_size (\(c.sendBatchSize))")
        }
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        BatchProcessor(config as! BatchConfig, settings: settings, pipeline: pipeline, next: next, clock: ContinuousClock())
    }
}

/// Accumulates batches until `send_batch_size` items or until the oldest item is `timeout` old, then
/// sends them on (split to `send_batch_max_size`). On shutdown whatever is pending is flushed.
///
/// Like the OTel batch processor, `consume` returns once the data is buffered; a downstream failure
/// is logged and counted as dropped here, because the batch mixes data from many requests.
public final class BatchProcessor<C: Clock>: ConsumingComponent where C.Duration == Duration {
    private struct State {
        var pending: Telemetry?
        var count = 0
        /// Bumped each time a new batch starts, so a timer for an already-sent batch does nothing.
        var generation = 0
        var deadline: C.Instant?
        var stopped = false
    }

    private let config: BatchConfig
    private let next: any Consumer
    private let clock: C
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let timerTask = Mutex<Task<Void, Never>?>(nil)
    private let sentBySize: SelfTelemetry.Counter
    private let sentByTimeout: SelfTelemetry.Counter
    private let dropped: SelfTelemetry.Counter

    public init(_ config: BatchConfig, settings: ComponentSettings, pipeline: PipelineID, next: any Consumer, clock: C) {
        self.config = config
        self.next = next
        self.clock = clock
        self.logger = settings.logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let labels = [("processor", settings.id.description), ("pipeline", pipeline.description)]
        let help = "Batches sent by the batch processor, by trigger."
        sentBySize = settings.telemetry.counter("sextant_processor_batch_sent_total", help: help, labels: labels + [("trigger", "size")])
        sentByTimeout = settings.telemetry.counter(
            "sextant_processor_batch_sent_total", help: help, labels: labels + [("trigger", "timeout")])
        dropped = settings.telemetry.counter(
            "sextant_processor_dropped_items_total", help: "Items a processor dropped because the next consumer failed.",
            labels: labels + [("signal", pipeline.signal.rawValue)])
    }

    public func start() async throws {
        let task = Task { [self] in await runTimer() }
        timerTask.withLock { $0 = task }
    }

    /// Batching concatenates kept trace requests (and splits between them).
    public var readsTraceModel: Bool { next.readsTraceModel }

    public func consume(_ telemetry: Telemetry) async throws {
        let n = telemetry.itemCount
        guard n > 0 else { return }
        if config.timeout == .zero {
            for piece in pieces(telemetry) { await send(piece) }
            return
        }
        let ready: Telemetry? = state.withLock { s in
            if s.pending == nil {
                s.pending = telemetry
                s.count = n
                s.generation += 1
                s.deadline = clock.now.advanced(by: config.timeout)
                wake.yield()
            } else {
                s.pending!.append(telemetry)
                s.count += n
            }
            guard config.sendBatchSize > 0, s.count >= config.sendBatchSize else { return nil }
            defer {
                s.pending = nil
                s.count = 0
            }
            return s.pending
        }
        if let ready {
            sentBySize.increment()
            for piece in pieces(ready) { await send(piece) }
        }
    }

    public func shutdown() async {
        let pending: Telemetry? = state.withLock { s in
            s.stopped = true
            defer { s.pending = nil }
            return s.pending
        }
        wake.finish()
        timerTask.withLock { $0 }?.cancel()
        await timerTask.withLock { $0 }?.value
        if let pending { for piece in pieces(pending) { await send(piece) } }
    }

    private func runTimer() async {
        for await _ in wakeups {
            while true {
                guard let (generation, deadline) = state.withLock({ s in s.pending == nil ? nil : (s.generation, s.deadline!) }) else {
                    break
                }
                do { try await clock.sleep(until: deadline, tolerance: nil) } catch { return }
                let due: Telemetry? = state.withLock { s in
                    guard s.generation == generation, let p = s.pending else { return nil }
                    s.pending = nil
                    s.count = 0
                    return p
                }
                if let due {
                    sentByTimeout.increment()
                    for piece in pieces(due) { await send(piece) }
                }
                // A newer batch may have started while we slept; its wake-up is buffered in the stream.
                break
            }
        }
    }

    private func pieces(_ t: Telemetry) -> [Telemetry] {
        config.sendBatchMaxSize > 0 ? t.split(maxItems: config.sendBatchMaxSize) : [t]
    }

    /// Sends a batch on. When the next consumer is overloaded (an exporter's queue is full) it waits
    /// and tries again, so overload becomes backpressure on the caller — a receiver whose request
    /// filled the batch answers late, and its clients slow down — instead of dropping data that was
    /// already acknowledged. Other failures, and cancellation at the shutdown deadline, drop and count.
    private func send(_ batch: Telemetry) async {
        var delay: Duration = .milliseconds(5)
        while true {
            do {
                try await next.consume(batch)
                return
            } catch let e as ConsumerError where e.kind == .overloaded && !Task.isCancelled {
                do { try await clock.sleep(for: delay) } catch { break }
                delay = min(delay * 2, .milliseconds(500))
            } catch {
                dropped.add(batch.itemCount)
                logger.warning("batch dropped: next consumer failed", metadata: ["items": "\(batch.itemCount)", "error": "\(error)"])
                return
            }
        }
        dropped.add(batch.itemCount)
        logger.warning("batch dropped at shutdown: next consumer still overloaded", metadata: ["items": "\(batch.itemCount)"])
    }
}
