#if canImport(Glibc)
import Glibc
#endif
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

/// `limits.max_connections`: the N+1th connection of a listener is closed on accept and counted,
/// while the first N keep working; a slot frees up when one of them closes.
@Suite(.serialized) struct ConnectionLimitTests {
    func tracesRequest() -> [UInt8] {
        guard case .traces(let t) = TestData.traces(1) else { fatalError() }
        return OTLPProtobuf.encode(t)
    }

    func refused(_ r: Running) -> Int64? {
        r.telemetry.value("sextant_receiver_refused_connections_total", labels: [("receiver", "otlp")])
    }

    @Test func httpListenerRefusesTheConnectionPastTheLimit() async throws {
        let r = try await start(
            """
            receivers:
              otlp:
                protocols: {http: {endpoint: "127.0.0.1:0"}}
                limits: {max_connections: 2}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp]}
            """)
        let port = r.receiver.httpPort!
        let first = try RawHTTPClient(port: port)
        let second = try RawHTTPClient(port: port)
        // The server counts a connection once it has accepted it; a request answered proves that.
        for c in [first, second] {
            c.post("/v1/traces", body: tracesRequest(), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 200)
        }
        let third = try RawHTTPClient(port: port)
        #expect(third.isClosedByPeer())
        #expect(refused(r) == 1)
        // The first two are unaffected.
        for c in [first, second] {
            c.post("/v1/traces", body: tracesRequest(), headers: [("Content-Type", "application/x-protobuf")])
            #expect(try c.readResponse().status == 200)
        }
        #expect(r.harness.exporter("testexp").itemCount == 4)

        // Closing one frees its slot (once the server has seen the close).
        first.post("/v1/traces", body: tracesRequest(), headers: [("Content-Type", "application/x-protobuf")], keepAlive: false)
        #expect(try first.readResponse().status == 200)
        var answered = false
        for _ in 0..<100 where !answered {
            let c = try RawHTTPClient(port: port)
            c.post("/v1/traces", body: tracesRequest(), headers: [("Content-Type", "application/x-protobuf")])
            answered = (try? c.readResponse().status) == 200
            if !answered { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answered)
        await r.graph.shutdown()
    }

    @Test func grpcListenerRefusesTheConnectionPastTheLimit() async throws {
        let r = try await start(
            """
            receivers:
              otlp:
                protocols: {grpc: {endpoint: "127.0.0.1:0"}}
                limits: {max_connections: 1}
            exporters:
              testexp:
            service:
              pipelines:
                traces: {receivers: [otlp], exporters: [testexp]}
            """)
        let port = r.receiver.grpcPort!
        // In a scope of its own so both sockets are closed before the graceful shutdown, which waits
        // for open HTTP/2 connections.
        try await {
            let first = try RawHTTPClient(port: port)
            // Give the server time to accept the first before the second arrives.
            try await Task.sleep(for: .milliseconds(100))
            let second = try RawHTTPClient(port: port)
            #expect(second.isClosedByPeer())
            #expect(refused(r) == 1)
            // The first is still served: the HTTP/2 preface gets the server's SETTINGS frame back.
            first.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])
            #expect(!first.isClosedByPeer())
        }()
        await r.graph.shutdown()
    }

    @Test func syslogTCPListenerRefusesTheConnectionPastTheLimit() async throws {
        let r = try await start(
            """
            receivers:
              syslog:
                tcp: {listen_address: "127.0.0.1:0"}
                protocol: rfc5424
                limits: {max_connections: 1}
            exporters:
              testexp:
            service:
              pipelines:
                logs: {receivers: [syslog], exporters: [testexp]}
            """)
        let port = r.component("receiver/syslog", as: SyslogReceiver.self).tcpPort!
        let first = try RawHTTPClient(port: port)
        first.send("<13>1 - - - - - - one\n")
        #expect(await eventually { r.harness.exporter("testexp").itemCount == 1 })
        let second = try RawHTTPClient(port: port)
        #expect(second.isClosedByPeer())
        #expect(r.telemetry.value("sextant_receiver_refused_connections_total", labels: [("receiver", "syslog")]) == 1)
        first.send("<13>1 - - - - - - two\n")
        #expect(await eventually { r.harness.exporter("testexp").itemCount == 2 })
        await r.graph.shutdown()
    }
}
