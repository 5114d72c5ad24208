import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SextantProxy

/// The proxy's telemetry batcher: batches in order, a bounded queue that drops and counts, a failed batch
/// dropped and counted while the rest waits for the next flush, and a backlog drained completely (after
/// which it trims the heap); a flush takes only what was queued when it began.
@Suite struct TelemetryBatcherTests {
    final class Sink: Sendable {
        let batches = Mutex<[[Int]]>([])
        let failNext = Atomic<Bool>(false)

        func send(_ batch: [Int]) -> Bool {
            if failNext.exchange(false, ordering: .relaxed) { return false }
            batches.withLock { $0.append(batch) }
            return true
        }
    }

    func batcher(_ sink: Sink, maxQueued: Int = 10_000, interval: TimeAmount = .seconds(1)) -> TelemetryBatcher<TelemetryItems<Int>> {
        let transport = TelemetryTransport(
            destination: .zipkin(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        return TelemetryBatcher(TelemetryItems(), transport: transport, maxQueued: maxQueued, batchSize: 512, interval: interval) {
            sink.send($0)
        }
    }

    @Test func aBacklogIsSentInOrderInBatches() async {
        let sink = Sink()
        let b = batcher(sink)
        for i in 0..<5000 { b.add(i) }
        await b.flush()
        let batches = sink.batches.withLock { $0 }
        #expect(batches.map(\.count) == Array(repeating: 512, count: 9) + [392])
        #expect(batches.flatMap { $0 } == Array(0..<5000))
        #expect(b.sent == 5000 && b.dropped == 0)
        // The queue works after a drained backlog gave its storage back.
        b.add(42)
        await b.flush()
        #expect(sink.batches.withLock { $0.last } == [42])
    }

    /// Items that arrive while a flush is sending (spans finished during the export's round trip) wait for the
    /// next flush. A flush that took them too never ended under steady traffic and sent one export per
    /// round trip, a few spans each.
    @Test func aFlushSendsWhatWasQueuedWhenItBegan() async {
        let sink = Sink()
        let transport = TelemetryTransport(
            destination: .zipkin(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let late = LateBatcher()
        let b = TelemetryBatcher(TelemetryItems<Int>(), transport: transport, batchSize: 512) { [late] batch in
            // Each export lets three new items in before it completes.
            if let b = late.batcher, late.arrived < 6 {
                for _ in 0..<3 {
                    b.add(10_000 + late.arrived)
                    late.arrived += 1
                }
            }
            return sink.send(batch)
        }
        late.batcher = b
        for i in 0..<600 { b.add(i) }
        await b.flush()
        #expect(sink.batches.withLock { $0.map(\.count) } == [512, 88])
        #expect(b.sent == 600)
        await b.flush()
        #expect(sink.batches.withLock { $0.map(\.count) } == [512, 88, 6])
        #expect(sink.batches.withLock { $0.last } == Array(10_000..<10_006))
        late.batcher = nil
    }

    /// The batcher a test's send closure adds to (set after the batcher is made); touched by one task at a time.
    final class LateBatcher: @unchecked Sendable {
        var batcher: TelemetryBatcher<TelemetryItems<Int>>?
        var arrived = 0
    }

    @Test func theQueueIsBoundedAndAFailedBatchIsDropped() async {
        let sink = Sink()
        let b = batcher(sink, maxQueued: 1000)
        for i in 0..<1500 { b.add(i) }
        #expect(b.dropped == 500)
        sink.failNext.store(true, ordering: .relaxed)
        await b.flush()  // the first batch fails: dropped, the rest stays queued
        #expect(b.dropped == 1012 && b.sent == 0)
        await b.flush()
        #expect(b.sent == 488)
        #expect(sink.batches.withLock { $0.flatMap { $0 } } == Array(512..<1000))
    }
}

/// Records queued in wire form back to back (`TelemetryRecords`: OTLP spans and log records, Fluentd entries)
/// come out whole, in order and in the batches their count or bytes make; a record that does not fit is
/// taken back without a trace in the buffer; a partly sent queue keeps the rest intact.
@Suite struct TelemetryRecordsTests {
    /// Record `i`: its number in decimal, `pad` dots and a newline, so records differ in length.
    static func record(_ i: Int, pad: Int = 0) -> [UInt8] { Array("\(i)".utf8) + Array(repeating: UInt8(ascii: "."), count: pad) + [10] }

    /// The records of a batch, cut at the newlines.
    static func records(_ batch: TelemetryRecords.Batch) -> [Int] {
        let numbers = batch.bytes.split(separator: 10).map { Int(String(decoding: $0.prefix { $0 != UInt8(ascii: ".") }, as: UTF8.self))! }
        #expect(numbers.count == batch.count)
        return numbers
    }

    /// A batcher of records whose batches go to `sink` as record numbers; its first send fails if the sink's
    /// `failNext` is set.
    func batcher(
        weighsBytes: Bool = false, maxQueued: Int = 10_000, batchSize: Int = 512, _ sink: TelemetryBatcherTests.Sink
    ) -> TelemetryBatcher<TelemetryRecords> {
        let transport = TelemetryTransport(
            destination: .otlpGRPC(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let queue = TelemetryRecords(weighsBytes: weighsBytes, capacity: 64)
        return TelemetryBatcher(queue, transport: transport, maxQueued: maxQueued, batchSize: batchSize) { batch in
            sink.send(Self.records(batch))
        }
    }

    @Test func aBacklogOfRecordsComesOutWholeInOrder() async {
        let sink = TelemetryBatcherTests.Sink()
        let b = batcher(sink)
        // The buffer starts at 64 bytes and grows past 1 MiB: 6,000 records of ~205 bytes.
        for i in 0..<6000 { Self.record(i, pad: 200).withUnsafeBytes { b.add($0) } }
        await b.flush()
        let batches = sink.batches.withLock { $0 }
        #expect(batches.map(\.count) == Array(repeating: 512, count: 11) + [368])
        #expect(batches.flatMap { $0 } == Array(0..<6000))
        // After the drained backlog gave its buffer back, records still come out whole.
        b.add { buffer in Self.record(7).withUnsafeBytes { buffer.append($0) } }
        await b.flush()
        #expect(sink.batches.withLock { $0.last } == [7])
        #expect(b.sent == 6001 && b.dropped == 0)
    }

    @Test func aFailedBatchIsDroppedAndTheRestStaysWhole() async {
        let sink = TelemetryBatcherTests.Sink()
        sink.failNext.store(true, ordering: .relaxed)
        let b = batcher(maxQueued: 1000, sink)
        for i in 0..<1500 { Self.record(i).withUnsafeBytes { b.add($0) } }
        #expect(b.dropped == 500)
        await b.flush()  // the first batch fails: dropped, the rest stays queued, moved to the buffer's front
        #expect(b.dropped == 1012 && b.sent == 0)
        for i in 2000..<2003 { Self.record(i).withUnsafeBytes { b.add($0) } }
        await b.flush()
        await b.flush()
        #expect(sink.batches.withLock { $0.flatMap { $0 } } == Array(512..<1000) + Array(2000..<2003))
        #expect(b.sent == 491)
    }

    /// Weighed in bytes (a Fluentd buffer): batches end with the record that reaches the size, the queue holds
    /// at most `maxQueued` bytes, and a record that would pass it is taken back whole.
    @Test func recordsWeighedInBytes() async {
        let sink = TelemetryBatcherTests.Sink()
        let b = batcher(weighsBytes: true, maxQueued: 40, batchSize: 10, sink)
        for i in 100..<110 { Self.record(i).withUnsafeBytes { b.add($0) } }  // 4 bytes each: ten of them fit
        Self.record(1000).withUnsafeBytes { b.add($0) }  // 5 bytes: dropped
        Self.record(5).withUnsafeBytes { b.add($0) }  // 2 bytes: dropped, 40 bytes are queued
        #expect(b.dropped == 2)
        await b.flush()
        #expect(sink.batches.withLock { $0 } == [[100, 101, 102], [103, 104, 105], [106, 107, 108], [109]])
        #expect(b.sent == 10)
    }
}

/// The batcher's run loop sends as soon as a batch is full, not only each second, and after a failed
/// export waits the interval instead of retrying the backlog at once.
@Suite struct TelemetryBatcherTimingTests {
    @Test func aFullBatchIsSentBeforeTheInterval() async throws {
        let sink = TelemetryBatcherTests.Sink()
        // An interval far beyond the test's waits: whatever is sent was not sent by the timer.
        let b = TelemetryBatcherTests().batcher(sink, interval: .seconds(120))
        let runner = Task { await b.run() }
        try await Task.sleep(for: .milliseconds(50))  // the loop is napping now
        let start = ContinuousClock.now
        for i in 0..<512 { b.add(i) }
        while sink.batches.withLock({ $0.isEmpty }) && ContinuousClock.now - start < .seconds(20) {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(sink.batches.withLock { $0.map(\.count) } == [512])
        for i in 512..<1000 { b.add(i) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(sink.batches.withLock { $0.count } == 1)
        // The short rest waits for the timer, or, here, for cancellation, which ends the nap and sends it.
        runner.cancel()
        await runner.value
        #expect(sink.batches.withLock { $0.map(\.count) } == [512, 488])
        #expect(ContinuousClock.now - start < .seconds(60), "cancellation does not wait for the timer")
    }

    @Test func afterAFailedExportTheBacklogWaitsTheInterval() async throws {
        let sink = TelemetryBatcherTests.Sink()
        let b = TelemetryBatcherTests().batcher(sink)
        let runner = Task { await b.run() }
        try await Task.sleep(for: .milliseconds(50))
        sink.failNext.store(true, ordering: .relaxed)
        let start = ContinuousClock.now
        for i in 0..<1100 { b.add(i) }
        while b.dropped == 0 && ContinuousClock.now - start < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(b.dropped == 512)
        // The 588 left are not sent at once although they make a full batch: the next tick sends them.
        try await Task.sleep(for: .milliseconds(300))
        #expect(sink.batches.withLock { $0.isEmpty })
        while b.sent < 588 && ContinuousClock.now - start < .seconds(5) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(sink.batches.withLock { $0.flatMap { $0 } } == Array(512..<1100))
        runner.cancel()
        await runner.value
    }
}
