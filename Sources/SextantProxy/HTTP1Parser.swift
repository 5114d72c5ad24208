import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 message parser (RFC 9112) for the proxy's two sides: requests from downstream, responses from
/// upstream. It replaces NIO's llhttp-based `HTTPDecoder` behind `ByteToMessageHandler`, whose callbacks,
/// unspecialised generic handler and per-header `HTTPHeaders.add` checks were a fifth of the proxy's
/// instructions per request. A head is parsed once it is complete (its end is searched for incrementally), in
/// one pass over contiguous bytes, and the header list is built at its final size.
///
/// It is as strict as llhttp without its lenient flags, so that the proxy forwards nothing another parser
/// could read differently (request smuggling):
/// - lines end in CRLF (§2.2); a bare LF is an error; empty lines before a request line are skipped;
/// - field names are tokens with the colon right after them (§5.1); a line starting with whitespace
///   (obsolete line folding, §5.2) is an error; values hold no control characters but HTAB;
/// - `Content-Length` is digits only and may appear once; `Transfer-Encoding` together with `Content-Length` is
///   an error; a request's `Transfer-Encoding` must end in `chunked` (§6.1, §6.3);
/// - chunk sizes are hexadecimal digits, chunk extensions are skipped, trailers are parsed as fields (§7.1).
///
/// Errors are NIO's `HTTPParserError`s, so the handlers answer them as before (400, or 431 for
/// `headerOverflow`); the limits are NIO's defaults: 80 KiB of field names and values per message.
struct HTTP1Parser {
    enum Kind { case request, response }

    /// Where the parser is in the byte stream.
    enum State: Equatable {
        case head
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        /// A response without framing: its body ends when the connection closes (§6.3 rule 8).
        case untilClose
        /// After an upgrade (a request with `Connection: upgrade` and `Upgrade`, `CONNECT`, or a 101 response):
        /// the bytes that follow are not HTTP/1; they wait for the handler's removal.
        case upgraded
        case failed
    }

    /// One decoded piece of a message.
    enum Event {
        /// A head with empty `headers`, and its fields as a plain list: one the proxy can read by index, without
        /// the retain and release of each name and value that iterating `HTTPHeaders` costs, and hold the one
        /// reference to, so that it edits the list in place into the head it sends on (no copy of the list).
        /// Whoever needs `HTTPHeaders` wraps the list.
        case requestHead(HTTPRequestHead, fields: [(String, String)])
        case responseHead(HTTPResponseHead, fields: [(String, String)])
        /// A response head whose fields were left in the bytes read (`rawResponseFields`).
        case rawResponseHead(HTTPResponseHead, fields: RawFields)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    /// NIO's `NIOHTTPDecoderLimitConfiguration` defaults: field names and values of one message.
    static let maxFieldBytes = 80 * 1024
    /// A head (start line, fields, CRLFs) longer than this without its end is refused.
    static let maxHeadBytes = maxFieldBytes + 16 * 1024
    /// A chunk-size line (with extensions) longer than this is refused.
    static let maxChunkLineBytes = 4096

    let kind: Kind
    /// Response heads come as `rawResponseHead`: their fields as ranges of the bytes read, not strings.
    let rawResponseFields: Bool
    private(set) var state = State.head
    /// How far the search for the end of the current head (or chunk line) got, so that a head arriving in
    /// small pieces is scanned once.
    private var scanned = 0
    /// Whether the message being read ends in an upgrade.
    private var upgradeAfterMessage = false

    init(kind: Kind, rawResponseFields: Bool = false) {
        self.kind = kind
        self.rawResponseFields = rawResponseFields && kind == .response
    }

