import Logging
import SextantModel
import SextantPipeline
import SextantTesting
import Synchronization
import Testing

/// A `send` function whose outcomes are scripted per attempt.
final class ScriptedSender: Sendable {
    enum Outcome: Sendable {
        case succeed
        case fail(ConsumerError)
        case hang
    }

    private let state = Mutex<(script: [Outcome], attempts: Int, delivered: Int)>(([], 0, 0))

    init(_ script: [Outcome]) { state.withLock { $0.script = script } }

    var attempts: Int { state.withLock { $0.attempts } }
    var delivered: Int { state.withLock { $0.delivered } }

    func send(_ t: Telemetry) async throws {
        let outcome = state.withLock { s -> Outcome in
            s.attempts += 1
            return s.script.isEmpty ? .succeed : s.script.removeFirst()
        }
        switch outcome {
        case .succeed: state.withLock { $0.delivered += t.itemCount }
        case .fail(let e): throw e
        case .hang:
            while !Task.isCancelled { try await Task.sleep(for: .milliseconds(1)) }
            throw CancellationError()
        }
    }
}

@Suite struct ExporterHelperTests {
    let telemetry = SelfTelemetry()

    func helper(_ sender: ScriptedSender, _ clock: ManualClock, configure: (inout ExporterHelperSettings) -> Void = { _ in })
        -> ExporterHelper<ManualClock>
    {
        var s = ExporterHelperSettings()
        s.retry.randomizationFactor = 0
        s.queue.numConsumers = 1
        configure(&s)
        let settings = ComponentSettings(
            id: ComponentID(type: "x"), kind: .exporter, logger: Logger(label: "test"), telemetry: telemetry)
        return ExporterHelper(s, component: settings, clock: clock) { try await sender.send($0) }
    }

    func counter(_ name: String) -> Int64 {
        telemetry.value(name, labels: [("exporter", "x"), ("signal", "traces")]) ?? -1
    }

    /// Polls (in real time, bounded) until `condition` holds.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<5000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    @Test func retriesWithExponentialBackoffThenSucceeds() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender([.fail(.retryable("503")), .fail(.retryable("503"))])
        let h = helper(sender, clock)
        h.start()
        try await h.consume(TestData.traces(3))
        #expect(await eventually { counter("sextant_exporter_retries_total") == 1 })
        clock.advance(by: .seconds(5))  // initial_interval
        #expect(await eventually { counter("sextant_exporter_retries_total") == 2 })
        #expect(sender.attempts == 2)
        clock.advance(by: .milliseconds(7499))  // 5 s × 1.5 = 7.5 s: not yet
        try await Task.sleep(for: .milliseconds(20))
        #expect(sender.attempts == 2)
        clock.advance(by: .milliseconds(1))
        #expect(await eventually { counter("sextant_exporter_sent_items_total") == 3 })
        #expect(sender.delivered == 3)
        #expect(counter("sextant_exporter_send_failed_items_total") == 0)
        await h.shutdown()
    }

    @Test func permanentErrorsAreDroppedAndCountedWithoutRetry() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender([.fail(.permanent("400 mapping error"))])
        let h = helper(sender, clock)
        h.start()
        try await h.consume(TestData.traces(4))
        #expect(await eventually { counter("sextant_exporter_send_failed_items_total") == 4 })
        #expect(sender.attempts == 1)
        #expect(counter("sextant_exporter_retries_total") == 0)
        await h.shutdown()
    }

    @Test func givesUpAfterMaxElapsedTime() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender(Array(repeating: .fail(.retryable("down")), count: 10))
        let h = helper(sender, clock) { $0.retry.maxElapsedTime = .seconds(12) }
        h.start()
        try await h.consume(TestData.traces(2))
        #expect(await eventually { counter("sextant_exporter_retries_total") == 1 })
        clock.advance(by: .seconds(5))
        // Second failure at t=5 s: the next wait (7.5 s) would end past 12 s, so it gives up.
        #expect(await eventually { counter("sextant_exporter_send_failed_items_total") == 2 })
        #expect(sender.attempts == 2)
        await h.shutdown()
    }

    @Test func fullQueueRefusesWithOverload() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender([.hang])
        let h = helper(sender, clock) {
            $0.queue.queueSize = 1
            $0.timeout = .seconds(100)
        }
        h.start()
        try await h.consume(TestData.traces(1))  // taken by the worker, which hangs
        #expect(await eventually { sender.attempts == 1 })
        try await h.consume(TestData.traces(1))  // fills the queue
        await #expect {
            try await h.consume(TestData.traces(5))
        } throws: { error in
            (error as? ConsumerError)?.kind == .overloaded
        }
        #expect(counter("sextant_exporter_enqueue_failed_items_total") == 5)
        #expect(telemetry.value("sextant_exporter_queue_size", labels: [("exporter", "x")]) == 1)
        clock.advance(by: .seconds(100))  // the hung attempt times out and is retried
        #expect(await eventually { counter("sextant_exporter_retries_total") == 1 })
        clock.advance(by: .seconds(5))
        #expect(await eventually { sender.delivered == 2 })
        await h.shutdown()
    }

    @Test func attemptTimeoutIsRetryable() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender([.hang])
        let h = helper(sender, clock) {
            $0.queue.enabled = false
            $0.retry.enabled = false
            $0.timeout = .seconds(2)
        }
        let result = Task { () -> ConsumerError? in
            do {
                try await h.consume(TestData.traces(1))
                return nil
            } catch {
                return error as? ConsumerError
            }
        }
        #expect(await eventually { sender.attempts == 1 && clock.sleeperCount == 1 })
        clock.advance(by: .seconds(2))
        let error = await result.value
        #expect(error?.message.contains("timed out after 2s") == true)
        #expect(counter("sextant_exporter_send_failed_items_total") == 1)
    }

    @Test func shutdownDrainsTheQueue() async throws {
        let clock = ManualClock()
        let sender = ScriptedSender([])
        let h = helper(sender, clock) { $0.queue.numConsumers = 2 }
        h.start()
        for _ in 0..<50 { try await h.consume(TestData.traces(2)) }
        await h.shutdown()
        #expect(sender.delivered == 100)
        #expect(counter("sextant_exporter_sent_items_total") == 100)
    }
}
