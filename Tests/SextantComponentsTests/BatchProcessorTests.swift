import Logging
import SextantModel
import SextantPipeline
import SextantProcessors
import SextantTesting
import Testing

@Suite struct BatchProcessorTests {
    func make(_ configure: (inout BatchConfig) -> Void) -> (BatchProcessor<ManualClock>, RecordingConsumer, ManualClock, SelfTelemetry) {
        var c = BatchConfig()
        configure(&c)
        let next = RecordingConsumer()
        let clock = ManualClock()
        let telemetry = SelfTelemetry()
        let settings = ComponentSettings(id: ComponentID(type: "batch"), kind: .processor, logger: Logger(label: "t"), telemetry: telemetry)
        return (BatchProcessor(c, settings: settings, pipeline: PipelineID(.traces), next: next, clock: clock), next, clock, telemetry)
    }

    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<5000 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    @Test func sendsWhenSizeIsReached() async throws {
        let (p, next, _, _) = make { $0.sendBatchSize = 10 }
        try await p.start()
        for _ in 0..<3 { try await p.consume(TestData.traces(3)) }
        #expect(next.batches.isEmpty)
        try await p.consume(TestData.traces(3))  // 12 ≥ 10
        #expect(next.batches.map(\.itemCount) == [12])
        await p.shutdown()
    }

    @Test func sendsWhenTheOldestItemTimesOut() async throws {
        let (p, next, clock, telemetry) = make {
            $0.sendBatchSize = 1000
            $0.timeout = .milliseconds(200)
        }
        try await p.start()
        try await p.consume(TestData.traces(2))
        #expect(await clock.waitForSleepers(1))
        clock.advance(by: .milliseconds(150))
        try await p.consume(TestData.traces(1))
        clock.advance(by: .milliseconds(49))
        try await Task.sleep(for: .milliseconds(20))
        #expect(next.batches.isEmpty)
        clock.advance(by: .milliseconds(1))  // 200 ms after the first item
        #expect(await eventually { next.itemCount == 3 })
        #expect(next.batches.count == 1)
        #expect(
            telemetry.value(
                "sextant_processor_batch_sent_total", labels: [("processor", "batch"), ("pipeline", "traces"), ("trigger", "timeout")])
                == 1)
        // The next batch gets its own full timeout.
        try await p.consume(TestData.traces(1))
        #expect(await clock.waitForSleepers(1))
        clock.advance(by: .milliseconds(199))
        try await Task.sleep(for: .milliseconds(20))
        #expect(next.itemCount == 3)
        clock.advance(by: .milliseconds(1))
        #expect(await eventually { next.itemCount == 4 })
        await p.shutdown()
    }

    @Test func splitsToSendBatchMaxSize() async throws {
        let (p, next, _, _) = make {
            $0.sendBatchSize = 5
            $0.sendBatchMaxSize = 5
        }
        try await p.start()
        try await p.consume(TestData.traces(13))
        #expect(next.batches.map(\.itemCount) == [5, 5, 3])
        #expect(next.spans.map(\.spanID.value) == Array(1...13))
        await p.shutdown()
    }

    @Test func shutdownFlushesPending() async throws {
        let (p, next, _, _) = make { $0.timeout = .seconds(60) }
        try await p.start()
        try await p.consume(TestData.logs(7))
        #expect(next.batches.isEmpty)
        await p.shutdown()
        #expect(next.itemCount == 7)
    }

    @Test func downstreamFailureIsCountedNotPropagated() async throws {
        let (p, next, _, telemetry) = make { $0.sendBatchSize = 1 }
        next.failNext([.retryable("down")])
        try await p.start()
        try await p.consume(TestData.traces(2))
        #expect(
            telemetry.value(
                "sextant_processor_dropped_items_total", labels: [("processor", "batch"), ("pipeline", "traces"), ("signal", "traces")])
                == 2)
        await p.shutdown()
    }
}

@Suite struct BatchBackpressureTests {
    @Test func overloadWaitsInsteadOfDropping() async throws {
        var c = BatchConfig()
        c.sendBatchSize = 2
        let next = RecordingConsumer()
        next.failNext([.overloaded("queue full"), .overloaded("queue full")])
        let clock = ManualClock()
        let telemetry = SelfTelemetry()
        let p = BatchProcessor(
            c, settings: ComponentSettings(id: ComponentID(type: "batch"), kind: .processor, logger: Logger(label: "t"), telemetry: telemetry),
            pipeline: PipelineID(.traces), next: next, clock: clock)
        try await p.start()
        let sending = Task { try await p.consume(TestData.traces(2)) }
        #expect(await clock.waitForSleepers(1))  // the backoff after the first refusal
        #expect(next.itemCount == 0)
        clock.advance(by: .milliseconds(5))
        #expect(await eventually { clock.sleeperCount == 1 })  // second refusal: backoff doubled
        clock.advance(by: .milliseconds(10))
        try await sending.value
        #expect(next.itemCount == 2)
        #expect(telemetry.value("sextant_processor_dropped_items_total", labels: [("processor", "batch"), ("pipeline", "traces"), ("signal", "traces")]) == 0)
        await p.shutdown()
    }
}