    /// Decodes as much of `buffer` as makes whole events, consuming what it used. Each event goes to `emit`
    /// with the bytes that follow it, so that a receiver removing the handler (an upgrade) can pass them on;
    /// `emit` returns false to stop. `nextMethod` gives the method of the request a response answers.
    mutating func decode(
        _ buffer: inout ByteBuffer, nextMethod: () -> HTTPMethod?, emit: (consuming Event, ByteBuffer) -> Bool
    ) throws {
        do {
            try decodeEvents(&buffer, nextMethod: nextMethod, emit: emit)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func decodeEvents(
        _ buffer: inout ByteBuffer, nextMethod: () -> HTTPMethod?, emit: (consuming Event, ByteBuffer) -> Bool
    ) throws {
        while buffer.readableBytes > 0 {
            switch state {
            case .head:
                guard let event = try parseHead(&buffer, nextMethod: nextMethod) else { return }
                if state == .head {
                    // No body: the message ends with its head.
                    state = upgradeAfterMessage ? .upgraded : .head
                    if !emit(consume event, buffer) || !emit(.end(nil), buffer) { return }
                } else if !emit(consume event, buffer) {
                    return
                }
            case .body(let remaining):
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                if n == remaining {
                    state = upgradeAfterMessage ? .upgraded : .head
                    if !emit(.body(slice), buffer) || !emit(.end(nil), buffer) { return }
                } else {
                    state = .body(remaining: remaining - n)
                    if !emit(.body(slice), buffer) { return }
                }
            case .chunkSize:
                guard let size = try parseChunkSize(&buffer) else { return }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let n = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: n)!
                state = n == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - n)
                if !emit(.body(slice), buffer) { return }
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw HTTPParserError.invalidChunkSize }
                state = .chunkSize
            case .trailers:
                guard let trailers = try parseTrailers(&buffer) else { return }
                state = upgradeAfterMessage ? .upgraded : .head
                if !emit(.end(trailers), buffer) { return }
            case .untilClose:
                let slice = buffer.readSlice(length: buffer.readableBytes)!
                if !emit(.body(slice), buffer) { return }
            case .upgraded, .failed:
                return
            }
        }
    }

    /// The connection closed: a body that runs to the close ends here; anything else unfinished is an error.
    mutating func finish(hasBufferedBytes: Bool) throws -> Event? {
        switch state {
        case .untilClose:
            state = .head
            return .end(nil)
        case .head where !hasBufferedBytes, .upgraded, .failed:
            return nil
        default:
            state = .failed
            throw HTTPParserError.invalidEOFState
        }
    }

    // MARK: Heads

