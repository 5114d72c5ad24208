import Logging
import NIOPosix
import SextantModel
import SextantOTLP
import Synchronization

/// What a persistent sending queue does when a new batch does not fit in `max_size`.
public enum QueueFullPolicy: String, Sendable, Equatable, CaseIterable {
    /// Wait up to `block_timeout` for acknowledged records to free room, then refuse the batch
    /// (`ConsumerError.overloaded`: receivers answer 429 / `RESOURCE_EXHAUSTED` / no forward ack).
    case block
    /// Give up the oldest records not yet handed to the exporter (counted) to make room.
    case dropOldest = "drop_oldest"
}

/// An exporter's persistent sending queue: a `WriteAheadLog` of OTLP-protobuf-encoded batches, driven
/// from async code.
///
/// All file work runs on one dedicated `NIOThreadPool` thread, which confines the log (the mutex
/// around it is never contended) and keeps blocking `pwrite`/`fsync` off the cooperative pool. Because
/// that thread runs jobs in order, concurrent `push`es group-commit: each appends, then asks for a
/// sync, and the first sync covers every append queued before it; the others find nothing to do.
public final class DurableQueue: Sendable {
    /// A batch read back from the queue; pass `seq` to `ack` once it is done with.
    public struct Item: Sendable {
        public var seq: UInt64
        public var telemetry: Telemetry
        /// Handed to the exporter before a restart too: the backend may see it twice.
        public var redelivered: Bool
    }

    private struct Readers {
        /// Bumped on the I/O thread after every append, so a reader that found nothing can tell
        /// whether it must wait.
        var version: UInt64 = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private enum PushOutcome: Sendable {
        case appended(dropped: [UInt32], usedBytes: Int)
        case full
    }

    private struct Counters: Sendable {
        var dropped: [Signal: SelfTelemetry.Counter]
        var redelivered: [Signal: SelfTelemetry.Counter]
        var corruptions: SelfTelemetry.Counter
        var skippedBytes: SelfTelemetry.Counter
        var lostRecords: SelfTelemetry.Counter
        var size: SelfTelemetry.Gauge
    }

    /// The log's directory.
    public let directory: String
    public let maxSize: Int
    public let policy: QueueFullPolicy
    public let blockTimeout: Duration
    private let options: WriteAheadLog.Options
    private let owner: String
    private let logger: Logger
    private let io = NIOThreadPool(numberOfThreads: 1)
    private let log = Mutex<WriteAheadLog?>(nil)
    private let readers = Mutex(Readers())
    private let published = Mutex(WALRecoveryReport())
    private let counters: Counters

    /// - Parameters:
    ///   - owner: the exporter's ID, for metrics labels and messages.
    init(
        directory: String, fsync: Bool, maxSize: Int, policy: QueueFullPolicy, blockTimeout: Duration, owner: String,
        telemetry: SelfTelemetry, logger: Logger
    ) {
        self.directory = directory
        self.maxSize = maxSize
        self.policy = policy
        self.blockTimeout = blockTimeout
        self.owner = owner
        self.logger = logger
        options = WriteAheadLog.Options(fsync: fsync, segmentSize: max(64 << 10, min(64 << 20, maxSize / 8)))
        let l = [("exporter", owner)]
        var dropped: [Signal: SelfTelemetry.Counter] = [:]
        var redelivered: [Signal: SelfTelemetry.Counter] = [:]
        for s in Signal.allCases {
            dropped[s] = telemetry.counter(
                "sextant_exporter_queue_dropped_items_total",
                help: "Items a persistent queue gave up to make room (when_full: drop_oldest).", labels: l + [("signal", s.rawValue)])
            redelivered[s] = telemetry.counter(
                "sextant_exporter_queue_redelivered_items_total",
                help: "Items handed to the exporter again after a restart (possible duplicates downstream).",
                labels: l + [("signal", s.rawValue)])
        }
        counters = Counters(
            dropped: dropped, redelivered: redelivered,
            corruptions: telemetry.counter(
                "sextant_exporter_queue_corruptions_total",
                help: "Damaged regions (torn or corrupt records, cursor) a persistent queue detected and skipped.", labels: l),
            skippedBytes: telemetry.counter(
                "sextant_exporter_queue_skipped_bytes_total", help: "Bytes a persistent queue skipped as damaged.", labels: l),
            lostRecords: telemetry.counter(
                "sextant_exporter_queue_lost_records_total",
                help: "Queued batches known lost in damaged regions of a persistent queue.", labels: l),
            // The exporter helper's queue gauges, here in bytes (a persistent queue's sizer).
            size: telemetry.gauge(
                "sextant_exporter_queue_size", help: "Current size of the sending queue (in its sizer's units).", labels: l))
        telemetry.gauge(
            "sextant_exporter_queue_capacity", help: "Capacity of the sending queue (in its sizer's units).", labels: l
        ).set(maxSize)
    }

