// Fuzz-package only: the entry point into the proxy's HTTP/1 parser, kept beside HTTP1Parser.swift (a
// symlink to Sources/SextantProxy/HTTP1Parser.swift) so that its types can stay internal to the proxy.
import NIOCore
import NIOHTTP1

/// One fuzz input through the proxy's HTTP/1 parser. The first byte picks requests or responses (bit 0),
/// the methods the responses answer (bits 1–3: `HEAD` or `GET` for the first three) and where the stream is
/// cut; the rest is the stream. It is parsed whole, then in pieces, then one byte at a time, and the three
/// must give the same messages (bodies joined), and the same error if any: how reads fall must never
/// change what the proxy forwards. Responses are also parsed with their fields left in the bytes
/// (`RawFields`, the proxy's upstream side), which must read exactly as the fields made into strings. Heads must hold no CR, LF or NUL, and bodies no more bytes than came in.
/// Traps if an invariant breaks.
public func fuzzHTTP1(_ input: UnsafeRawBufferPointer) {
    guard let control = input.first else { return }
    let stream = Array(input.dropFirst())
    let kind: HTTP1Parser.Kind = control & 1 == 0 ? .request : .response
    let whole = run(kind, control, [stream[...]])
    let cut = max(1, Int(control >> 4) * 3 + 1)
    var pieces: [ArraySlice<UInt8>] = []
    var i = 0
    while i < stream.count {
        pieces.append(stream[i..<min(stream.count, i + cut)])
        i += cut
    }
    if run(kind, control, pieces) != whole { fatalError("pieces of \(cut) bytes read differently") }
    if kind == .response, run(kind, control, pieces, raw: true) != whole { fatalError("raw fields read differently") }
    if stream.count <= 4096, run(kind, control, stream.indices.map { stream[$0...$0] }) != whole {
        fatalError("single bytes read differently")
    }
    var bodyBytes = 0
    for e in whole where e.hasPrefix("body:") { bodyBytes += e.unicodeScalars.count - 5 }
    if bodyBytes > stream.count { fatalError("more body bytes than input") }
}

private func run(_ kind: HTTP1Parser.Kind, _ control: UInt8, _ pieces: [ArraySlice<UInt8>], raw: Bool = false) -> [String] {
    var parser = HTTP1Parser(kind: kind, rawResponseFields: raw)
    var out: [String] = []
    var pending = ByteBuffer()
    var answered = 0
    func nextMethod() -> HTTPMethod? {
        defer { answered += 1 }
        return answered < 3 && control & (2 << answered) != 0 ? .HEAD : .GET
    }
    func note(_ event: HTTP1Parser.Event) {
        switch event {
        case .requestHead(let h, let fields):
            // A head's fields travel only in its list (the proxy edits that list in place).
            precondition(h.headers.isEmpty, "a head's fields are only in its list")
            let headers = HTTPHeaders(fields)
            check(headers)
            check(h.uri)
            out.append("head:\(h.method.rawValue) \(h.uri) \(h.version) \(headers.map { "\($0.name)=\($0.value)" })")
        case .responseHead(let h, let fields):
            precondition(h.headers.isEmpty, "a head's fields are only in its list")
            let headers = HTTPHeaders(fields)
            check(headers)
            out.append("head:\(h.status.code) \(h.status.reasonPhrase) \(h.version) \(headers.map { "\($0.name)=\($0.value)" })")
        case .rawResponseHead(let h, let fields):
            precondition(h.headers.isEmpty, "a head's fields are only in its list")
            let headers = HTTPHeaders(fields.list)
            check(headers)
            // A lookup by name finds the first field of that name, as `HTTPHeaders` does.
            for (name, _) in headers where fields.first(lowercased: name.lowercased()) != headers.first(name: name) {
                fatalError("lookup of \(name) differs")
            }
            out.append("head:\(h.status.code) \(h.status.reasonPhrase) \(h.version) \(headers.map { "\($0.name)=\($0.value)" })")
        case .body(let b):
            // One scalar per byte, so that bodies compare and count byte for byte.
            let text = "body:" + String(String.UnicodeScalarView(b.readableBytesView.map { Unicode.Scalar($0) }))
            if let last = out.last, last.hasPrefix("body:") {
                out[out.count - 1] = last + text.dropFirst(5)
            } else {
                out.append(text)
            }
        case .end(let t):
            if let t { check(t) }
            out.append("end:\(t.map { $0.map { "\($0.name)=\($0.value)" } }?.description ?? "nil")")
        }
    }
    do {
        for piece in pieces {
            pending.writeBytes(piece)
            try parser.decode(&pending, nextMethod: nextMethod) { event, _ in
                note(event)
                return true
            }
            pending.discardReadBytes()
        }
        if let event = try parser.finish(hasBufferedBytes: pending.readableBytes > 0) { note(event) }
    } catch {
        out.append("error:\(error)")
    }
    return out
}

private func check(_ headers: HTTPHeaders) {
    for (name, value) in headers {
        check(name)
        check(value)
        if name.isEmpty { fatalError("an empty field name") }
    }
}

private func check(_ text: String) {
    if text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) { fatalError("CR, LF or NUL in \(text.debugDescription)") }
}