    private mutating func parseHead(_ buffer: inout ByteBuffer, nextMethod: () -> HTTPMethod?) throws -> Event? {
        if kind == .request && scanned == 0 {
            // §2.2: a server should ignore at least one empty line received before the request line.
            while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
                buffer.moveReaderIndex(forwardBy: 2)
            }
            // Nothing yet, or a CR that may be the start of another empty line.
            if buffer.readableBytes == 0 || (buffer.readableBytes == 1 && buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == 0x0D) {
                return nil
            }
        }
        let found = try buffer.withUnsafeReadableBytes { p -> Int? in
            let end = try Self.findEmptyLine(p, from: scanned)
            if end == nil { scanned = p.count }
            return end
        }
        guard let end = found else {
            if buffer.readableBytes > Self.maxHeadBytes { throw HTTPParserError.headerOverflow }
            return nil
        }
        scanned = 0
        if end > Self.maxHeadBytes { throw HTTPParserError.headerOverflow }
        // Raw fields point into the head's bytes: a slice shares the buffer's storage, nothing is copied.
        let headBytes = rawResponseFields ? buffer.getSlice(at: buffer.readerIndex, length: end) : nil
        let event = try buffer.withUnsafeReadableBytes { p in
            try parseMessageHead(UnsafeRawBufferPointer(rebasing: p[0..<end]), headBytes: headBytes, nextMethod: nextMethod)
        }
        buffer.moveReaderIndex(forwardBy: end)
        return event
    }

    /// The offset just past the CRLF CRLF that ends a head, searching for line feeds from `from`; nil if it
    /// has not arrived. A line feed without a carriage return before it is an error (strict §2.2).
    private static func findEmptyLine(_ p: UnsafeRawBufferPointer, from: Int) throws -> Int? {
        guard let base = p.baseAddress else { return nil }
        var i = from
        while i < p.count, let hit = memchr(base + i, 0x0A, p.count - i) {
            let k = base.distance(to: UnsafeRawPointer(hit))
            guard k >= 1, p[k - 1] == 0x0D else { throw HTTPParserError.lfExpected }
            if k >= 3 && p[k - 2] == 0x0A { return k + 1 }
            // A head that begins with CRLF (a response, or trailers) ends right there.
            if k == 1 { return 2 }
            i = k + 1
        }
        return nil
    }

    /// Parses a complete head (start line, fields, the final CRLF) and decides the body's framing (§6.3).
    private mutating func parseMessageHead(
        _ p: UnsafeRawBufferPointer, headBytes: ByteBuffer?, nextMethod: () -> HTTPMethod?
    ) throws -> Event {
        let lineEnd = Self.lineEnd(p, from: 0)
        var fields = Fields()
        fields.raw = headBytes != nil
        try fields.parse(p, from: lineEnd + 2, to: p.count - 2)
        switch kind {
        case .request:
            let (method, uri, version) = try Self.requestLine(UnsafeRawBufferPointer(rebasing: p[0..<lineEnd]))
            if fields.transferEncoding != nil && fields.contentLength != nil { throw HTTPParserError.unexpectedContentLength }
            if let te = fields.transferEncoding {
                // §6.3 rule 4: a request whose transfer coding does not end in chunked cannot be framed.
                guard te.lastIsChunked else { throw HTTPParserError.invalidHeaderToken }
                state = .chunkSize
            } else if let n = fields.contentLength, n > 0 {
                state = .body(remaining: n)
            } else {
                state = .head
            }
            upgradeAfterMessage = method.isCONNECT || (fields.connectionUpgrade && fields.hasUpgrade)
            let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders())
            return .requestHead(head, fields: fields.list)
        case .response:
            let (version, code, reason) = try Self.statusLine(UnsafeRawBufferPointer(rebasing: p[0..<lineEnd]))
            // An informational response comes before the final one to the same request.
            let method = code >= 200 || code == 101 ? nextMethod() : nil
            upgradeAfterMessage = code == 101 || (method?.isCONNECT == true && code / 100 == 2)
            if (100..<200).contains(code) || code == 204 || code == 304 || method?.isHEAD == true || upgradeAfterMessage {
                state = .head
            } else if fields.transferEncoding != nil && fields.contentLength != nil {
                throw HTTPParserError.unexpectedContentLength
            } else if let te = fields.transferEncoding {
                state = te.lastIsChunked ? .chunkSize : .untilClose
            } else if let n = fields.contentLength {
                state = n > 0 ? .body(remaining: n) : .head
            } else {
                state = .untilClose
            }
            let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: code, reasonPhrase: reason))
            if let headBytes { return .rawResponseHead(head, fields: RawFields(bytes: headBytes, spans: fields.spans, contentLength: fields.contentLength)) }
            return .responseHead(head, fields: fields.list)
        }
    }

    /// The offset of the CR of the first line's CRLF (the head is known to hold one).
    private static func lineEnd(_ p: UnsafeRawBufferPointer, from: Int) -> Int {
        var i = from
        while p[i] != 0x0D { i += 1 }
        return i
    }

    /// `method SP request-target SP HTTP-version` (§3).
    private static func requestLine(_ p: UnsafeRawBufferPointer) throws -> (HTTPMethod, String, HTTPVersion) {
        var i = 0
        while i < p.count && Token.isTChar(p[i]) { i += 1 }
        guard i > 0, i < p.count, p[i] == 0x20 else { throw HTTPParserError.invalidMethod }
        let method = Self.method(UnsafeRawBufferPointer(rebasing: p[0..<i]))
        let targetStart = i + 1
        var j = targetStart
        // request-target: visible ASCII and obs-text; no whitespace or controls.
        while j < p.count && p[j] > 0x20 && p[j] != 0x7F { j += 1 }
        guard j > targetStart, j < p.count, p[j] == 0x20 else { throw HTTPParserError.invalidURL }
        let uri = String(decoding: UnsafeRawBufferPointer(rebasing: p[targetStart..<j]), as: UTF8.self)
        guard let version = Self.version(UnsafeRawBufferPointer(rebasing: p[(j + 1)...])), p.count - j - 1 == 8 else {
            throw HTTPParserError.invalidVersion
        }
        return (method, uri, version)
    }

    /// `HTTP-version SP status-code SP [reason-phrase]` (§4); the space before an empty reason is optional, as
    /// llhttp has it.
    private static func statusLine(_ p: UnsafeRawBufferPointer) throws -> (HTTPVersion, Int, String) {
        guard p.count >= 12, let version = Self.version(UnsafeRawBufferPointer(rebasing: p[0..<8])), p[8] == 0x20 else {
            throw HTTPParserError.invalidVersion
        }
        var code = 0
        for k in 9..<12 {
            let d = p[k] &- 0x30
            guard d < 10 else { throw HTTPParserError.invalidStatus }
            code = code * 10 + Int(d)
        }
        guard code >= 100 else { throw HTTPParserError.invalidStatus }
        if p.count == 12 { return (version, code, "") }
        guard p[12] == 0x20 else { throw HTTPParserError.invalidStatus }
        for k in 13..<p.count where !Token.isFieldValueByte(p[k]) { throw HTTPParserError.invalidStatus }
        return (version, code, String(decoding: UnsafeRawBufferPointer(rebasing: p[13...]), as: UTF8.self))
    }

    /// `HTTP/d.d`.
    private static func version(_ p: UnsafeRawBufferPointer) -> HTTPVersion? {
        guard p.count >= 8, p[0] == 0x48, p[1] == 0x54, p[2] == 0x54, p[3] == 0x50, p[4] == 0x2F, p[6] == 0x2E else { return nil }
        let major = p[5] &- 0x30
        let minor = p[7] &- 0x30
        guard major < 10, minor < 10 else { return nil }
        return HTTPVersion(major: Int(major), minor: Int(minor))
    }

    /// The method, without `HTTPMethod(rawValue:)`'s string comparisons for the common ones.
    private static func method(_ p: UnsafeRawBufferPointer) -> HTTPMethod {
        switch p.count {
        case 3:
            if p[0] == 0x47 && p[1] == 0x45 && p[2] == 0x54 { return .GET }
            if p[0] == 0x50 && p[1] == 0x55 && p[2] == 0x54 { return .PUT }
        case 4:
            if p[0] == 0x50 && p[1] == 0x4F && p[2] == 0x53 && p[3] == 0x54 { return .POST }
            if p[0] == 0x48 && p[1] == 0x45 && p[2] == 0x41 && p[3] == 0x44 { return .HEAD }
        default:
            break
        }
        return HTTPMethod(rawValue: String(decoding: p, as: UTF8.self))
    }

    // MARK: Chunks

    /// `chunk-size [chunk-ext] CRLF` (§7.1, §7.1.1); nil until the line is complete.
    private mutating func parseChunkSize(_ buffer: inout ByteBuffer) throws -> Int? {
        let found = buffer.withUnsafeReadableBytes { p -> Int? in
            guard let base = p.baseAddress, scanned < p.count,
                let hit = memchr(base + scanned, 0x0A, p.count - scanned)
            else {
                scanned = p.count
                return nil
            }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let lf = found else {
            if buffer.readableBytes > Self.maxChunkLineBytes { throw HTTPParserError.invalidChunkSize }
            return nil
        }
        scanned = 0
        let size = buffer.withUnsafeReadableBytes { p -> Int? in
            guard lf >= 2, p[lf - 1] == 0x0D else { return nil }
            var size = 0
            var i = 0
            while i < lf - 1, let d = Self.hexDigit(p[i]) {
                guard size <= (Int.max >> 4) else { return nil }
                size = size << 4 | d
                i += 1
            }
            guard i > 0 else { return nil }
            // Optional whitespace, then extensions (`;name[=value]`), which are skipped; nothing else.
            while i < lf - 1 && (p[i] == 0x20 || p[i] == 0x09) { i += 1 }
            if i < lf - 1 {
                guard p[i] == 0x3B else { return nil }
                for k in i..<(lf - 1) where !Token.isFieldValueByte(p[k]) { return nil }
            }
            return size
        }
        guard let size else { throw HTTPParserError.invalidChunkSize }
        buffer.moveReaderIndex(forwardBy: lf + 1)
        return size
    }

    private static func hexDigit(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b - 0x30)
        case 0x41...0x46: return Int(b - 0x41 + 10)
        case 0x61...0x66: return Int(b - 0x61 + 10)
        default: return nil
        }
    }

    /// The trailer section after the last chunk (§7.1.2): fields, then an empty line; nil until it is complete.
    private mutating func parseTrailers(_ buffer: inout ByteBuffer) throws -> HTTPHeaders?? {
        let found = try buffer.withUnsafeReadableBytes { p -> Int? in
            let end = try Self.findEmptyLine(p, from: scanned)
            if end == nil { scanned = p.count }
            return end
        }
        guard let end = found else {
            if buffer.readableBytes > Self.maxHeadBytes { throw HTTPParserError.headerOverflow }
            return nil
        }
        scanned = 0
        if end == 2 {
            buffer.moveReaderIndex(forwardBy: 2)
            return .some(nil)
        }
        var fields = Fields()
        try buffer.withUnsafeReadableBytes { p in try fields.parse(UnsafeRawBufferPointer(rebasing: p[0..<end]), from: 0, to: end - 2) }
        buffer.moveReaderIndex(forwardBy: end)
        return .some(HTTPHeaders(fields.list))
    }
}