    /// Opens and recovers the log. Damaged data is skipped and counted; only I/O errors throw.
    @discardableResult
    public func open() async throws -> WALRecoveryReport {
        io.start()
        let (directory, options) = (self.directory, self.options)
        let report: (WALRecoveryReport, Int)
        do {
            report = try await io.runIfActive { [self] in
                try log.withLock { slot in
                    let wal = try WriteAheadLog(directory: directory, options: options)
                    let report = (wal.report, wal.usedBytes)
                    slot = wal
                    return report
                }
            }
        } catch {
            try? await io.shutdownGracefully()
            throw error
        }
        publish(report.0, usedBytes: report.1)
        if report.0.corruptions > 0 {
            logger.warning(
                "persistent queue recovered with damaged data skipped",
                metadata: [
                    "exporter": "\(owner)", "directory": "\(directory)", "corruptions": "\(report.0.corruptions)",
                    "skipped_bytes": "\(report.0.skippedBytes)", "lost_records": "\(report.0.lostRecords)",
                ])
        }
        if report.0.pendingRecords > 0 {
            logger.info(
                "persistent queue resumes", metadata: ["exporter": "\(owner)", "pending_batches": "\(report.0.pendingRecords)"])
        }
        return report.0
    }

    /// Appends a batch and returns once it is written (and synced, with `fsync`): only then may the
    /// receiver acknowledge it. Throws `ConsumerError.overloaded` when it cannot be stored (full for
    /// longer than `block_timeout`, or a write error such as a full disk).
    public func push(_ telemetry: Telemetry) async throws {
        let payload = OTLPProtobuf.encode(telemetry)
        let tag = Self.tag(telemetry)
        let framed = WriteAheadLog.headerSize + payload.count
        let (maxSize, policy) = (self.maxSize, self.policy)
        let deadline = ContinuousClock.now.advanced(by: blockTimeout)
        var delay: Duration = .milliseconds(1)
        while true {
            let outcome: PushOutcome
            do {
                outcome = try await withLog { wal in
                    var dropped: [UInt32] = []
                    if wal.usedBytes > 0 && wal.usedBytes + framed > maxSize {
                        guard policy == .dropOldest else { return .full }
                        // Records already handed out cannot be taken back; if they alone fill the queue,
                        // the new batch goes in anyway (an overshoot bounded by num_consumers batches).
                        while wal.usedBytes > 0 && wal.usedBytes + framed > maxSize, let t = try wal.dropOldestUnread() {
                            dropped.append(t)
                        }
                    }
                    try wal.append(payload, tag: tag)
                    return .appended(dropped: dropped, usedBytes: wal.usedBytes)
                }
            } catch {
                throw ConsumerError.overloaded("persistent queue of exporter '\(owner)' cannot store the batch: \(error)")
            }
            switch outcome {
            case .full:
                if ContinuousClock.now >= deadline || Task.isCancelled {
                    throw ConsumerError.overloaded(
                        "persistent queue of exporter '\(owner)' is full (max_size \(maxSize) bytes)")
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .milliseconds(50))
            case .appended(let dropped, let used):
                counters.size.set(used)
                for t in dropped {
                    let (signal, items) = Self.untag(t)
                    counters.dropped[signal]!.add(items)
                }
                if !dropped.isEmpty {
                    logger.warning(
                        "persistent queue full: dropped the oldest batches",
                        metadata: ["exporter": "\(owner)", "batches": "\(dropped.count)"])
                }
                wakeReaders()
                do {
                    try await withLog { wal in try wal.sync() }
                } catch {
                    throw ConsumerError.retryable("persistent queue of exporter '\(owner)' cannot sync: \(error)")
                }
                return
            }
        }
    }

