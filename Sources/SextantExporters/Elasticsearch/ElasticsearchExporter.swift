import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SextantElasticsearch
import SextantHTTP
import SextantModel
import SextantOTLP
import SextantPipeline
import Synchronization

/// Indexes log records and spans through Elasticsearch's `_bulk` API.
///
/// A bulk indexer of its own rather than the generic exporter helper, because a bulk request
/// succeeds or fails per document: documents are buffered until `flush.bytes` or `flush.interval`,
/// and at most `num_workers` bulk requests are in flight (callers wait for a free worker — back
/// pressure). After each request only the documents that got a `retry_on_status` status (429/5xx)
/// are sent again, with exponential backoff, up to `max_retries`; a whole-request 429/5xx or a
/// transport failure retries all of them. Documents rejected for good (400 mapping errors, …) or out
/// of retries are written to the dead-letter file with the reason and counted as failed. Every
/// document is counted once: sent (a 2xx item status) or failed.
public final class ElasticsearchExporter: ConsumingComponent {
    struct Document: Sendable {
        var item: ElasticsearchBulk.Item
        var signal: Signal
    }

    private struct Buffer {
        var documents: [Document] = []
        var bytes = 0
    }

    private struct Counters: Sendable {
        var sent: [Signal: SelfTelemetry.Counter]
        var failed: [Signal: SelfTelemetry.Counter]
        var requests: SelfTelemetry.Counter
        var retried: SelfTelemetry.Counter
        var deadLettered: SelfTelemetry.Counter
    }

    private let config: ElasticsearchExporterConfig
    private let logger: Logger
    private let id: String
    private let counters: Counters
    private let buffer = Mutex(Buffer())
    private let workers: AsyncSemaphore
    private let inFlight = Mutex<[Int: Task<Void, Never>]>([:])
    private let nextTaskID = Atomic<Int>(0)
    private let nextEndpoint = Atomic<Int>(0)
    private let flusher = Mutex<Task<Void, Never>?>(nil)
    private let deadLetter: DeadLetterFile?
    private let client: HTTPExportClient
    /// The shared sending queue, when `sending_queue` is configured (set once, at the end of `init`).
    private let queued = Mutex<ExporterHelper<ContinuousClock>?>(nil)

    public init(_ config: ElasticsearchExporterConfig, settings: ComponentSettings) {
        self.config = config
        logger = settings.logger
        id = settings.id.description
        workers = AsyncSemaphore(config.numWorkers)
        deadLetter = config.deadLetterFile.map(DeadLetterFile.init)
        client = HTTPExportClient(config.security, configured: config.tlsConfigured, settings: settings)
        let t = settings.telemetry
        var sent: [Signal: SelfTelemetry.Counter] = [:]
        var failed: [Signal: SelfTelemetry.Counter] = [:]
        for s in [Signal.logs, .traces] {
            let labels = [("exporter", id), ("signal", s.rawValue)]
            sent[s] = t.counter("sextant_exporter_sent_items_total", help: "Items successfully sent.", labels: labels)
            failed[s] = t.counter(
                "sextant_exporter_send_failed_items_total", help: "Items dropped after a permanent error or exhausted retries.",
                labels: labels)
        }
        let labels = [("exporter", id)]
        counters = Counters(
            sent: sent, failed: failed,
            requests: t.counter("sextant_elasticsearch_bulk_requests_total", help: "Bulk requests sent (retries included).", labels: labels),
            retried: t.counter(
                "sextant_elasticsearch_retried_documents_total", help: "Documents sent again after a 429/5xx item or request status.",
                labels: labels),
            deadLettered: t.counter(
                "sextant_elasticsearch_dead_lettered_documents_total", help: "Documents written to the dead-letter file.", labels: labels))
        if config.queue.enabled {
            // The queue's own retry and attempt timeout are off: `send` retries per document and
            // settles every document (sent, or failed and dead-lettered) before it returns, so a
            // whole-batch retry by the helper could only index documents twice.
            var helperSettings = ExporterHelperSettings()
            helperSettings.queue = config.queue
            helperSettings.retry.enabled = false
            helperSettings.timeout = .zero  // each bulk request has the exporter's own `timeout`
            let helper = ExporterHelper(helperSettings, component: settings, countsSent: false) { [weak self] telemetry in
                guard let self else { throw ConsumerError.retryable("elasticsearch exporter is gone") }
                try await self.index(telemetry)
            }
            queued.withLock { $0 = helper }
        }
    }