/// The field lines of a head or trailer section (RFC 9112 §5), and what framing needs from them.
private struct Fields {
    var list: [(String, String)] = []
    /// Whether the fields are noted as `spans` (offsets into the head) instead of strings in `list`.
    var raw = false
    var spans: [RawFields.Span] = []
    var contentLength: Int?
    var transferEncoding: TransferEncoding?
    var connectionUpgrade = false
    var hasUpgrade = false

    /// `Transfer-Encoding`'s last coding, which decides the framing (§6.1).
    struct TransferEncoding { var lastIsChunked: Bool }

    /// Parses the lines in `from..<to` (each ending in CRLF; `to` is the final empty line's CR).
    mutating func parse(_ p: UnsafeRawBufferPointer, from: Int, to: Int) throws {
        guard from < to else { return }
        // Room for the fields, estimated from the bytes (field lines are rarely under 12 bytes; counting line
        // feeds first cost a `memchr` call per line), and for those the proxy adds: allocated once.
        if raw {
            spans.reserveCapacity((to - from) / 12 + 1)
        } else {
            list.reserveCapacity((to - from) / 12 + 8)
        }
        var total = 0
        var i = from
        let tchar = Token.tcharTable
        // Offsets stay inside the head (a buffer's count), so they are advanced with wrapping arithmetic: no
        // overflow branch per byte scanned.
        while i < to {
            var colon = i
            // Every line ends in CRLF, and CR is not a tchar: the scan stops within the head.
            while tchar[Int(p[colon])] != 0 { colon &+= 1 }
            guard colon > i, p[colon] == 0x3A else { throw HTTPParserError.invalidHeaderToken }
            var v = colon &+ 1
            while p[v] == 0x20 || p[v] == 0x09 { v &+= 1 }
            var e = Token.fieldValueEnd(p, from: v)
            guard p[e] == 0x0D else { throw HTTPParserError.invalidCharactersUsed }
            // The CR must be followed by the LF `findEmptyLine` saw; a lone CR inside a line is an error.
            guard p[e &+ 1] == 0x0A else { throw HTTPParserError.lfExpected }
            let next = e &+ 2
            while e > v && (p[e &- 1] == 0x20 || p[e &- 1] == 0x09) { e &-= 1 }
            total &+= colon &- i &+ e &- v
            if total > HTTP1Parser.maxFieldBytes { throw HTTPParserError.headerOverflow }
            let name = UnsafeRawBufferPointer(rebasing: p[i..<colon])
            let value = UnsafeRawBufferPointer(rebasing: p[v..<e])
            try note(name, value)
            if raw {
                spans.append(RawFields.Span(nameStart: UInt32(i), nameCount: UInt32(colon - i), valueStart: UInt32(v), valueCount: UInt32(e - v)))
            } else {
                list.append((Common.name(name), Common.value(value)))
            }
            i = next
        }
    }

