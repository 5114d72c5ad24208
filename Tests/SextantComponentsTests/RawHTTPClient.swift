#if canImport(Glibc)
import Glibc
#endif

/// A deliberately dumb blocking HTTP/1.1 client over a raw socket, so tests can send exactly the
/// bytes they want (malformed requests, lying Content-Length, pipelining) and read the raw answer.
final class RawHTTPClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { throw ClientError.connect(errno) }
    }

    deinit { close(fd) }

    enum ClientError: Error {
        case connect(Int32)
        case closed
    }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { return }
            off += n
        }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// A POST with the given body and headers.
    func post(_ path: String, body: [UInt8], headers: [(String, String)] = [], keepAlive: Bool = true) {
        var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !keepAlive { head += "Connection: close\r\n" }
        send(Array((head + "\r\n").utf8) + body)
    }

    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    private var buffer: [UInt8] = []

    /// Reads one response (Content-Length framed). Throws when the server closes first.
    func readResponse() throws -> Response {
        func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw ClientError.closed }
            buffer += chunk[0..<n]
        }
        while true {
            if let end = find([13, 10, 13, 10]) {
                let headText = String(decoding: buffer[0..<end], as: UTF8.self)
                var lines = headText.split(separator: "\r\n").map(String.init)
                let statusLine = lines.removeFirst().split(separator: " ")
                let status = Int(statusLine[1])!
                let headers = lines.map { line -> (String, String) in
                    let i = line.firstIndex(of: ":")!
                    return (String(line[..<i]), String(line[line.index(after: i)...]).trimmingCharacters(in: " "))
                }
                let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
                if status == 100 {
                    buffer.removeFirst(end + 4)
                    continue
                }
                while buffer.count < end + 4 + length { try fill() }
                let body = Array(buffer[(end + 4)..<(end + 4 + length)])
                buffer.removeFirst(end + 4 + length)
                return Response(status: status, headers: headers, body: body)
            }
            try fill()
        }
    }

    /// Whether the server closed the connection (read returns 0) within the receive timeout.
    func isClosedByPeer() -> Bool {
        var b = [UInt8](repeating: 0, count: 1)
        let n = b.withUnsafeMutableBytes { read(fd, $0.baseAddress, 1) }
        return n == 0
    }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for i in 0...(buffer.count - pattern.count) where Array(buffer[i..<(i + pattern.count)]) == pattern { return i }
        return nil
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