    /// A queued batch: encoded, split into bulk requests of at most `flush.bytes`, sent in turn. Throws
    /// only when shutdown interrupts it (a persistent queue then keeps the batch; documents already
    /// indexed are indexed again on redelivery — at least once).
    private func index(_ telemetry: Telemetry) async throws {
        var chunk: [Document] = []
        var bytes = 0
        for d in encode(telemetry) {
            chunk.append(d)
            bytes += d.item.encodedSize
            if bytes >= config.flushBytes {
                try await send(chunk, keepOnShutdown: true)
                chunk.removeAll(keepingCapacity: true)
                bytes = 0
            }
        }
        if !chunk.isEmpty { try await send(chunk, keepOnShutdown: true) }
    }

    public func start() async throws {
        try client.start()
        try deadLetter?.open()
        if let helper = queued.withLock({ $0 }) {
            helper.start()
            return
        }
        let interval = config.flushInterval
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                guard let self else { return }
                let due = self.buffer.withLock { b -> [Document] in
                    defer { b = Buffer() }
                    return b.documents
                }
                if !due.isEmpty { await self.dispatch(due) }
            }
        }
        flusher.withLock { $0 = task }
    }

    public func shutdown() async {
        if let helper = queued.withLock({ $0 }) { await helper.shutdown() }
        if let task = flusher.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        let rest = buffer.withLock { b -> [Document] in
            defer { b = Buffer() }
            return b.documents
        }
        // If shutdown runs out of time (the caller is cancelled), requests in flight stop: their
        // documents are counted as failed and dead-lettered ("shutting down").
        await withTaskCancellationHandler {
            if !rest.isEmpty { await dispatch(rest) }
            for t in inFlight.withLock({ Array($0.values) }) { await t.value }
        } onCancel: { [self] in
            for t in inFlight.withLock({ Array($0.values) }) { t.cancel() }
        }
        deadLetter?.close()
        await client.shutdown()
    }

    public func consume(_ telemetry: Telemetry) async throws {
        if let helper = queued.withLock({ $0 }) {
            try await helper.consume(telemetry)
            return
        }
        let docs = encode(telemetry)
        guard !docs.isEmpty else { return }
        var ready: [[Document]] = []
        buffer.withLock { b in
            for d in docs {
                b.documents.append(d)
                b.bytes += d.item.encodedSize
                if b.bytes >= config.flushBytes {
                    ready.append(b.documents)
                    b = Buffer()
                }
            }
        }
        for bulk in ready { await dispatch(bulk) }
    }

    // MARK: Documents

    func encode(_ telemetry: Telemetry) -> [Document] {
        let signal = telemetry.signal
        guard signal == .logs || signal == .traces else { return [] }
        let template = signal == .logs ? config.logsIndex : config.tracesIndex
        let dynamic = signal == .logs ? config.logsDynamicIndex : config.tracesDynamicIndex
        let dsType = signal == .logs ? "logs" : "traces"
        let dataStream: (([[KeyValue]]) -> ECSMapping.DataStream)? = config.dataStream.map { ds in
            { routing in
                var d = ECSMapping.DataStream(type: dsType, dataset: ds.dataset, namespace: ds.namespace)
                if dynamic {
                    if let v = Self.routingValue("data_stream.dataset", routing), Self.validDataStreamPart(v) { d.dataset = v }
                    if let v = Self.routingValue("data_stream.namespace", routing), Self.validDataStreamPart(v) { d.namespace = v }
                }
                return d
            }
        }
        var out: [Document] = []
        out.reserveCapacity(telemetry.itemCount)
        ECSMapping.forEachDocument(telemetry, mode: config.mode, fallbackTimeUnixNano: SystemTime.nowNanos(), dataStream: dataStream) {
            doc, time, routing in
            var index: String
            if case .string(let t)? = doc.value(at: "data_stream.type"), case .string(let ds)? = doc.value(at: "data_stream.dataset"),
                case .string(let ns)? = doc.value(at: "data_stream.namespace")
            {
                index = "\(t)-\(ds)-\(ns)"
            } else {
                index = template.render(unixNano: time)
                if dynamic {
                    let prefixed =
                        (Self.routingValue("elasticsearch.index.prefix", routing) ?? "") + index
                        + (Self.routingValue("elasticsearch.index.suffix", routing) ?? "")
                    // A prefix or suffix that would make an invalid name is ignored.
                    if IndexNameTemplate.invalidReason(prefixed) == nil { index = prefixed }
                }
            }
            out.append(Document(item: ElasticsearchBulk.Item(index: index, source: doc.json()), signal: signal))
        }
        return out
    }

    /// The first string value of `key` in record, scope, then resource attributes.
    static func routingValue(_ key: String, _ routing: [[KeyValue]]) -> String? {
        for attrs in routing { if case .string(let s)? = attrs[key: key] { return s } }
        return nil
    }

    static func validDataStreamPart(_ s: String) -> Bool { IndexNameTemplate.invalidReason(s) == nil && !s.contains("-") }

    // MARK: Sending

    /// Waits for a free worker, then sends `bulk` on it.
    private func dispatch(_ bulk: [Document]) async {
        await workers.acquire()
        let key = nextTaskID.wrappingAdd(1, ordering: .relaxed).oldValue
        let task = Task { [self] in
            // Without `keepOnShutdown`, `send` settles every document itself and never throws.
            try? await send(bulk)
            workers.release()
        }
        inFlight.withLock { $0[key] = task }
        Task { [self] in
            await task.value
            _ = inFlight.withLock { $0.removeValue(forKey: key) }
        }
    }

    /// The outcome of one bulk request.
    enum Outcome {
        /// Per-item results, in request order.
        case items([ElasticsearchBulk.ItemResult])
        /// The whole request may be retried (transport failure, 429, 5xx).
        case retryable(String, retryAfter: Duration?)
        /// The whole request was refused for good.
        case rejected(status: Int, String)
    }

    /// Sends `documents` until each one is accepted, rejected for good, or out of retries. With
    /// `keepOnShutdown` (a queued batch), shutdown interrupting the retries throws instead of
    /// dead-lettering what is left, so that a persistent queue keeps the batch for the next start.
    func send(_ documents: [Document], keepOnShutdown: Bool = false) async throws {
        var pending = documents
        var attempt = 0
        var delay = config.retry.initialInterval
        while !pending.isEmpty {
            let outcome = await post(pending)
            var again: [Document] = []
            var reason = ""
            var retryAfter: Duration?
            switch outcome {
            case .retryable(let why, let after):
                again = pending
                reason = why
                retryAfter = after
            case .rejected(let status, let why):
                reject(pending, status: status, type: nil, reason: why)
            case .items(let results):
                for (doc, result) in zip(pending, results) {
                    if result.succeeded {
                        counters.sent[doc.signal]!.increment()
                    } else if config.retry.retryOnStatus.contains(result.status) {
                        again.append(doc)
                        reason = "status \(result.status)" + (result.errorReason.map { ": \($0)" } ?? "")
                    } else {
                        reject([doc], status: result.status, type: result.errorType, reason: result.errorReason ?? "status \(result.status)")
                    }
                }
            }
            guard !again.isEmpty else { return }
            if keepOnShutdown && Task.isCancelled { throw ConsumerError.retryable("shutting down with \(again.count) documents unsettled") }
            guard config.retry.enabled, attempt < config.retry.maxRetries, !Task.isCancelled else {
                let why = !config.retry.enabled ? "retries disabled" : Task.isCancelled ? "shutting down" : "retries exhausted"
                reject(again, status: nil, type: nil, reason: "\(why) after \(attempt + 1) attempt(s): \(reason)")
                return
            }
            attempt += 1
            counters.retried.add(again.count)
            var wait = Self.jittered(delay)
            if let retryAfter { wait = max(wait, min(retryAfter, config.retry.maxInterval)) }
            logger.warning(
                "bulk request incomplete, will retry",
                metadata: ["exporter": "\(id)", "documents": "\(again.count)", "reason": "\(reason)", "delay": "\(wait)"])
            do {
                try await Task.sleep(for: wait)
            } catch {
                if keepOnShutdown { throw ConsumerError.retryable("shutting down with \(again.count) documents unsettled") }
                reject(again, status: nil, type: nil, reason: "shutting down while waiting to retry: \(reason)")
                return
            }
            delay = min(delay * 2, config.retry.maxInterval)
            pending = again
        }
    }

    /// ±20 % so that workers retrying together spread out.
    private static func jittered(_ d: Duration) -> Duration { d * Double.random(in: 0.8...1.2) }

    private func reject(_ documents: [Document], status: Int?, type: String?, reason: String) {
        for d in documents { counters.failed[d.signal]!.increment() }
        logger.error(
            "documents rejected",
            metadata: ["exporter": "\(id)", "documents": "\(documents.count)", "status": "\(status.map(String.init) ?? "-")", "reason": "\(reason)"])
        guard let deadLetter else { return }
        let now = UTCTime(unixNano: SystemTime.nowNanos()).rfc3339Nano
        var lines: [UInt8] = []
        for d in documents {
            lines += DeadLetterFile.line(time: now, document: d.item, status: status, type: type, reason: reason)
        }
        do {
            try deadLetter.write(lines)
            counters.deadLettered.add(documents.count)
        } catch {
            logger.error("cannot write the dead-letter file", metadata: ["exporter": "\(id)", "error": "\(error)"])
        }
    }

    /// One `POST <endpoint>/_bulk`, endpoints taken in turn.
    private func post(_ documents: [Document]) async -> Outcome {
        let endpoint = config.endpoints[(nextEndpoint.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % config.endpoints.count]
        let url = endpoint + "/_bulk"
        var body = ElasticsearchBulk.body(documents.lazy.map(\.item), action: config.action)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-ndjson")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "sextant")
        if let auth = config.authorization { request.headers.add(name: "Authorization", value: auth.value) }
        if config.compression {
            body = Inflater.gzip(body)
            request.headers.add(name: "Content-Encoding", value: "gzip")
        }
        for (k, v) in config.headers { request.headers.replaceOrAdd(name: k, value: v) }
        let http: HTTPClient
        do {
            let (c, credentials) = try client.current()
            http = c
            for (k, v) in credentials { request.headers.replaceOrAdd(name: k, value: v) }
        } catch {
            return .retryable("\(error)", retryAfter: nil)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        counters.requests.increment()
        let status: Int
        let headers: HTTPHeaders
        let reply: [UInt8]
        do {
            let response = try await http.execute(request, timeout: TimeAmount(config.timeout))
            status = Int(response.status.code)
            headers = response.headers
            // A bulk response is ~100 bytes per document; allow generously more, never unbounded.
            let limit = max(1 << 20, documents.count * 4096)
            let buf = try await response.body.collect(upTo: limit)
            reply = buf.getBytes(at: buf.readerIndex, length: buf.readableBytes) ?? []
        } catch {
            return .retryable("POST \(url) failed: \(error)", retryAfter: nil)
        }
        let detail = String(decoding: reply.prefix(512), as: UTF8.self)
        guard (200..<300).contains(status) else {
            if status == 429 || (status >= 500 && status != 501) {
                let after = headers.first(name: "retry-after").flatMap(Int.init).map { Duration.seconds($0) }
                return .retryable("HTTP \(status) from \(url): \(detail)", retryAfter: after)
            }
            return .rejected(status: status, "HTTP \(status) from \(url): \(detail)")
        }
        let results: [ElasticsearchBulk.ItemResult]
        do {
            results = try ElasticsearchBulk.parseResponse(reply)
        } catch {
            // The documents may or may not have been indexed; none is reported as sent.
            return .rejected(status: status, "unreadable bulk response from \(url): \(error)")
        }
        guard results.count == documents.count else {
            return .rejected(status: status, "bulk response from \(url) has \(results.count) items for \(documents.count) documents")
        }
        return .items(results)
    }
}

/// The dead-letter file: one JSON line per rejected document with the reason it was rejected.
final class DeadLetterFile: Sendable {
    let path: String
    private let file = Mutex<RotatingFile?>(nil)

    init(_ path: String) { self.path = path }

    func open() throws {
        let f = try RotatingFile(path: path, append: true, rotation: nil)
        file.withLock { $0 = f }
    }

    func write(_ bytes: [UInt8]) throws {
        try file.withLock { f in
            guard f != nil else { throw ConsumerError.retryable("dead-letter file '\(path)' is not open") }
            try f!.write(bytes)
        }
    }

    func close() {
        file.withLock { f in
            f?.close()
            f = nil
        }
    }

    /// `{"document":<source>,"@timestamp":…,"error":{"reason":…,"type":…},"index":…,"status":…}` + newline.
    static func line(time: String, document: ElasticsearchBulk.Item, status: Int?, type: String?, reason: String) -> [UInt8] {
        let rest = JSONWriter.document(estimatedSize: reason.utf8.count + document.index.utf8.count + 128) { w in
            w.beginObject()
            w.key("@timestamp")
            w.string(time)
            w.key("error")
            w.beginObject()
            w.key("reason")
            w.string(reason)
            if let type {
                w.key("type")
                w.string(type)
            }
            w.endObject()
            w.key("index")
            w.string(document.index)
            if let status {
                w.key("status")
                w.number(status)
            }
            w.endObject()
        }
        // The source is already JSON (we encoded it): spliced in as is.
        var line = Array("{\"document\":".utf8)
        line.reserveCapacity(line.count + document.source.count + rest.count + 2)
        line += document.source
        line.append(UInt8(ascii: ","))
        line += rest.dropFirst()
        line.append(UInt8(ascii: "\n"))
        return line
    }
}

/// A counting semaphore for tasks: `acquire` waits until a unit is free.
final class AsyncSemaphore: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(_ units: Int) { state = Mutex(State(available: units)) }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.available > 0 {
                    s.available -= 1
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.available += 1
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