    /// Records the fields that decide framing; most names are passed over by length.
    private mutating func note(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        switch name.count {
        case 14 where Token.equalsLowercased(name, "content-length"):
            guard contentLength == nil, !value.isEmpty else { throw HTTPParserError.unexpectedContentLength }
            var n = 0
            for b in value {
                let d = b &- 0x30
                guard d < 10, n <= (Int.max - 9) / 10 else { throw HTTPParserError.invalidContentLength }
                n = n * 10 + Int(d)
            }
            contentLength = n
        case 17 where Token.equalsLowercased(name, "transfer-encoding"):
            // Several fields form one list (RFC 9110 §5.3): the last coding of the last field counts.
            var last = value.count
            while last > 0 && value[last - 1] != 0x2C { last -= 1 }
            var a = last
            while a < value.count && (value[a] == 0x20 || value[a] == 0x09) { a += 1 }
            let coding = UnsafeRawBufferPointer(rebasing: value[a...])
            transferEncoding = TransferEncoding(lastIsChunked: coding.count == 7 && Token.equalsLowercased(coding, "chunked"))
        case 10 where Token.equalsLowercased(name, "connection"):
            Token.forEachListElement(value) { t in
                if t.count == 7 && Token.equalsLowercased(t, "upgrade") { connectionUpgrade = true }
            }
        case 7 where Token.equalsLowercased(name, "upgrade"):
            hasUpgrade = true
        default:
            break
        }
    }
}

