#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// The `filelog` receiver: tails the files that `include` matches (minus `exclude`) every
/// `poll_interval` and emits one log record per entry.
///
/// A file is known by its device and inode while it is open, and by the fingerprint of its first
/// `fingerprint_size` bytes across restarts and copies. That covers rotation both ways:
/// - rename + create: the renamed file is still held open, so it is read to its end (and closed) before
///   the new file at the old path is read from its beginning;
/// - copytruncate: a file that shrank (or whose first bytes changed) is read again from 0, and a copy
///   whose fingerprint matches the truncated file's continues from the offset already read.
///
/// Offsets advance (and are written to `storage`) only after downstream accepted the batch, so
/// delivery is at-least-once: a refused batch is read again on the next poll.
public final class FileLogReceiver: Component {
    private let tailer: FileTailer
    private let loop = Mutex<(task: Task<Void, Never>?, sleeper: Task<Void, Never>?, stopping: Bool)>((nil, nil, false))
    private let pollInterval: Duration
    private let sleep: @Sendable (Duration) async -> Void

    public convenience init(_ config: FileLogReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.init(config, settings: settings, next: next, clock: ContinuousClock())
    }

    /// `clock` drives polling and the force-flush period (tests pass a manual clock).
    public init<C: Clock>(_ config: FileLogReceiverConfig, settings: ComponentSettings, next: any Consumer, clock: C)
    where C.Duration == Duration {
        let start = clock.now
        tailer = FileTailer(config: config, settings: settings, next: next, now: { start.duration(to: clock.now) })
        pollInterval = config.pollInterval
        sleep = { d in try? await clock.sleep(for: d) }
    }

    public func start() async throws {
        try await tailer.load()
        let task = Task { [self] in
            while true {
                await tailer.poll()
                let sleeper = loop.withLock { s -> Task<Void, Never>? in
                    guard !s.stopping else { return nil }
                    let t = Task { await sleep(pollInterval) }
                    s.sleeper = t
                    return t
                }
                guard let sleeper else { return }
                await sleeper.value
            }
        }
        loop.withLock { $0.task = task }
    }

    /// Finishes the batch in flight (and its checkpoint), then stops polling and closes the files.
    public func shutdown() async {
        await tailer.stop()
        let task = loop.withLock { s -> Task<Void, Never>? in
            s.stopping = true
            s.sleeper?.cancel()
            return s.task
        }
        await task?.value
        await tailer.closeAll()
    }

    /// Runs one poll cycle now (tests drive the receiver this way without `start`).
    public func poll() async { await tailer.poll() }

    /// Loads checkpoints without starting the poll loop (with `poll()`, for tests).
    public func loadCheckpoints() async throws { try await tailer.load() }

    public func closeFiles() async { await tailer.closeAll() }
}

/// One file being tailed.
final class TrackedFile {
    var path: String
    var fd: Int32
    let device: UInt64
    let inode: UInt64
    var fingerprint: [UInt8]
    var offset: UInt64
    /// When an unterminated tail was first seen at `pendingSize` bytes (for `force_flush_period`).
    var pendingSince: Duration?
    var pendingSize: UInt64 = 0

    init(path: String, fd: Int32, device: UInt64, inode: UInt64, fingerprint: [UInt8], offset: UInt64) {
        self.path = path
        self.fd = fd
        self.device = device
        self.inode = inode
        self.fingerprint = fingerprint
        self.offset = offset
    }

    var checkpoint: FileCheckpointStore.Entry {
        .init(path: path, device: device, inode: inode, fingerprint: fingerprint, offset: offset)
    }
}

