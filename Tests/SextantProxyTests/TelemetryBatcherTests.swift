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

    func batcher(_ sink: Sink, maxQueued: Int = 10_000, interval: TimeAmount = .seconds(1)) -> TelemetryBatcher<Int> {
        let transport = TelemetryTransport(
            destination: .zipkin(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        return TelemetryBatcher(transport: transport, maxQueued: maxQueued, batchSize: 512, interval: interval) { sink.send($0) }
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
        let b = TelemetryBatcher<Int>(transport: transport, batchSize: 512) { [late] batch in
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
        var batcher: TelemetryBatcher<Int>?
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
