import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantExporters
import SextantFluentForward
import SextantGRPC
import SextantIstio
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantZipkin

/// Where the proxy sends spans or access logs: a collector address and the wire format it speaks.
public enum TelemetryDestination: Sendable, Equatable {
    /// Zipkin v2 JSON to `http://host:port/api/v2/spans` (spans only).
    case zipkin(host: String, port: Int)
    /// OTLP/HTTP protobuf to `http://host:port<path>`.
    case otlpHTTP(host: String, port: Int, path: String)
    /// OTLP/gRPC `Export` to `host:port` (Istio's default for `opentelemetry` and `envoyOtelAls`).
    case otlpGRPC(host: String, port: Int)
    /// Fluentd Forward protocol v1 frames to a forward input at `host:port` (access logs only).
    case fluentForward(host: String, port: Int)
}

/// Sends OTLP or Zipkin payloads to one destination. HTTP uses a short-lived HTTP/1.1 connection per
/// batch (a batch holds up to 512 items, so a busy proxy sends a few a second); gRPC keeps one multiplexed
/// HTTP/2 connection, opened on first use and closed when `run` returns; Fluentd forward keeps one TCP
/// connection the same way (the `fluentforward` exporter's client: reconnects with a backoff after a failure).
final class TelemetryTransport: Sendable {
    let destination: TelemetryDestination
    let group: any EventLoopGroup
    let logger: Logger
    private let grpc: GRPCUnaryClient?
    private let forward: ForwardClient?

    /// `forwardRetry` is how a Fluentd forward connection is replaced (Envoy's Fluentd logger's defaults unless
    /// `retryOptions` says otherwise).
    init(
        destination: TelemetryDestination, forwardRetry: MeshConfig.FluentdRetryOptions = .init(), group: any EventLoopGroup, logger: Logger
    ) {
        self.destination = destination
        self.group = group
        self.logger = logger
        grpc = if case .otlpGRPC(let host, let port) = destination { GRPCUnaryClient(.init(host: host, port: port), group: group) } else { nil }
        if case .fluentForward(let host, let port) = destination {
            var config = FluentForwardExporterConfig()
            (config.host, config.port) = (host, port)
            config.connectionTimeout = .seconds(5)
            // The proxy drops what it cannot send at once: a forward input that is back is tried again within
            // `maxInterval` (Envoy's Fluentd logger: 500 ms, doubling up to 10× that).
            forward = ForwardClient(
                config: config, logger: logger, group: group, baseBackoff: forwardRetry.baseInterval, maxBackoff: forwardRetry.maxInterval,
                maxConnectAttempts: forwardRetry.maxConnectAttempts)
        } else {
            forward = nil
        }
    }

    /// Runs `body`, then closes the gRPC or forward connection (if any).
    func run(_ body: @Sendable @escaping () async -> Void) async {
        await body()
        await grpc?.close()
        await forward?.close()
    }

    /// Writes one Forward protocol frame; true once it is written (Envoy's Fluentd logger asks for no acks).
    /// False for the other destinations.
    func send(forwardFrame frame: [UInt8]) async -> Bool {
        guard let forward else { return false }
        do {
            try await forward.send(frame, chunk: nil)
            return true
        } catch {
            logger.debug("telemetry export failed", metadata: ["destination": "\(destination)", "error": "\(error)"])
            return false
        }
    }

    /// True when the collector accepted the spans (2xx / gRPC OK).
    func send(_ traces: TracesData) async -> Bool {
        if case .zipkin(let host, let port) = destination {
            return await post(host: host, port: port, path: "/api/v2/spans", contentType: "application/json", body: [ZipkinV2.encodeJSON(traces)])
        }
        return await send(encoded: [OTLPProtobuf.encode(traces)], .traces)
    }

    /// An OTLP export request of `signal` already encoded (`ExportTraceServiceRequest` or
    /// `ExportLogsServiceRequest`), given as consecutive parts written one after the other into the request's
    /// body; true when the collector accepted it, false for Zipkin and Fluentd, which take other forms.
    func send(encoded parts: [[UInt8]], _ signal: Signal) async -> Bool {
        switch destination {
        case .zipkin, .fluentForward: return false
        case .otlpHTTP(let host, let port, let path):
            return await post(host: host, port: port, path: path, contentType: "application/x-protobuf", body: parts)
        case .otlpGRPC:
            return await unary(OTLPGRPCNames.exportPath(signal), parts)
        }
    }

