import Foundation
import Logging
import NIOCore
import NIOPosix
import SextantFluentForward
import SextantIstio
import SextantModel
import SextantPipeline
import Synchronization
import Testing

@testable import SextantProxy

/// `envoyFluentdAccessLog`, Sextant's provider for Envoy's Fluentd access logger: its settings and their
/// errors, the record each request becomes, and the byte-sized buffer its batches are cut from. The wire
/// exchange with a forward server is in `tests/interop/test_proxy.py` (`-k fluentd`).
@Suite struct FluentdAccessLogTests {
    static func resolve(_ providers: String) -> ([AccessLogSink], [ConfigDiagnostic]) {
        let yaml = """
            apiVersion: install.istio.io/v1alpha1
            kind: IstioOperator
            metadata: {name: mesh, namespace: istio-system}
            spec:
              meshConfig:
            \(providers)
            """
        let d = Diagnostics()
        var resources = IstioResources()
        IstioConfigLoader.read(yaml, file: "mesh.yaml", into: &resources, diagnostics: d)
        IstioConfigLoader.validate(resources, diagnostics: d)
        let table = RouteTable(resources: resources, identity: ProxyIdentity(workload: "productpage-v1", namespace: "default", labels: [:]))
        return ((try? AccessLogSink.resolve(table)) ?? [], d.all)
    }