/// Eight bytes of a `UInt64` tested at once (the has-less-than and has-zero-byte word tests): each returns
/// a word whose high bit is set in the bytes that match. Whether any byte matches is exact, and so is the
/// lowest flagged byte (in memory order, the word read little-endian); bytes above the first match may be
/// flagged falsely (a borrow carries into them).
enum ByteWord {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Bytes below `bound` (at most 0x80): the subtraction borrows into the high bit of such a byte, which
    /// was clear.
    @inline(__always) static func below(_ bound: UInt8, in w: UInt64) -> UInt64 {
        (w &- ones &* UInt64(bound)) & ~w & highs
    }

    /// Bytes equal to `byte`: zero bytes after the XOR.
    @inline(__always) static func equal(_ byte: UInt8, in w: UInt64) -> UInt64 {
        let x = w ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs
    }
}

/// Byte classes of RFC 9110 §5.6.2 (tokens) and §5.5 (field values).
enum Token {
    /// tchar (letters, digits and `!#$%&'*+-.^_`|~`) as a bitmap of bytes 0–63 and 64–127.
    @inline(__always) static func isTChar(_ b: UInt8) -> Bool {
        if b < 64 { return (0x03FF_6CFA_0000_0000 as UInt64) >> b & 1 != 0 }
        return b < 128 && (0x57FF_FFFF_C7FF_FFFE as UInt64) >> (b - 64) & 1 != 0
    }

    /// `isTChar` as a table of 256 bytes (1 for a tchar): a field name's scan is one load per byte where the
    /// bitmaps took two tests and branches (~700 instructions of a proxied request's ~10 field names).
    nonisolated(unsafe) static let tcharTable: UnsafePointer<UInt8> = {
        let t = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for b in 0..<256 { t[b] = isTChar(UInt8(b)) ? 1 : 0 }
        return UnsafePointer(t)
    }()

    /// field-vchar, SP or HTAB; obs-text is allowed (§5.5).
    @inline(__always) static func isFieldValueByte(_ b: UInt8) -> Bool { b >= 0x20 ? b != 0x7F : b == 0x09 }

    /// The offset of the first byte from `from` on that is not a field-value byte (the CR ending the line,
    /// or an invalid byte), eight bytes at a time: a word's first control character or DEL is its lowest
    /// flagged byte (`ByteWord` flags no byte below the first match), found by counting trailing zeros; an
    /// HTAB there is part of the value and the scan goes on after it. The bytes after the last whole word are
    /// taken one at a time.
    @inline(__always) static func fieldValueEnd(_ p: UnsafeRawBufferPointer, from: Int) -> Int {
        var i = from
        while i &+ 8 <= p.count {
            let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let flagged = ByteWord.below(0x20, in: w) | ByteWord.equal(0x7F, in: w)
            if flagged == 0 {
                i &+= 8
                continue
            }
            let k = i &+ flagged.trailingZeroBitCount &>> 3
            if p[k] != 0x09 { return k }
            i = k &+ 1
        }
        while isFieldValueByte(p[i]) { i &+= 1 }
        return i
    }

    /// Calls `body` with each element of a comma-separated list (RFC 9110 §5.6.1), its optional whitespace
    /// trimmed, empty elements included, in place.
    @inline(__always) static func forEachListElement(_ p: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for k in 0...p.count where k == p.count || p[k] == 0x2C {
            var a = start
            var b = k
            while a < b && (p[a] == 0x20 || p[a] == 0x09) { a += 1 }
            while b > a && (p[b - 1] == 0x20 || p[b - 1] == 0x09) { b -= 1 }
            body(UnsafeRawBufferPointer(rebasing: p[a..<b]))
            start = k + 1
        }
    }

