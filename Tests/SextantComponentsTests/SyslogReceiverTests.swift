#if canImport(Glibc)
import Glibc
#endif
import Logging
import SextantModel
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

/// A blocking TCP client socket connected to 127.0.0.1:port (receive timeout 5 s).
private func syslogConnect(_ port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { a in
        a.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    precondition(rc == 0, "connect failed")
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

private func syslogSend(_ fd: Int32, _ text: String) {
    let b = Array(text.utf8)
    _ = b.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}

private func syslogSendUDP(_ text: String, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let b = Array(text.utf8)
    _ = withUnsafePointer(to: &addr) { a in
        a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
            b.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

@Suite(.serialized) struct SyslogReceiverTests {
    func receiver(_ p: SyslogProtocol = .rfc5424) async throws -> (SyslogReceiver, RecordingConsumer) {
        var c = SyslogReceiverConfig()
        c.protocolKind = p
        c.tcp = .init(host: "127.0.0.1", port: 0)
        c.udp = .init(host: "127.0.0.1", port: 0)
        c.maxLogSize = 200
        let sink = RecordingConsumer()
        let r = SyslogReceiver(c, settings: receiverSettings("syslog"), next: sink)
        try await r.start()
        return (r, sink)
    }

    @Test func tcpBothFramingsAndABadMessage() async throws {
        let (r, sink) = try await receiver()
        let fd = syslogConnect(r.tcpPort!)
        defer { close(fd) }
        let first = "<34>1 2003-10-11T22:14:15.003Z host su - ID47 - one"
        syslogSend(fd, "\(first.utf8.count) \(first)")
        syslogSend(fd, "<13>1 - - - - - - two\n<not syslog\n<13>1 - - - - - - th")
        syslogSend(fd, "ree\r\n")
        #expect(await eventually { sink.bodies.count == 3 })
        #expect(sink.bodies == ["one", "two", "three"])
        #expect(r.malformedCount == 1)
        #expect(sink.logRecords[0].attributes[key: "hostname"] == .string("host"))
        await r.shutdown()
    }

    @Test func malformedOctetCountClosesOnlyThatConnection() async throws {
        let (r, sink) = try await receiver()
        let good = syslogConnect(r.tcpPort!)
        let bad = syslogConnect(r.tcpPort!)
        defer {
            close(good)
            close(bad)
        }
        syslogSend(bad, "12x <13>1 - - -")
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { recv(bad, $0.baseAddress, $0.count, 0) }
        #expect(n == 0)  // closed by the receiver
        syslogSend(good, "<13>1 - - - - - - still here\n")
        #expect(await eventually { sink.bodies == ["still here"] })
        // The bad connection's task counts its error on its own schedule: the close the client saw comes from
        // the decoder, before that task has read the error, and the good connection's message may overtake it.
        #expect(await eventually { r.malformedCount == 1 })
        // An oversized LF-framed message is skipped; the connection goes on.
        syslogSend(good, "<13>1 - - - - - - " + String(repeating: "x", count: 300) + "\n<13>1 - - - - - - after\n")
        #expect(await eventually { sink.bodies == ["still here", "after"] })
        #expect(r.malformedCount == 2)
        await r.shutdown()
    }

    @Test func udpDatagrams() async throws {
        let (r, sink) = try await receiver(.rfc3164)
        syslogSendUDP("<30>Nov  5 01:02:03 host app[7]: over udp\u{0}", port: r.udpPort!)
        syslogSendUDP("garbage", port: r.udpPort!)
        syslogSendUDP("<13>Nov  5 01:02:04 host app: second\n", port: r.udpPort!)
        #expect(await eventually { sink.bodies.count == 2 })
        #expect(Set(sink.bodies) == ["over udp", "second"])
        let rec = try #require(sink.logRecords.first { $0.body == .string("over udp") })
        #expect(rec.attributes[key: "proc_id"] == .string("7") && rec.attributes[key: "appname"] == .string("app"))
        #expect(rec.severityNumber == .info && rec.attributes[key: "facility"] == .int(3))
        #expect(await eventually { r.malformedCount == 1 })
        await r.shutdown()
    }

    @Test func configParsing() {
        let d = Diagnostics()
        let node = YAMLLoader.parse(
            "protocol: rfc3164\nlocation: Nowhere/City\ntcp: {listen_address: '127.0.0.1:0', max_log_size: 1KiB}\nudp: {listen_adress: x}\n",
            file: "t.yaml", diagnostics: d, environment: [:])!
        var r = ConfigReader(node, path: "receivers::syslog", diagnostics: d)
        let c = SyslogReceiverFactory().parseConfig(&r) as! SyslogReceiverConfig
        let text = d.all.map(\.description).joined(separator: "\n")
        #expect(c.protocolKind == .rfc3164 && c.maxLogSize == 1024 && c.tcp?.host == "127.0.0.1")
        #expect(text.contains("unknown time zone 'Nowhere/City'"))
        #expect(text.contains("unknown key 'listen_adress'"))
    }

    /// `tcp::tls` is a `configtls` server block (RFC 5425); UDP has no TLS, so `udp::tls` is an unknown key.
    @Test func tlsConfigParsing() {
        let fixtures = #filePath.split(separator: "/").dropLast(2).joined(separator: "/") + "/SextantSecurityTests/Fixtures"
        let d = Diagnostics()
        let node = YAMLLoader.parse(
            """
            tcp:
              listen_address: 127.0.0.1:0
              tls: {cert_file: /\(fixtures)/server.crt, key_file: /\(fixtures)/server.key, client_ca_file: /\(fixtures)/ca.crt}
            udp: {listen_address: 127.0.0.1:0, tls: {cert_file: x}}
            """, file: "t.yaml", diagnostics: d, environment: [:])!
        var r = ConfigReader(node, path: "receivers::syslog", diagnostics: d)
        let c = SyslogReceiverFactory().parseConfig(&r) as! SyslogReceiverConfig
        let text = d.all.map(\.description).joined(separator: "\n")
        #expect(c.tls?.requiresClientCertificate == true)
        #expect(text.contains("t.yaml:4:") && text.contains("unknown key 'tls'"))

        let d2 = Diagnostics()
        let bad = YAMLLoader.parse("tcp: {listen_address: 127.0.0.1:0, tls: {cert_file: /nonexistent.crt, key_file: /nonexistent.key}}\n", file: "b.yaml", diagnostics: d2, environment: [:])!
        var r2 = ConfigReader(bad, path: "receivers::syslog", diagnostics: d2)
        _ = SyslogReceiverFactory().parseConfig(&r2)
        #expect(d2.all.map(\.description).joined().contains("b.yaml:1:") && d2.all.map(\.description).joined().contains("/nonexistent.crt"))
    }
}
