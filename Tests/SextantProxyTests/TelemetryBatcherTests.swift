import Logging
import NIOPosix
import Synchronization
import Testing

@testable import SextantProxy

/// The proxy's telemetry batcher: batches in order, a bounded queue that drops and counts, a failed batch
/// dropped and counted while the rest waits for the next flush, and a backlog drained completely (after
/// which it trims the heap).
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

    func batcher(_ sink: Sink, maxQueued: Int = 10_000) -> TelemetryBatcher<Int> {
        let transport = TelemetryTransport(
            destination: .zipkin(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        return TelemetryBatcher(transport: transport, maxQueued: maxQueued, batchSize: 512) { sink.send($0) }
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