    /// Whether `p` equals the lower-case ASCII `lowercased` once its letters A–Z are folded to lower case (what
    /// `HostName.equalsIgnoringASCIICase` answers for strings): for names that are not known to be tokens.
    static func equalsFoldingCase(_ p: UnsafeRawBufferPointer, _ lowercased: UnsafeRawBufferPointer) -> Bool {
        guard p.count == lowercased.count else { return false }
        for k in 0..<p.count {
            let b = p[k]
            if (b &- 0x41 < 26 ? b | 0x20 : b) != lowercased[k] { return false }
        }
        return true
    }

    /// `equalsFoldingCase` against a literal.
    static func equalsFoldingCase(_ p: UnsafeRawBufferPointer, _ lowercased: StaticString) -> Bool {
        equalsFoldingCase(p, UnsafeRawBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount))
    }

    /// Whether `p` equals the lower-case ASCII `lowercased`, ignoring case; the lengths are known to match.
    /// (`| 0x20` folds letters and leaves every other token byte as it is: for names the parser validated.)
    static func equalsLowercased(_ p: UnsafeRawBufferPointer, _ lowercased: StaticString) -> Bool {
        let l = UnsafeRawBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount)
        guard p.count == l.count else { return false }
        for k in 0..<p.count where p[k] | 0x20 != l[k] { return false }
        return true
    }
}

/// Field names and values that most messages carry, as string literals: matching a few candidates of the same
/// length costs a fraction of making a `String` from bytes (validation, then a copy), and literals need no
/// reference counting afterwards. Names keep their case: only exact spellings match. The candidates are a switch
/// on the length rather than a table: a table of arrays (retained and released per lookup) cost 1.5k more
/// instructions per request.
enum Common {
    static func name(_ p: UnsafeRawBufferPointer) -> String {
        switch p.count {
        case 2:
            if Self.equal(p, "te") { return "te" }
        case 4:
            if Self.equal(p, "Host") { return "Host" }
            if Self.equal(p, "host") { return "host" }
            if Self.equal(p, "Date") { return "Date" }
            if Self.equal(p, "date") { return "date" }
            if Self.equal(p, "ETag") { return "ETag" }
            if Self.equal(p, "etag") { return "etag" }
            if Self.equal(p, "Vary") { return "Vary" }
            if Self.equal(p, "vary") { return "vary" }
        case 6:
            if Self.equal(p, "Accept") { return "Accept" }
            if Self.equal(p, "accept") { return "accept" }
            if Self.equal(p, "Server") { return "Server" }
            if Self.equal(p, "server") { return "server" }
            if Self.equal(p, "Cookie") { return "Cookie" }
            if Self.equal(p, "cookie") { return "cookie" }
            if Self.equal(p, "Origin") { return "Origin" }
            if Self.equal(p, "origin") { return "origin" }
        case 7:
            if Self.equal(p, "Expires") { return "Expires" }
            if Self.equal(p, "Upgrade") { return "Upgrade" }
            if Self.equal(p, "upgrade") { return "upgrade" }
            if Self.equal(p, "Referer") { return "Referer" }
        case 8:
            if Self.equal(p, "Location") { return "Location" }
            if Self.equal(p, "location") { return "location" }
        case 10:
            if Self.equal(p, "Keep-Alive") { return "Keep-Alive" }
            if Self.equal(p, "keep-alive") { return "keep-alive" }
            if Self.equal(p, "Connection") { return "Connection" }
            if Self.equal(p, "connection") { return "connection" }
            if Self.equal(p, "User-Agent") { return "User-Agent" }
            if Self.equal(p, "user-agent") { return "user-agent" }
            if Self.equal(p, "Set-Cookie") { return "Set-Cookie" }
            if Self.equal(p, "set-cookie") { return "set-cookie" }
            if Self.equal(p, "tracestate") { return "tracestate" }
        case 11:
            if Self.equal(p, "grpc-status") { return "grpc-status" }
            if Self.equal(p, "traceparent") { return "traceparent" }
            if Self.equal(p, "x-b3-spanid") { return "x-b3-spanid" }
        case 12:
            if Self.equal(p, "Content-Type") { return "Content-Type" }
            if Self.equal(p, "content-type") { return "content-type" }
            if Self.equal(p, "x-request-id") { return "x-request-id" }
            if Self.equal(p, "X-Request-Id") { return "X-Request-Id" }
            if Self.equal(p, "X-Request-ID") { return "X-Request-ID" }
            if Self.equal(p, "grpc-message") { return "grpc-message" }
            if Self.equal(p, "x-b3-traceid") { return "x-b3-traceid" }
            if Self.equal(p, "x-b3-sampled") { return "x-b3-sampled" }
        case 13:
            if Self.equal(p, "Authorization") { return "Authorization" }
            if Self.equal(p, "authorization") { return "authorization" }
            if Self.equal(p, "Accept-Ranges") { return "Accept-Ranges" }
            if Self.equal(p, "accept-ranges") { return "accept-ranges" }
            if Self.equal(p, "Last-Modified") { return "Last-Modified" }
            if Self.equal(p, "last-modified") { return "last-modified" }
            if Self.equal(p, "Cache-Control") { return "Cache-Control" }
            if Self.equal(p, "cache-control") { return "cache-control" }
        case 14:
            if Self.equal(p, "Content-Length") { return "Content-Length" }
            if Self.equal(p, "content-length") { return "content-length" }
        case 15:
            if Self.equal(p, "Accept-Encoding") { return "Accept-Encoding" }
            if Self.equal(p, "accept-encoding") { return "accept-encoding" }
            if Self.equal(p, "Accept-Language") { return "Accept-Language" }
            if Self.equal(p, "accept-language") { return "accept-language" }
            if Self.equal(p, "X-Forwarded-For") { return "X-Forwarded-For" }
            if Self.equal(p, "x-forwarded-for") { return "x-forwarded-for" }
        case 17:
            if Self.equal(p, "Transfer-Encoding") { return "Transfer-Encoding" }
            if Self.equal(p, "transfer-encoding") { return "transfer-encoding" }
            if Self.equal(p, "x-forwarded-proto") { return "x-forwarded-proto" }
            if Self.equal(p, "X-Forwarded-Proto") { return "X-Forwarded-Proto" }
            if Self.equal(p, "x-b3-parentspanid") { return "x-b3-parentspanid" }
        case 21:
            if Self.equal(p, "x-envoy-original-path") { return "x-envoy-original-path" }
        case 23:
            if Self.equal(p, "x-sextant-peer-metadata") { return "x-sextant-peer-metadata" }
        case 29:
            if Self.equal(p, "x-envoy-upstream-service-time") { return "x-envoy-upstream-service-time" }
        default: break
        }
        return String(decoding: p, as: UTF8.self)
    }