    /// An OTLP export request of one resource and one empty scope (`OTLPProtobuf.requestPrefix`) whose items are
    /// `framed`, spans or log records each already in wire form behind its field tag and length.
    func send(framed items: [UInt8], resource: Resource, _ signal: Signal) async -> Bool {
        let prefix = OTLPProtobuf.requestPrefix(resource: resource, framedItemsByteCount: items.count)
        return await send(encoded: [prefix, items], signal)
    }

    private func unary(_ path: String, _ parts: [[UInt8]]) async -> Bool {
        guard let grpc else { return false }
        do throws(GRPCStatus) {
            // Wait (up to the timeout) for a collector that comes up late or restarts instead of failing at once.
            _ = try await grpc.unary(path: path, messageParts: parts, timeout: .seconds(5), waitForReady: true)
            return true
        } catch {
            logger.debug("telemetry export failed", metadata: ["destination": "\(destination)", "error": "\(error)"])
            return false
        }
    }

    /// One HTTP/1.1 POST on a fresh connection, its body the parts one after the other; true on a 2xx answer.
    private func post(host: String, port: Int, path: String, contentType: String, body parts: [[UInt8]]) async -> Bool {
        do {
            let loop = group.next()
            let done = loop.makePromise(of: Int.self)
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCatcher(promise: done))
                    }
                }
                .connect(host: host, port: port).get()
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
            head.headers.add(name: "host", value: "\(host):\(port)")
            head.headers.add(name: "content-type", value: contentType)
            let length = parts.reduce(0) { $0 + $1.count }
            head.headers.add(name: "content-length", value: "\(length)")
            head.headers.add(name: "connection", value: "close")
            var buffer = channel.allocator.buffer(capacity: length)
            for part in parts { buffer.writeBytes(part) }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let timeout = loop.scheduleTask(in: .seconds(5)) { done.fail(ChannelError.connectTimeout(.seconds(5))) }
            let status = try await done.futureResult.get()
            timeout.cancel()
            channel.close(promise: nil)
            return (200..<300).contains(status)
        } catch {
            logger.debug("telemetry export failed", metadata: ["destination": "\(destination)", "error": "\(error)"])
            return false
        }
    }
}

/// Completes a promise with the response status once the response has been read.
private final class StatusCatcher: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Int>
    var status = 0

    init(promise: EventLoopPromise<Int>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = Int(h.status.code)
        case .body: break
        case .end: promise.succeed(status)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.fail(ChannelError.eof) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { promise.fail(error) }
}

@available(*, unavailable)
extension StatusCatcher: Sendable {}

/// Collects finished items (spans, access-log records) and hands them to `send` in batches, a second after
/// the last flush or as soon as `batchSize` items wait (as the OpenTelemetry SDKs' batch processor does, so a
/// busy proxy holds about one batch, not a second's worth), without ever blocking or failing a request:
/// when the collector is slow or down, items beyond `maxQueued` are dropped and counted, and a failed batch
/// is dropped and counted. Once a backlog of several batches is over (a flush finds the queue short again),
/// freed memory goes back to the system (`HeapTrim`), so a burst does not leave the proxy at its high-water
/// mark.
///
/// Sizes are counted in items, or in bytes for a Fluentd buffer sized in bytes (`TelemetryRecords.weighsBytes`):
/// a batch is full once its items weigh `batchSize`, and the queue holds at most `maxQueued`. What the items
/// are and how a batch is cut from them is the `Queue`'s: values (`TelemetryItems`), or records written in
/// wire form back to back into one buffer (`TelemetryRecords`).
final class TelemetryBatcher<Queue: TelemetryQueue>: @unchecked Sendable {
    let maxQueued: Int
    let batchSize: Int
    /// The longest an item waits in the queue before a flush (a second, as Envoy flushes its tracers).
    let interval: TimeAmount
    let transport: TelemetryTransport
    private let send: @Sendable (Queue.Batch) async -> Bool
    private let lock = NIOLock()
    private var queue: Queue
    /// What `queue` weighs.
    private var queuedWeight = 0
    /// A flush met a backlog of several batches; the first quiet flush after it trims the heap.
    private var backlogSeen = false
    private var sentCount = 0
    private var droppedCount = 0
    /// The run loop waiting for a full batch or its timer (`nap`), and that timer.
    private var waiter: CheckedContinuation<Void, Never>?
    private var timer: Scheduled<Void>?
    /// False after a failed export: the rest of the queue then waits the whole interval.
    private var wakeWhenFull = true
    private var stopping = false

