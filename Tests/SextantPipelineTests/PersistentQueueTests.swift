import Logging
import SextantModel
import SextantTesting
import Synchronization
import Testing

@testable import SextantPipeline

/// The exporter helper over a `file_storage` persistent queue: what was accepted survives a restart,
/// `when_full` behaves as configured, and the counters tell what happened.
@Suite struct PersistentQueueTests {
    let storageID = ComponentID(type: "file_storage", name: "q")

    func storage(_ dir: ScratchDirectory, maxSize: Int = 1 << 30) -> FileStorage {
        var s = FileStorage.Settings(directory: dir.path)
        s.maxSize = maxSize
        s.fsync = false
        return FileStorage(s, logger: Logger(label: "test"))
    }

    func helper(
        _ storage: FileStorage, _ sender: ScriptedSender, telemetry: SelfTelemetry,
        configure: (inout ExporterHelperSettings) -> Void = { _ in }
    ) -> ExporterHelper<ManualClock> {
        var s = ExporterHelperSettings()
        s.retry.randomizationFactor = 0
        s.queue.numConsumers = 1
        s.queue.storage = storageID
        s.timeout = .seconds(1000)
        configure(&s)
        let settings = ComponentSettings(
            id: ComponentID(type: "x", name: "y"), kind: .exporter, logger: Logger(label: "test"), telemetry: telemetry,
            extensions: [storageID: storage])
        return ExporterHelper(s, component: settings, clock: ManualClock()) { try await sender.send($0) }
    }

    /// Shuts the helper down as the collector does when the shutdown timeout passes: cancelled.
    func shutdownAtDeadline(_ h: ExporterHelper<ManualClock>) async {
        let t = Task { await h.shutdown() }
        try? await Task.sleep(for: .milliseconds(20))
        t.cancel()
        await t.value
    }

    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<5000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    @Test func acceptedBatchesAreDeliveredAfterARestart() async throws {
        let dir = ScratchDirectory("sextant-pq")
        defer { dir.remove() }
        let t1 = SelfTelemetry()
        let down = ScriptedSender(Array(repeating: .hang, count: 100))
        let s1 = storage(dir)
        let h1 = helper(s1, down, telemetry: t1)
        try await s1.start()
        h1.start()
        for i in 0..<20 { try await h1.consume(TestData.traces(3, firstSpan: UInt64(i * 3 + 1))) }
        #expect(await eventually { down.attempts == 1 })  // the first batch is in flight, hanging
        await shutdownAtDeadline(h1)
        await s1.shutdown()
        #expect(t1.value("sextant_exporter_send_failed_items_total", labels: [("exporter", "x/y"), ("signal", "traces")]) == 0)

        let t2 = SelfTelemetry()
        let up = ScriptedSender([])
        let s2 = storage(dir)
        let h2 = helper(s2, up, telemetry: t2)
        let report = try await s2.queue(
            for: ComponentID(type: "x", name: "y"), policy: .block, blockTimeout: .seconds(1), telemetry: t2,
            logger: Logger(label: "test")
        ).open()
        #expect(report.pendingRecords == 20)
        #expect(report.redeliveredRecords == 1)  // the batch that was in flight
        h2.start()
        #expect(await eventually { up.delivered == 60 })
        #expect(t2.value("sextant_exporter_queue_redelivered_items_total", labels: [("exporter", "x/y"), ("signal", "traces")]) == 3)
        await h2.shutdown()
        await s2.shutdown()

        // Everything was acknowledged: a third start finds nothing to send.
        let s3 = storage(dir)
        let q3 = s3.queue(for: ComponentID(type: "x", name: "y"), policy: .block, blockTimeout: .seconds(1), telemetry: SelfTelemetry(), logger: Logger(label: "t"))
        let report3 = try await q3.open()
        #expect(report3.pendingRecords == 0)
        await s3.shutdown()
    }