    /// The oldest batch not yet handed out, waiting while there is none; `nil` once `stopReading` ran.
    /// Records that no longer decode are acknowledged (dropped) and counted as lost.
    public func pop() async -> Item? {
        while true {
            let version = readers.withLock { $0.closed ? nil : $0.version }
            guard version != nil else { return nil }
            let found: (record: WriteAheadLog.Record?, version: UInt64, report: WALRecoveryReport, used: Int)
            do {
                found = try await withLog { [self] wal in
                    let record = try wal.next()
                    return (record, readers.withLock { $0.version }, wal.report, wal.usedBytes)
                }
            } catch {
                if readers.withLock({ $0.closed }) || Task.isCancelled { return nil }
                logger.error("persistent queue read failed; retrying", metadata: ["exporter": "\(owner)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            publish(found.report, usedBytes: found.used)
            guard let record = found.record else {
                await waitForData(after: found.version)
                continue
            }
            let (signal, _) = Self.untag(record.tag)
            do {
                let decoded = try OTLPProtobuf.decode(signal, keeping: record.payload)
                if decoded.rejected > 0 {
                    // Items the OTLP decoder refuses (e.g. a zero span ID from a lenient receiver) cannot
                    // survive the round trip through the queue.
                    logger.warning(
                        "persistent queue: items not representable in OTLP were dropped",
                        metadata: [
                            "exporter": "\(owner)", "items": "\(decoded.rejected)", "reason": "\(decoded.rejectionReason ?? "")",
                        ])
                }
                if record.redelivered { counters.redelivered[signal]!.add(decoded.data.itemCount) }
                return Item(seq: record.seq, telemetry: decoded.data, redelivered: record.redelivered)
            } catch {
                counters.lostRecords.increment()
                logger.error(
                    "persistent queue record does not decode; dropping it",
                    metadata: ["exporter": "\(owner)", "seq": "\(record.seq)", "error": "\(error)"])
                await ack(record.seq)
            }
        }
    }

    /// Marks a popped batch as done (sent, or given up on); it will not be delivered again. Runs
    /// even if the caller is being cancelled (shutdown deadline): the batch was sent, and skipping
    /// the acknowledgement would only send it again after the restart.
    public func ack(_ seq: UInt64) async {
        do {
            let used = try await Task {
                try await withLog { wal in
                    try wal.ack(seq)
                    return wal.usedBytes
                }
            }.value
            counters.size.set(used)
        } catch {
            logger.error("persistent queue ack failed", metadata: ["exporter": "\(owner)", "seq": "\(seq)", "error": "\(error)"])
        }
    }

    /// Stops handing out batches: waiting and later `pop`s return `nil`. What is queued stays on disk.
    public func stopReading() {
        let waiting = readers.withLock { r in
            r.closed = true
            defer { r.waiting = [] }
            return r.waiting
        }
        for c in waiting { c.resume() }
    }

    /// Syncs and closes the log and stops the I/O thread, even when the caller is being cancelled
    /// (the shutdown deadline passed): the files must still be synced.
    public func close() async {
        stopReading()
        do {
            try await Task { try await withLog { wal in try wal.close() } }.value
        } catch {
            logger.error("persistent queue close failed", metadata: ["exporter": "\(owner)", "error": "\(error)"])
        }
        _ = try? await Task { try await io.runIfActive { [self] in log.withLock { $0 = nil } } }.value
        try? await io.shutdownGracefully()
    }

    // MARK: Internals

    private func withLog<T: Sendable>(_ body: @escaping @Sendable (WriteAheadLog) throws -> T) async throws -> T {
        try await io.runIfActive { [self] in
            try log.withLock { wal in
                guard let wal else { throw StorageError("the persistent queue is closed") }
                return try body(wal)
            }
        }
    }

    private func wakeReaders() {
        let waiting = readers.withLock { r in
            r.version &+= 1
            defer { r.waiting = [] }
            return r.waiting
        }
        for c in waiting { c.resume() }
    }

    private func waitForData(after version: UInt64) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = readers.withLock { r in
                if r.closed || r.version != version { return true }
                r.waiting.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Adds what the log found since the last call to the counters.
    private func publish(_ report: WALRecoveryReport, usedBytes: Int) {
        let last = published.withLock { p in
            defer { p = report }
            return p
        }
        counters.corruptions.add(report.corruptions - last.corruptions)
        counters.skippedBytes.add(report.skippedBytes - last.skippedBytes)
        counters.lostRecords.add(report.lostRecords - last.lostRecords)
        counters.size.set(usedBytes)
    }

    /// Signal in the top two bits, item count (saturated) below: enough to count dropped items without decoding.
    static func tag(_ t: Telemetry) -> UInt32 {
        let s: UInt32
        switch t.signal {
        case .traces: s = 0
        case .metrics: s = 1
        case .logs: s = 2
        }
        return s << 30 | UInt32(min(t.itemCount, (1 << 30) - 1))
    }

    static func untag(_ tag: UInt32) -> (Signal, Int) {
        let signal: Signal
        switch tag >> 30 {
        case 0: signal = .traces
        case 1: signal = .metrics
        default: signal = .logs
        }
        return (signal, Int(tag & ((1 << 30) - 1)))
    }
}