    init(
        _ queue: Queue, transport: TelemetryTransport, maxQueued: Int = 10_000, batchSize: Int = 512, interval: TimeAmount = .seconds(1),
        send: @escaping @Sendable (Queue.Batch) async -> Bool
    ) {
        self.queue = queue
        self.transport = transport
        self.interval = interval
        self.maxQueued = maxQueued
        self.batchSize = batchSize
        self.send = send
    }

    /// Items delivered, and dropped (queue full or export failed).
    var sent: Int { lock.withLock { sentCount } }
    var dropped: Int { lock.withLock { droppedCount } }

    /// Queues one item: `append` puts it into the queue, under the lock, and returns its weight, or returns nil
    /// and leaves the queue as it was when the item weighs more than `room`.
    @inline(__always)
    func add(_ append: (inout Queue, _ room: Int) -> Int?) {
        // The common case returns a `Bool` from the lock: returning the (rarely taken) waiter as an optional
        // cost ~350 instructions per item in generic copies and destroys.
        let reachedBatch = lock.withLock { () -> Bool in
            guard let weight = append(&queue, maxQueued - queuedWeight) else {
                droppedCount += 1
                return false
            }
            queuedWeight += weight
            // Wakes the run loop as the queue reaches a full batch (it is already awake, or the failed-export
            // wait applies, past that).
            return queuedWeight >= batchSize && queuedWeight - weight < batchSize && wakeWhenFull
        }
        // A waiter that went to sleep in between saw the full batch and did not wait; one that is gone was woken.
        if reachedBatch, let waiter = lock.withLock({ takeWaiter() }) { waiter.resume() }
    }

    /// Runs until cancelled, then sends what is left once.
    func run() async {
        await transport.run { [self] in
            while !Task.isCancelled {
                await nap(upTo: interval)
                await flush()
            }
            await flush()
        }
    }

    /// Returns after `limit`, or sooner when a batch is full (unless the last export failed) or the task is
    /// cancelled.
    private func nap(upTo limit: TimeAmount) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = lock.withLock { () -> Bool in
                    if stopping || (wakeWhenFull && queuedWeight >= batchSize) { return true }
                    waiter = c
                    timer = transport.group.next().scheduleTask(in: limit) { self.wake() }
                    return false
                }
                if ready { c.resume() }
            }
        } onCancel: {
            lock.withLock { stopping = true }
            wake()
        }
    }

    private func wake() {
        lock.withLock { takeWaiter() }?.resume()
    }

    /// The waiting run loop, if any, with its timer cancelled. Called with `lock` held.
    private func takeWaiter() -> CheckedContinuation<Void, Never>? {
        guard let w = waiter else { return nil }
        waiter = nil
        timer?.cancel()
        timer = nil
        return w
    }

    /// Sends the items queued when it begins, in batches. Items that arrive while those are sent wait for the
    /// next flush (a full batch or the timer), as the OpenTelemetry SDKs' batch processor makes them wait: a
    /// flush that also took them would, under steady traffic, never end, and would send back-to-back exports
    /// of the few items each export's round trip let in (one gRPC call per two or three spans).
    func flush() async {
        let (queued, weight) = lock.withLock { (queue.count, queuedWeight) }
        let backlog = weight >= 4 * batchSize
        var remaining = queued
        while remaining > 0 {
            let (batch, count) = lock.withLock { () -> (Queue.Batch, Int) in
                let (batch, count, weight) = queue.take(maxCount: remaining, maxWeight: batchSize)
                queuedWeight -= weight
                return (batch, count)
            }
            if count == 0 { break }
            remaining -= count
            let ok = await send(batch)
            lock.withLock {
                if ok { sentCount += count } else { droppedCount += count }
                wakeWhenFull = ok
            }
            if !ok { return }
        }
        let trim = lock.withLock { () -> Bool in
            defer { backlogSeen = backlog }
            return backlogSeen && !backlog
        }
        if trim { HeapTrim.now() }
    }
}