    static func value(_ p: UnsafeRawBufferPointer) -> String {
        switch p.count {
        case 1:
            if Self.equal(p, "0") { return "0" }
        case 3:
            if Self.equal(p, "*/*") { return "*/*" }
        case 4:
            if Self.equal(p, "gzip") { return "gzip" }
        case 5:
            if Self.equal(p, "close") { return "close" }
            if Self.equal(p, "bytes") { return "bytes" }
        case 7:
            if Self.equal(p, "chunked") { return "chunked" }
        case 8:
            if Self.equal(p, "identity") { return "identity" }
            if Self.equal(p, "trailers") { return "trailers" }
            if Self.equal(p, "no-cache") { return "no-cache" }
        case 9:
            if Self.equal(p, "text/html") { return "text/html" }
        case 10:
            if Self.equal(p, "keep-alive") { return "keep-alive" }
            if Self.equal(p, "text/plain") { return "text/plain" }
        case 11:
            if Self.equal(p, "istio-envoy") { return "istio-envoy" }
        case 13:
            if Self.equal(p, "gzip, deflate") { return "gzip, deflate" }
        case 16:
            if Self.equal(p, "application/json") { return "application/json" }
            if Self.equal(p, "application/grpc") { return "application/grpc" }
        default: break
        }
        return String(decoding: p, as: UTF8.self)
    }

    /// `p` holds `s`'s bytes (the lengths are known to match); the first byte turns most candidates away.
    @inline(__always) private static func equal(_ p: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        p[0] == s.utf8Start[0] && memcmp(p.baseAddress!, s.utf8Start, p.count) == 0
    }
}

extension HTTPMethod {
    /// `self == .HEAD` by the case: NIO's `HTTPMethod` is `RawRepresentable`, so `==` compares the two raw
    /// value strings (~100 instructions), and these are asked of every request or response.
    var isHEAD: Bool {
        if case .HEAD = self { return true }
        return false
    }

    /// `self == .CONNECT` by the case (see `isHEAD`).
    var isCONNECT: Bool {
        if case .CONNECT = self { return true }
        return false
    }
}