    @Test func defaultsAreEnvoysAndTheRecordIsIstiosJSONFieldSet() throws {
        let (sinks, diagnostics) = Self.resolve("""
                extensionProviders:
                - name: fluentd
                  envoyFluentdAccessLog: {service: 127.0.0.1, port: 24224, tag: istio.access}
                - name: custom
                  envoyFluentdAccessLog:
                    service: fluentbit.logging.svc.cluster.local
                    port: 24225
                    tag: mesh
                    bufferFlushInterval: 250ms
                    bufferSizeBytes: 1024
                    logFormat:
                      labels: {code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%"}
                    retryOptions: {maxConnectAttempts: 3, backoffOptions: {baseInterval: 100ms}}
                defaultProviders: {accessLogging: [fluentd, custom]}
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        #expect(sinks.count == 2)
        guard case .fluentd("fluentd", let host, let port, let tag, let record, let interval, let size, let retry) = sinks.first else {
            Issue.record("\(sinks)")
            return
        }
        #expect(host == "127.0.0.1" && port == 24224 && tag == "istio.access")
        #expect(interval == .seconds(1) && size == 16384)
        // Envoy's reconnects: 500 ms doubling up to 10× that, with no limit on attempts.
        #expect(retry == MeshConfig.FluentdRetryOptions(maxConnectAttempts: nil, baseInterval: .milliseconds(500), maxInterval: .seconds(5)))
        #expect(record.map(\.0) == AccessLogFormat.istioJSON.map(\.0))
        guard case .fluentd("custom", let host2, let port2, "mesh", let record2, let interval2, 1024, let retry2) = sinks.last else {
            Issue.record("\(sinks)")
            return
        }
        #expect(host2 == "fluentbit.logging.svc.cluster.local" && port2 == 24225 && interval2 == .milliseconds(250))
        #expect(record2.map(\.0) == ["code", "path"])
        #expect(retry2 == MeshConfig.FluentdRetryOptions(maxConnectAttempts: 3, baseInterval: .milliseconds(100), maxInterval: .seconds(1)))
    }

    @Test func everyMistakeIsReportedAtOnceWithItsLine() {
        let (_, diagnostics) = Self.resolve("""
                extensionProviders:
                - name: a
                  envoyFluentdAccessLog: {service: fluentd, port: 24224}
                - name: b
                  envoyFluentdAccessLog:
                    service: fluentd
                    port: 24224
                    tag: t
                    logFormat: {text: "%RESPONSE_CODE%"}
                    bufferFlushInterval: 0s
                    bufferSizeBytes: 0
                    retryOptions: {maxConnectAttempts: 0, backoffOptions: {maxInterval: 1s}, jitter: true}
                - name: c
                  envoyFluentdAccessLog:
                    service: fluentd
                    port: 24224
                    tag: t
                    retryOptions: {backoffOptions: {baseInterval: 2s, maxInterval: 1s}, retryOn: connect-failure}
            """)
        let errors = diagnostics.filter { $0.severity == .error }
        let expected = ["tag is required", "give logFormat.labels, not logFormat.text", "bufferFlushInterval must be greater than zero",
            "bufferSizeBytes must be at least 1", "maxConnectAttempts must be at least 1", "baseInterval is required", "jitter",
            "must be at least baseInterval (2s)", "retryOn"]
        for text in expected {
            #expect(errors.contains { $0.message.contains(text) && $0.location?.line ?? 0 > 5 }, "\(text): \(errors)")
        }
        #expect(errors.count == expected.count, "\(errors)")
    }

    /// The msgpack record carries the same fields and values as Istio's JSON line for the same request: numbers
    /// as integers, the rest as strings, `-` when empty; its time is the request's start, to the nanosecond.
    @Test func theRecordHoldsWhatTheJSONLineHolds() throws {
        var r = AccessLogFormatTests.record()
        r.startUnixNanos = 1_733_400_000_123_456_789
        let entry = LineProgram(msgpack: AccessLogFormat.istioJSON).bytes(r)
        let decoded = try entry.withUnsafeBytes { try ForwardCodec.decodeEntries($0) }
        #expect(decoded.count == 1)
        let e = try #require(decoded.first)
        #expect(e.timeUnixNano == r.startUnixNanos)
        let line = AccessLogFormat.renderJSON(AccessLogFormat.istioJSON, r)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(e.record.map(\.key).sorted() == json.keys.sorted())
        var numbers = 0
        for kv in e.record {
            switch kv.value {
            case .int(let n):
                numbers += 1
                #expect((json[kv.key] as? Int).map { Int64($0) } == n, "\(kv.key)")
            case .string(let s): #expect(json[kv.key] as? String == s, "\(kv.key)")
            default: Issue.record("\(kv.key): \(kv.value)")
            }
        }
        #expect(numbers >= 4, "response_code, bytes_received, bytes_sent and duration are numbers")
        #expect(e.record.first { $0.key == "requested_server_name" }?.value == .string("-"))
    }

    /// Every length and integer width: the compiled record is byte for byte what the collector's msgpack writer
    /// writes for the same values (the smallest forms: fixstr, str 8, 16 and 32; every int width).
    @Test func lengthsAndIntegersTakeTheirSmallestForm() throws {
        for n: Int64 in [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 32 - 1, 1 << 32, .max, -1, -32, -33, -128, -129, -32768, -32769,
            Int64(Int32.min), Int64(Int32.min) - 1, .min]
        {
            var out = LineBuffer(capacity: 16)
            out.appendMessagePackInt(n)
            var w = MessagePackWriter()
            w.write(n)
            #expect(Array(out.bytes) == w.bytes, "\(n)")
        }
        let formats = try [("b", "%BYTES_SENT%"), ("a", "%REQ(:PATH)% %RESPONSE_CODE%"), ("c", "%REQ(X-MISSING)%"), ("d", "%DURATION%")]
            .map { ($0.0, try AccessLogFormat($0.1)) }
        let program = LineProgram(msgpack: formats)
        var r = AccessLogFormatTests.record()
        for (pathLength, sent) in [(1, 0), (40, 300), (300, 70_000), (70_000, 5_000_000_000)] {
            r.path = "/" + String(repeating: "é", count: (pathLength - 1) / 2) + String(repeating: "x", count: (pathLength - 1) % 2)
            r.bytesSent = sent
            var w = MessagePackWriter()
            w.writeArrayHeader(2)
            ForwardCodec.appendEventTime(to: &w, timeUnixNano: r.startUnixNanos)
            w.writeMapHeader(4)
            w.write("a")
            w.write("\(r.path) \(r.responseCode)")
            w.write("b")
            w.write(Int64(sent))
            w.write("c")
            w.write("-")
            w.write("d")
            w.write(r.durationMilliseconds)
            let same = program.bytes(r) == w.bytes
            #expect(same, "path of \(r.path.utf8.count) bytes, \(sent) bytes sent")
        }
    }

    /// Batches are cut by bytes: each holds entries up to the one that reaches the buffer size, as Envoy
    /// flushes once its buffer reaches `buffer_size_bytes`; the queue holds at most `maxQueued` bytes.
    @Test func batchesAreCutByBytes() async {
        let sent = Mutex<[[Int]]>([])
        let transport = TelemetryTransport(
            destination: .fluentForward(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let b = TelemetryBatcher(TelemetryRecords(weighsBytes: true), transport: transport, maxQueued: 200, batchSize: 100) { batch in
            // Each entry is one byte value repeated: the batch's runs of equal bytes are its entries.
            var runs: [Int] = []
            for (i, byte) in batch.bytes.enumerated() where i == 0 || batch.bytes[i - 1] != byte { runs.append(Int(byte)) }
            sent.withLock { $0.append(runs) }
            return true
        }
        for i in 0..<10 { [UInt8](repeating: UInt8(i), count: 30).withUnsafeBytes { b.add($0) } }
        #expect(b.dropped == 4, "six entries of 30 bytes fit in 200")
        await b.flush()
        #expect(sent.withLock { $0 } == [[0, 1, 2, 3], [4, 5]])
        [UInt8](repeating: 9, count: 150).withUnsafeBytes { b.add($0) }
        [UInt8](repeating: 8, count: 10).withUnsafeBytes { b.add($0) }
        await b.flush()
        #expect(sent.withLock { $0.suffix(2) } == [[9], [8]], "an entry bigger than the buffer goes alone")
        #expect(b.sent == 8 && b.dropped == 4)
    }

    @Test func aFullBufferWakesTheSender() async throws {
        let sent = Mutex<[Int]>([])
        let transport = TelemetryTransport(
            destination: .fluentForward(host: "127.0.0.1", port: 9), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let b = TelemetryBatcher(TelemetryRecords(weighsBytes: true), transport: transport, batchSize: 100, interval: .seconds(120)) { batch in
            sent.withLock { $0.append(batch.count) }
            return true
        }
        let runner = Task { await b.run() }
        try await Task.sleep(for: .milliseconds(50))
        [UInt8](repeating: 0, count: 60).withUnsafeBytes { b.add($0) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(sent.withLock { $0 }.isEmpty, "60 of 100 bytes wait for the timer")
        [UInt8](repeating: 1, count: 60).withUnsafeBytes { b.add($0) }
        let start = ContinuousClock.now
        while sent.withLock({ $0.isEmpty }) && ContinuousClock.now - start < .seconds(20) {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(sent.withLock { $0 } == [2])
        runner.cancel()
        await runner.value
    }
}