/// What a `TelemetryBatcher` holds, and how a batch is cut from it.
protocol TelemetryQueue: SendableMetatype {
    associatedtype Batch: Sendable
    /// Items queued.
    var count: Int { get }
    /// Removes the first items, at most `maxCount`, up to the one that brings their weight to `maxWeight` (an
    /// item heavier than that goes alone); returns them, how many they are and what they weigh. A drained
    /// queue that had grown past four default batches gives its storage back.
    mutating func take(maxCount: Int, maxWeight: Int) -> (batch: Batch, count: Int, weight: Int)
}

/// Items kept as values (Zipkin's `Span`s), each weighing 1.
struct TelemetryItems<Item: Sendable>: TelemetryQueue {
    private var items: [Item] = []

    var count: Int { items.count }

    mutating func take(maxCount: Int, maxWeight: Int) -> (batch: [Item], count: Int, weight: Int) {
        let n = min(items.count, maxWeight, maxCount)
        let batch = Array(items.prefix(n))
        items.removeFirst(n)
        // `removeFirst` keeps the capacity.
        if items.isEmpty && items.capacity > 4 * 512 { items = [] }
        return (batch, n, n)
    }

    /// Appends `item` if there is room for one more; returns its weight.
    fileprivate mutating func append(_ item: Item, room: Int) -> Int? {
        guard room >= 1 else { return nil }
        items.append(item)
        return 1
    }
}

extension TelemetryBatcher {
    /// Queues `item` (dropped and counted when the queue is full).
    func add<Item>(_ item: Item) where Queue == TelemetryItems<Item> {
        add { queue, room in queue.append(item, room: room) }
    }
}

/// Records written in wire form (OTLP spans and log records behind their field tag and length, Fluentd
/// entries) back to back into one buffer, with where each ends: a record costs its bytes and no allocation
/// of its own, and a batch is one copy of a stretch of the buffer, which the export takes as it is. Each
/// record weighs 1, or its length in bytes (`weighsBytes`).
final class TelemetryRecords: TelemetryQueue {
    /// A run of whole records, and how many.
    struct Batch: Sendable {
        var bytes: [UInt8]
        var count: Int
    }

    private var buffer: LineBuffer
    private let initialCapacity: Int
    /// The offset in `buffer` where each queued record ends.
    private var ends: [Int] = []
    let weighsBytes: Bool

    init(weighsBytes: Bool = false, capacity: Int = 64 * 1024) {
        self.weighsBytes = weighsBytes
        initialCapacity = capacity
        buffer = LineBuffer(capacity: capacity)
    }

    var count: Int { ends.count }

    /// Writes one record with `write` unless it weighs more than `room` (then the bytes it wrote are taken
    /// back); returns its weight.
    @inline(__always)
    func append(room: Int, _ write: (inout LineBuffer) -> Void) -> Int? {
        let start = buffer.count
        write(&buffer)
        let weight = weighsBytes ? buffer.count - start : 1
        guard weight <= room else {
            buffer.truncate(to: start)
            return nil
        }
        ends.append(buffer.count)
        return weight
    }

    func take(maxCount: Int, maxWeight: Int) -> (batch: Batch, count: Int, weight: Int) {
        var n = 0
        var weight = 0
        var end = 0
        while n < min(ends.count, maxCount) && weight < maxWeight {
            weight += weighsBytes ? ends[n] - end : 1
            end = ends[n]
            n += 1
        }
        let bytes = Array(UnsafeRawBufferPointer(rebasing: buffer.bytes[..<end]))
        if n == ends.count {
            // A drained backlog gives its storage back (the buffer keeps the capacity it grew to): past 1 MiB,
            // four default batches of spans of ~500 bytes, as `TelemetryItems` gives back past four batches.
            if buffer.capacity > 1 << 20 {
                buffer = LineBuffer(capacity: initialCapacity)
                ends = []
            } else {
                buffer.removeAll()
                ends.removeAll(keepingCapacity: true)
            }
        } else {
            buffer.removeFirst(end)
            ends.removeFirst(n)
            for i in ends.indices { ends[i] -= end }
        }
        return (Batch(bytes: bytes, count: n), n, weight)
    }
}

extension TelemetryBatcher where Queue == TelemetryRecords {
    /// Queues the record `write` writes (under the batcher's lock; dropped and counted when the queue is full).
    @inline(__always)
    func add(writing write: (inout LineBuffer) -> Void) {
        add { queue, room in queue.append(room: room, write) }
    }

    /// Queues `bytes` as one record.
    func add(_ bytes: UnsafeRawBufferPointer) {
        add(writing: { $0.append(bytes) })
    }
}