/// The poll loop's state; an actor so that `poll` and `stop` never race.
actor FileTailer {
    let config: FileLogReceiverConfig
    let next: any Consumer
    let logger: Logger
    let metrics: ReceiverMetrics
    let now: @Sendable () -> Duration
    let store: FileCheckpointStore?
    let splitter: LogSplitter
    let include: [FileGlob]
    let exclude: [FileGlob]
    private let operatorErrors: SelfTelemetry.Counter

    private var active: [TrackedFile] = []
    /// Files known from the checkpoint or closed earlier, matched by fingerprint when they reappear.
    private var known: [FileCheckpointStore.Entry] = []
    private var firstPoll = true
    private var stopping = false
    private var warnedTooMany = false

    init(config: FileLogReceiverConfig, settings: ComponentSettings, next: any Consumer, now: @escaping @Sendable () -> Duration) {
        self.config = config
        self.next = next
        self.logger = settings.logger
        self.now = now
        metrics = ReceiverMetrics(settings, transport: "file")
        store = config.storageDirectory.map { FileCheckpointStore(directory: $0, receiverID: settings.id.description) }
        splitter = LogSplitter(maxLogSize: config.maxLogSize, multiline: config.multiline)
        include = config.include.map(FileGlob.init)
        exclude = config.exclude.map(FileGlob.init)
        operatorErrors = settings.telemetry.counter(
            "sextant_filelog_operator_errors_total", help: "Entries an operator (json_parser, regex_parser) could not parse.",
            labels: [("receiver", settings.id.description)])
    }

    func load() throws {
        guard let store else { return }
        try store.prepare()
        known = try store.load()
        if !known.isEmpty { logger.info("filelog resuming from checkpoints", metadata: ["files": "\(known.count)", "file": "\(store.file)"]) }
    }

    func stop() { stopping = true }

    func closeAll() {
        for f in active where f.fd >= 0 {
            close(f.fd)
            f.fd = -1
        }
        active = []
    }

    // MARK: Polling

    private struct Candidate {
        var path: String
        var fd: Int32
        var device: UInt64
        var inode: UInt64
        var size: UInt64
        var fingerprint: [UInt8]
    }

    func poll() async {
        guard !stopping else { return }
        var paths = Set<String>()
        for g in include { for p in g.expand() where !exclude.contains(where: { $0.matches(p) }) { paths.insert(p) } }
        var sorted = paths.sorted()
        if sorted.count > config.maxConcurrentFiles {
            if !warnedTooMany {
                logger.warning("more files match than max_concurrent_files; reading the first ones", metadata: ["matched": "\(sorted.count)"])
                warnedTooMany = true
            }
            sorted = Array(sorted.prefix(config.maxConcurrentFiles))
        }
        // What every held file looked like before this poll, to recognise copies of a truncated file.
        let before = active.map { (file: $0, fingerprint: $0.fingerprint, offset: $0.offset) }
        var continuing: [TrackedFile] = []  // same file as before, nothing lost: read first
        var restarted: [TrackedFile] = []  // new, truncated or replaced: read after
        var seen = Set<ObjectIdentifier>()
        var fresh: [Candidate] = []
        for path in sorted {
            guard let c = candidate(path) else { continue }
            if let f = active.first(where: { $0.device == c.device && $0.inode == c.inode }) {
                close(c.fd)
                guard seen.insert(ObjectIdentifier(f)).inserted else { continue }
                f.path = path
                let common = min(c.fingerprint.count, f.fingerprint.count)
                if c.size < f.offset || c.fingerprint[..<common] != f.fingerprint[..<common] {
                    logger.info("file truncated or rewritten; reading it from the start", metadata: ["path": "\(path)"])
                    f.offset = 0
                    f.fingerprint = c.fingerprint
                    f.pendingSince = nil
                    restarted.append(f)
                } else {
                    if c.fingerprint.count > f.fingerprint.count { f.fingerprint = c.fingerprint }
                    continuing.append(f)
                }
            } else {
                fresh.append(c)
            }
        }
        let lost = active.filter { !seen.contains(ObjectIdentifier($0)) }
        for c in fresh {
            var offset: UInt64
            // A copy of a file that was then truncated (copytruncate) continues where the original was.
            if let b = before.first(where: { b in
                !b.fingerprint.isEmpty && c.fingerprint.starts(with: b.fingerprint) && c.size >= b.offset
                    && restarted.contains { $0 === b.file }
            }) {
                offset = b.offset
                let f = TrackedFile(path: c.path, fd: c.fd, device: c.device, inode: c.inode, fingerprint: c.fingerprint, offset: offset)
                continuing.append(f)
                continue
            }
            if let i = known.firstIndex(where: { k in
                !k.fingerprint.isEmpty && c.fingerprint.starts(with: k.fingerprint)
                    && (k.fingerprint.count >= config.fingerprintSize || (k.device == c.device && k.inode == c.inode))
            }) {
                let k = known.remove(at: i)
                offset = c.size >= k.offset ? k.offset : 0
                continuing.append(TrackedFile(path: c.path, fd: c.fd, device: c.device, inode: c.inode, fingerprint: c.fingerprint, offset: offset))
                continue
            }
            offset = firstPoll && config.startAt == .end ? c.size : 0
            restarted.append(TrackedFile(path: c.path, fd: c.fd, device: c.device, inode: c.inode, fingerprint: c.fingerprint, offset: offset))
        }
        firstPoll = false
        // Files renamed away or deleted since the last poll: finish them, then let them go. One whose
        // batch was refused stays open and is tried again first on the next poll (nothing after it is
        // read before, so order holds).
        var unfinished: [TrackedFile] = []
        for f in lost {
            if !stopping {
                var finished = unfinished.isEmpty
                if finished { finished = await read(f, final: true) }
                if !finished {
                    unfinished.append(f)
                    continue
                }
            }
            close(f.fd)
            f.fd = -1
            remember(f.checkpoint)
        }
        active = unfinished + continuing + restarted
        if !lost.isEmpty { saveCheckpoints() }
        guard unfinished.isEmpty else { return }
        for f in active {
            guard !stopping else { break }
            guard await read(f, final: false) else { break }
        }
    }

    /// Keeps a closed file's checkpoint (bounded) so it resumes if it shows up again.
    private func remember(_ e: FileCheckpointStore.Entry) {
        known.removeAll { $0.device == e.device && $0.inode == e.inode }
        known.insert(e, at: 0)
        if known.count > config.maxConcurrentFiles { known.removeLast(known.count - config.maxConcurrentFiles) }
    }

    private func candidate(_ path: String) -> Candidate? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            logger.debug("cannot open file", metadata: ["path": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return nil
        }
        let size = UInt64(st.st_size)
        let fp = readAt(fd, offset: 0, count: Int(min(UInt64(config.fingerprintSize), size)))
        return Candidate(path: path, fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: size, fingerprint: fp)
    }

    private func readAt(_ fd: Int32, offset: UInt64, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        if got < count { buf.removeLast(count - got) }
        return buf
    }

    private var chunkSize: Int { max(256 << 10, 2 * config.maxLogSize + 2) }

    /// Reads `f` from its offset to its end, batch by batch. `final`: the file will not grow any more
    /// (renamed away), so an unterminated last line is emitted now. Returns false when downstream refused.
    @discardableResult
    private func read(_ f: TrackedFile, final: Bool) async -> Bool {
        while !stopping {
            var st = stat()
            guard fstat(f.fd, &st) == 0 else { return true }
            let size = UInt64(st.st_size)
            guard size > f.offset else {
                f.pendingSince = nil
                return true
            }
            let data = readAt(f.fd, offset: f.offset, count: Int(min(size - f.offset, UInt64(chunkSize))))
            guard !data.isEmpty else { return true }
            let atEOF = f.offset + UInt64(data.count) >= size
            var flush = atEOF && final
            if atEOF, !flush, let since = f.pendingSince, f.pendingSize == size, config.forceFlushPeriod > .zero,
                now() - since >= config.forceFlushPeriod
            {
                flush = true
            }
            let (ranges, consumed) = data.withUnsafeBufferPointer { splitter.split($0, flushTail: flush, maxEntries: config.maxBatchSize) }
            if ranges.isEmpty && consumed == 0 {
                // Only an unterminated line (or an open multiline entry) remains: wait for more bytes.
                if f.pendingSince == nil || f.pendingSize != size {
                    f.pendingSince = now()
                    f.pendingSize = size
                }
                return true
            }
            if !ranges.isEmpty {
                let records = makeRecords(ranges, data, f)
                if !records.isEmpty {
                    do {
                        try await next.consume(.logs(LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])])))
                        metrics.accepted(.logs, records.count)
                    } catch {
                        metrics.refused(.logs, records.count)
                        logger.warning(
                            "filelog batch refused downstream; it is read again on the next poll",
                            metadata: ["path": "\(f.path)", "records": "\(records.count)", "error": "\(error)"])
                        return false
                    }
                }
            }
            f.offset += UInt64(consumed)
            f.pendingSince = nil
            saveCheckpoints()
        }
        return true
    }

    private func makeRecords(_ ranges: [Range<Int>], _ data: [UInt8], _ f: TrackedFile) -> [LogRecord] {
        let observed = SystemTime.nowNanos()
        var base: [KeyValue] = []
        if config.includeFileName {
            let name = f.path.split(separator: "/").last.map(String.init) ?? f.path
            base.append(KeyValue("log.file.name", .string(name)))
        }
        if config.includeFilePath { base.append(KeyValue("log.file.path", .string(f.path))) }
        var out: [LogRecord] = []
        out.reserveCapacity(ranges.count)
        entries: for r in ranges {
            let body: AnyValue = config.encoding == .nop ? .bytes(Array(data[r])) : .string(String(decoding: data[r], as: UTF8.self))
            var record = LogRecord(observedTimeUnixNano: observed, body: body, attributes: base)
            for op in config.operators {
                if let error = op.apply(to: &record) {
                    operatorErrors.increment()
                    if !op.quiet { logger.debug("filelog operator failed", metadata: ["error": "\(error)", "path": "\(f.path)"]) }
                    if op.dropOnError { continue entries }
                }
            }
            out.append(record)
        }
        return out
    }

    private func saveCheckpoints() {
        guard let store else { return }
        do {
            var seen = Set<String>()
            var entries: [FileCheckpointStore.Entry] = []
            for e in active.map(\.checkpoint) + known where seen.insert("\(e.device):\(e.inode):\(e.path)").inserted { entries.append(e) }
            try store.save(entries)
        } catch {
            logger.error("cannot write filelog checkpoint", metadata: ["error": "\(error)"])
        }
    }
}
