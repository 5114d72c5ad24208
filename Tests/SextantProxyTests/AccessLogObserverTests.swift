import Foundation
import NIOCore
import Testing

@testable import SextantProxy

/// The access-log file writer: lines are formatted into a shared buffer that its thread swaps and writes out
/// (every 100 ms, or at 64 KiB); the file must hold each record's line exactly as the format renders it, in
/// the order the records came, across many swaps.
@Suite struct AccessLogObserverTests {
    private static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sextant-access-\(UUID().uuidString).log").path
    }

    @Test(arguments: [false, true])
    func linesComeOutInOrderAsTheFormatRendersThem(json: Bool) throws {
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let encoding: AccessLogObserver.Encoding = json ? .json(AccessLogFormat.istioJSON) : .text(.istioText)
        let observer = try AccessLogObserver(path: path, encoding: encoding)
        let head = try #require(try HTTP1EncodersTests.rawFields("HTTP/1.1 200 OK\r\nServer: up\r\nX-Envoy-Upstream-Service-Time: 3\r\n\r\n"))
        var expected = ""
        // Over 64 KiB of lines, so that the writer is woken by a full buffer as well as by its timer.
        for i in 0..<300 {
            var r = AccessLogFormatTests.record()
            r.path = "/item/\(i)"
            r.startUnixNanos += UInt64(i) * 7_000_000
            if i % 3 == 0 { r.responseFields = .raw(head, added: [("server", "istio-envoy")]) }
            expected += program(encoding).render(r)
            observer.requestFinished(r)
            if i == 50 { Thread.sleep(forTimeInterval: 0.25) }
        }
        observer.shutdown()
        let written = try String(contentsOfFile: path, encoding: .utf8)
        #expect(written == expected)
        #expect(written.contains("\"upstream_service_time\":\"3\"") == json)
    }

    private func program(_ e: AccessLogObserver.Encoding) -> LineProgram {
        switch e {
        case .text(let f): f.program
        case .json(let fields): LineProgram(json: fields)
        }
    }
}