    @Test func blockRefusesWithOverloadOnceTheTimeoutPasses() async throws {
        let dir = ScratchDirectory("sextant-pq")
        defer { dir.remove() }
        let telemetry = SelfTelemetry()
        let down = ScriptedSender(Array(repeating: .hang, count: 100))
        let s = storage(dir, maxSize: 64 << 10)
        let h = helper(s, down, telemetry: telemetry) { $0.queue.blockTimeout = .milliseconds(50) }
        try await s.start()
        h.start()
        var accepted = 0
        var refused: ConsumerError?
        for i in 0..<100 {
            do {
                try await h.consume(TestData.traces(50, firstSpan: UInt64(i * 50 + 1)))
                accepted += 1
            } catch {
                refused = error as? ConsumerError
                break
            }
        }
        #expect(refused?.kind == .overloaded)
        #expect(accepted > 1 && accepted < 100)
        #expect(telemetry.value("sextant_exporter_enqueue_failed_items_total", labels: [("exporter", "x/y"), ("signal", "traces")]) == 50)
        let used = telemetry.value("sextant_exporter_queue_size", labels: [("exporter", "x/y")]) ?? 0
        #expect(used > 0 && used <= 64 << 10)
        await shutdownAtDeadline(h)
        await s.shutdown()
    }

    @Test func dropOldestMakesRoomAndCountsTheDroppedItems() async throws {
        let dir = ScratchDirectory("sextant-pq")
        defer { dir.remove() }
        let telemetry = SelfTelemetry()
        let down = ScriptedSender(Array(repeating: .hang, count: 100))
        let s = storage(dir, maxSize: 64 << 10)
        let h = helper(s, down, telemetry: telemetry) { $0.queue.whenFull = .dropOldest }
        try await s.start()
        h.start()
        for i in 0..<100 { try await h.consume(TestData.traces(50, firstSpan: UInt64(i * 50 + 1))) }
        let dropped = telemetry.value("sextant_exporter_queue_dropped_items_total", labels: [("exporter", "x/y"), ("signal", "traces")]) ?? 0
        #expect(dropped > 0 && dropped % 50 == 0)
        await shutdownAtDeadline(h)
        await s.shutdown()

        // What is left is the newest batches (plus the one in flight), in order.
        let up = ScriptedSender([])
        let s2 = storage(dir, maxSize: 64 << 10)
        let t2 = SelfTelemetry()
        let h2 = helper(s2, up, telemetry: t2)
        try await s2.start()
        h2.start()
        let expected = 100 * 50 - Int(dropped)
        #expect(await eventually { up.delivered == expected }, "delivered \(up.delivered), dropped \(dropped)")
        await h2.shutdown()
        await s2.shutdown()
    }

    @Test func shutdownDoesNotWaitForARetryBackoff() async throws {
        let dir = ScratchDirectory("sextant-pq")
        defer { dir.remove() }
        let telemetry = SelfTelemetry()
        let failing = ScriptedSender(Array(repeating: .fail(.retryable("503")), count: 100))
        let s = storage(dir)
        let h = helper(s, failing, telemetry: telemetry)  // a manual clock that nobody advances
        try await s.start()
        h.start()
        try await h.consume(TestData.traces(2, firstSpan: 1))
        #expect(await eventually { failing.attempts == 1 })
        await h.shutdown()  // returns without cancellation: the backoff is interrupted
        await s.shutdown()
        #expect(telemetry.value("sextant_exporter_send_failed_items_total", labels: [("exporter", "x/y"), ("signal", "traces")]) == 0)
        let reopened = try WriteAheadLog(directory: dir.path + "/" + FileStorage.subdirectory(for: ComponentID(type: "x", name: "y")))
        #expect(reopened.report.pendingRecords == 1)
        #expect(reopened.report.redeliveredRecords == 1)
        try reopened.close()
    }

    @Test func aSecondProcessCannotOpenAQueueInUse() async throws {
        let dir = ScratchDirectory("sextant-pq")
        defer { dir.remove() }
        let a = try WriteAheadLog(directory: dir.path + "/q")
        #expect(throws: StorageError.self) { try WriteAheadLog(directory: dir.path + "/q") }
        try a.close()
        let b = try WriteAheadLog(directory: dir.path + "/q")
        try b.close()
    }
}
