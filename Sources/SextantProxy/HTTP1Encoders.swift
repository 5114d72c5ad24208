import NIOCore
import NIOHTTP1
import SextantIstio
import SextantModel

/// Writes an HTTP/1.1 message head (RFC 9112 §3 request line / §4 status line, §5 field lines) into one
/// buffer sized up front, one copy per string. NIO's encoders write the same bytes with four `ByteBuffer`
/// writes per header, each checking capacity and exclusivity: about 60 writes and a tenth of the proxy's
/// instructions per request.
///
/// Framing is NIO's (`HTTPRequestEncoder`/`HTTPResponseEncoder` with `automaticallySetFramingHeaders`), the
/// behaviour the proxy was built and tested on, decided in the same pass: a message that cannot have a
/// body loses `Content-Length` and `Transfer-Encoding`; `Content-Length` wins over `Transfer-Encoding`
/// (RFC 9112 §6.3: a sender must not send both); an HTTP/1.1 message that must have a body and has no
/// `Content-Length` is sent chunked; otherwise the body is chunked when the first `Transfer-Encoding` value
/// is `chunked`. Headers are dropped by skipping them, not by editing a copy of the header list.
struct HTTP1HeadWriter {
    /// Whether the message can carry a body (NIO's `HTTPMethod.HasBody`).
    enum Body { case no, yes, unlikely }

    /// Whether the body that follows the head is sent in chunks (RFC 9112 §7.1).
    private(set) var isChunked = false

    /// The last head written, kept by its encoder once handed to the channel (`keep`): when the next head is
    /// written the channel has usually sent it and let go, so its storage is reused, not allocated again.
    private var spare: ByteBuffer?
    /// A larger buffer (a big head, or one a long body joined) is not kept for the connection's lifetime.
    static let spareLimit = 4096

    /// An empty buffer of at least `capacity` bytes: the spare one when nothing else holds it any more.
    private mutating func headBuffer(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard var b = spare else { return allocator.buffer(capacity: capacity) }
        spare = nil
        // Still queued in the channel (a write that did not complete): `clear` allocates anew, as it must.
        b.clear(minimumCapacity: capacity)
        return b
    }

    /// Keeps `buffer`, just handed to the channel, for the next head (see `spare`).
    mutating func keep(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.spareLimit { spare = buffer }
    }

    /// The request line `METHOD target HTTP/x.y` and the headers.
    mutating func request(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        request(head, fields: head.headers.map { ($0.name, $0.value) }, allocator: allocator)
    }

    /// The request line and `fields`, which are `head.headers` as the plain list they wrap, then `trace`'s
    /// fields when given (written from its IDs: the same lines `TraceContext.inject` adds as strings).
    mutating func request(
        _ head: HTTPRequestHead, fields: [(String, String)], trace: InjectedTrace? = nil, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        request(head, fields: fields, forwarded: nil, trace: trace, allocator: allocator)
    }

    /// The request line and the fields `forwarded` sends of `received` (`head.headers` is not read), then
    /// `trace`'s fields when given: the bytes `request(_:fields:trace:allocator:)` writes for
    /// `forwarded.list(received)`.
    mutating func request(
        _ head: HTTPRequestHead, received: [(String, String)], forwarded: ForwardedFields, trace: InjectedTrace? = nil,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        request(head, fields: received, forwarded: forwarded, trace: trace, allocator: allocator)
    }

    private mutating func request(
        _ head: HTTPRequestHead, fields: [(String, String)], forwarded: ForwardedFields?, trace: InjectedTrace?,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let body: Body
        switch head.method {
        case .TRACE: body = .no
        case .POST, .PUT, .PATCH: body = .yes
        default: body = .unlikely
        }
        return write(fields, forwarded: forwarded, trace: trace, body: body, version: head.version, allocator: allocator) { out in
            out.put(head.method.rawValue)
            out.byte(UInt8(ascii: " "))
            out.put(head.uri)
            out.byte(UInt8(ascii: " "))
            out.version(head.version)
        } startLineBytes: {
            head.method.rawValue.utf8.count + head.uri.utf8.count + 2 + Out.versionBytes(head.version)
        }
    }

    /// The message has no body whatever its headers say (a response to `HEAD`): nothing is framed as a chunk.
    mutating func noBody() { isChunked = false }

    /// The status line `HTTP/x.y code reason` and the headers.
    mutating func response(_ head: HTTPResponseHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        response(head, fields: head.headers.map { ($0.name, $0.value) }, allocator: allocator)
    }

    /// The status line and `fields`, which are `head.headers` as a plain list: an array read by index costs
    /// a fraction of iterating `HTTPHeaders` (no copy of each name and value), and the head is read twice
    /// (sizing, then writing).
    mutating func response(_ head: HTTPResponseHead, fields: [(String, String)], allocator: ByteBufferAllocator) -> ByteBuffer {
        let reason = head.status.reasonPhrase
        let code = Int(head.status.code)
        return write(fields, body: head.status.mayHaveResponseBody ? .yes : .no, version: head.version, allocator: allocator) { out in
            out.statusLine(head.version, code, reason)
        } startLineBytes: {
            Out.statusLineBytes(head.version, code, reason)
        }
    }

    /// The last chunk and the trailer section of a chunked message (RFC 9112 §7.1.2).
    static func trailers(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard let trailers, !trailers.isEmpty else {
            var buffer = allocator.buffer(capacity: 5)
            buffer.writeStaticString("0\r\n\r\n")
            return buffer
        }
        var size = 3 + 2
        for (name, value) in trailers { size += name.utf8.count + value.utf8.count + 4 }
        var buffer = allocator.buffer(capacity: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = Out(raw)
            out.put("0")
            out.crlf()
            for (name, value) in trailers { out.field(name, value) }
            out.crlf()
            return out.index
        }
        return buffer
    }

    /// `headers` (those `forwarded` keeps of them, then its own, when given), then `trace`'s.
    private mutating func write(
        _ headers: [(String, String)], forwarded: ForwardedFields? = nil, trace: InjectedTrace? = nil, body: Body, version: HTTPVersion,
        allocator: ByteBufferAllocator, startLine: (inout Out) -> Void, startLineBytes: () -> Int
    ) -> ByteBuffer {
        // One pass finds the framing headers and the size of everything. The proxy's own fields are never
        // framing fields.
        var size = startLineBytes() + 2 + 2 + (trace?.byteCount ?? 0) + (forwarded?.addedByteCount ?? 0)
        let dropped = forwarded?.dropped ?? 0
        var contentLength = false
        var transferEncodingIsChunked: Bool?
        var contentLengthBytes = 0
        var transferEncodingBytes = 0
        headers.withUnsafeBufferPointer { fields in
            for i in fields.indices {
                if dropped != 0 && ForwardedFields.drops(dropped, i) { continue }
                let bytes = fields[i].0.utf8.count + fields[i].1.utf8.count + 4
                size += bytes
                switch Self.framing(fields[i].0) {
                case .contentLength:
                    contentLength = true
                    contentLengthBytes += bytes
                case .transferEncoding:
                    if transferEncodingIsChunked == nil { transferEncodingIsChunked = fields[i].1 == "chunked" }
                    transferEncodingBytes += bytes
                case nil:
                    break
                }
            }
        }
        let plan = framingPlan(
            body: body, version: version, contentLength: contentLength, transferEncodingIsChunked: transferEncodingIsChunked)
        size += plan.sizeChange(contentLengthBytes: contentLengthBytes, transferEncodingBytes: transferEncodingBytes)

        var buffer = headBuffer(capacity: size, allocator: allocator)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = Out(raw)
            startLine(&out)
            out.crlf()
            headers.withUnsafeBufferPointer { fields in
                for i in fields.indices {
                    if dropped != 0 && ForwardedFields.drops(dropped, i) { continue }
                    if plan.dropping && plan.drops(Self.framing(fields[i].0)) { continue }
                    out.field(fields[i].0, fields[i].1)
                }
            }
            forwarded?.writeAdded(into: &out)
            trace?.write(into: &out)
            if plan.addChunked { out.put(Self.chunkedField) }
            out.crlf()
            return out.index
        }
        return buffer
    }

    private static let chunkedField = "transfer-encoding: chunked\r\n"

    /// What happens to a head's framing fields, decided from what it holds (see the type's comment).
    private struct FramingPlan {
        var dropContentLength = false
        var dropTransferEncoding = false
        var addChunked = false
        /// Some field present is left out.
        var dropping = false

        /// Whether a field with this framing role is left out.
        func drops(_ framing: Framing?) -> Bool {
            switch framing {
            case .contentLength: dropContentLength
            case .transferEncoding: dropTransferEncoding
            case nil: false
            }
        }

        func sizeChange(contentLengthBytes: Int, transferEncodingBytes: Int) -> Int {
            (dropContentLength ? -contentLengthBytes : 0) - (dropTransferEncoding ? transferEncodingBytes : 0)
                + (addChunked ? HTTP1HeadWriter.chunkedField.utf8.count : 0)
        }
    }

    /// Decides the framing and whether the body is sent chunked (`isChunked`).
    private mutating func framingPlan(body: Body, version: HTTPVersion, contentLength: Bool, transferEncodingIsChunked: Bool?) -> FramingPlan {
        let http11 = version.major == 1 && version.minor >= 1
        var plan = FramingPlan()
        switch body {
        case .no:
            plan.dropContentLength = true
            plan.dropTransferEncoding = true
            isChunked = false
        case .yes where !contentLength && http11:
            plan.dropTransferEncoding = true
            plan.addChunked = true
            isChunked = true
        case .yes, .unlikely:
            if contentLength {
                plan.dropTransferEncoding = true
                isChunked = false
            } else {
                isChunked = body == .unlikely && http11 && transferEncodingIsChunked == true
            }
        }
        plan.dropping = (plan.dropContentLength && contentLength) || (plan.dropTransferEncoding && transferEncodingIsChunked != nil)
        return plan
    }

    /// The status line, the received fields not dropped (copied from the bytes they were read into) and the
    /// fields the proxy `added`; `reserve` extra bytes of capacity for a body to be appended.
    mutating func response(
        _ head: HTTPResponseHead, raw: RawFields, added: ProxiedResponseFields, reserve: Int, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let reason = head.status.reasonPhrase
        let code = Int(head.status.code)
        let version = head.version
        return raw.bytes.withUnsafeReadableBytes { p in
            var size = Out.statusLineBytes(version, code, reason) + 2 + 2
            var contentLength = false
            var transferEncodingIsChunked: Bool?
            var contentLengthBytes = 0
            var transferEncodingBytes = 0
            for s in raw.spans where !s.dropped {
                let bytes = Int(s.nameCount + s.valueCount) + 4
                size += bytes
                switch Self.framing(RawFields.name(s, p)) {
                case .contentLength:
                    contentLength = true
                    contentLengthBytes += bytes
                case .transferEncoding:
                    if transferEncodingIsChunked == nil {
                        let v = RawFields.value(s, p)
                        transferEncodingIsChunked = v.elementsEqual("chunked".utf8)
                    }
                    transferEncodingBytes += bytes
                case nil:
                    break
                }
            }
            // The proxy's own fields are never framing fields.
            size += added.byteCount
            let plan = framingPlan(
                body: head.status.mayHaveResponseBody ? .yes : .no, version: version, contentLength: contentLength,
                transferEncodingIsChunked: transferEncodingIsChunked)
            size += plan.sizeChange(contentLengthBytes: contentLengthBytes, transferEncodingBytes: transferEncodingBytes)
            var buffer = headBuffer(capacity: size + reserve, allocator: allocator)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { target in
                var out = Out(target)
                out.statusLine(version, code, reason)
                out.crlf()
                // A line received as it is written (`name: value` CRLF: one space, no trailing whitespace) is
                // copied whole, and such lines that follow each other in the head as one run: a few copies
                // instead of two per field.
                var runStart = 0
                var runEnd = 0
                func putRun() {
                    if runEnd > runStart { out.put(bytes: UnsafeRawBufferPointer(rebasing: p[runStart..<runEnd])) }
                    runStart = 0
                    runEnd = 0
                }
                for s in raw.spans where !s.dropped {
                    if plan.dropping && plan.drops(Self.framing(RawFields.name(s, p))) { continue }
                    let nameStart = Int(s.nameStart)
                    let nameEnd = nameStart + Int(s.nameCount)
                    let valueEnd = Int(s.valueStart) + Int(s.valueCount)
                    if Int(s.valueStart) == nameEnd + 2 && p[nameEnd + 1] == 0x20 && p[valueEnd] == 0x0D {
                        if runEnd == runStart || nameStart != runEnd {
                            putRun()
                            runStart = nameStart
                        }
                        runEnd = valueEnd + 2
                        continue
                    }
                    putRun()
                    out.put(bytes: RawFields.name(s, p))
                    out.byte(UInt8(ascii: ":"))
                    out.byte(UInt8(ascii: " "))
                    out.put(bytes: RawFields.value(s, p))
                    out.crlf()
                }
                putRun()
                added.write(into: &out)
                if plan.addChunked { out.put(Self.chunkedField) }
                out.crlf()
                return out.index
            }
            return buffer
        }
    }

    /// The two headers that frame a message body (RFC 9112 §6).
    enum Framing { case contentLength, transferEncoding }

    /// `framing(_:)` of a name's bytes.
    static func framing(_ name: UnsafeRawBufferPointer) -> Framing? {
        switch name.count {
        case 14: return Token.equalsLowercased(name, "content-length") ? .contentLength : nil
        case 17: return Token.equalsLowercased(name, "transfer-encoding") ? .transferEncoding : nil
        default: return nil
        }
    }

    /// `Content-Length` or `Transfer-Encoding`, in any case; other names are rejected by length.
    static func framing(_ name: String) -> Framing? {
        switch name.utf8.count {
        case 14: return HostName.equalsIgnoringASCIICase(name, lowercased: "content-length") ? .contentLength : nil
        case 17: return HostName.equalsIgnoringASCIICase(name, lowercased: "transfer-encoding") ? .transferEncoding : nil
        default: return nil
        }
    }

    /// A cursor over the buffer's writable bytes; the caller sized them, so writes are not checked again (and
    /// the cursor moves with wrapping arithmetic: it stays within the sized bytes).
    struct Out {
        let base: UnsafeMutableRawBufferPointer
        var index = 0

        init(_ base: UnsafeMutableRawBufferPointer) { self.base = base }

        mutating func put(_ string: String) {
            // Contiguous UTF-8 (native and small strings) is read in place; a bridged string is copied first.
            if let n = string.utf8.withContiguousStorageIfAvailable({ put($0) }) {
                index &+= n
                return
            }
            var s = string
            index &+= s.withUTF8 { put($0) }
        }

        mutating func put(_ s: StaticString) {
            (base.baseAddress! + index).copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            index &+= s.utf8CodeUnitCount
        }

        mutating func put(bytes: UnsafeRawBufferPointer) {
            guard let from = bytes.baseAddress else { return }
            (base.baseAddress! + index).copySmall(from: from, count: bytes.count)
            index &+= bytes.count
        }

        /// Copies `bytes` at the cursor and returns their count (the caller advances). Names and values are
        /// mostly under 16 bytes: copied inline, not by a `memmove` call.
        private func put(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
            guard let from = bytes.baseAddress else { return 0 }
            (base.baseAddress! + index).copySmall(from: from, count: bytes.count)
            return bytes.count
        }

        mutating func byte(_ b: UInt8) {
            base[index] = b
            index &+= 1
        }

        /// Sixteen lower-case hex digits of `v` (`Hex.write`).
        mutating func hex16(_ v: UInt64) {
            Hex.write(v, to: base.baseAddress! + index)
            index &+= 16
        }

        mutating func crlf() {
            byte(UInt8(ascii: "\r"))
            byte(UInt8(ascii: "\n"))
        }

        mutating func field(_ name: String, _ value: String) {
            put(name)
            byte(UInt8(ascii: ":"))
            byte(UInt8(ascii: " "))
            put(value)
            crlf()
        }

        mutating func decimal(_ n: Int) {
            let digits = Self.decimalDigits(n)
            var v = n
            for i in stride(from: digits - 1, through: 0, by: -1) {
                base[index &+ i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            index &+= digits
        }

        static func decimalDigits(_ n: Int) -> Int {
            var digits = 1
            var v = n
            while v >= 10 { v /= 10; digits += 1 }
            return digits
        }

        mutating func version(_ v: HTTPVersion) {
            put("HTTP/")
            decimal(v.major)
            byte(UInt8(ascii: "."))
            decimal(v.minor)
        }

        /// `HTTP/x.y code reason` (RFC 9112 §4), without its CRLF.
        mutating func statusLine(_ version: HTTPVersion, _ code: Int, _ reason: String) {
            self.version(version)
            byte(UInt8(ascii: " "))
            decimal(code)
            byte(UInt8(ascii: " "))
            put(reason)
        }

        static func statusLineBytes(_ version: HTTPVersion, _ code: Int, _ reason: String) -> Int {
            versionBytes(version) + 1 + decimalDigits(code) + 1 + reason.utf8.count
        }

        static func versionBytes(_ v: HTTPVersion) -> Int {
            5 + decimalDigits(v.major) + 1 + decimalDigits(v.minor)
        }
    }

    /// A body part, framed as a chunk when the message is chunked (an empty part is not framed: it would
    /// end the body). The part itself is passed on uncopied between the size line and the CRLF.
    func body(_ part: IOData, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let count = part.readableBytes
        guard isChunked && count > 0 else {
            context.write(NIOAny(part), promise: promise)
            return
        }
        let digits = String(count, radix: 16)
        var prefix = context.channel.allocator.buffer(capacity: digits.utf8.count + 2)
        prefix.writeString(digits)
        prefix.writeStaticString("\r\n")
        var suffix = context.channel.allocator.buffer(capacity: 2)
        suffix.writeStaticString("\r\n")
        // A failed write fails every write queued after it, so the last one's promise speaks for all three.
        context.write(NIOAny(IOData.byteBuffer(prefix)), promise: nil)
        context.write(NIOAny(part), promise: nil)
        context.write(NIOAny(IOData.byteBuffer(suffix)), promise: promise)
    }

    /// The end of the message: the last chunk and trailers when chunked; otherwise nothing is written but
    /// the promise still completes in order behind the writes before it.
    func end(_ trailers: HTTPHeaders?, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if isChunked {
            context.write(NIOAny(IOData.byteBuffer(Self.trailers(trailers, allocator: context.channel.allocator))), promise: promise)
        } else if let promise {
            context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }
}

/// Serialises `HTTPClientRequestPart`s to HTTP/1.1 (the proxy's upstream side) through `HTTP1HeadWriter`;
/// a drop-in for NIO's `HTTPRequestEncoder` with the same framing.
final class HTTP1RequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = IOData

    private var writer = HTTP1HeadWriter()
    /// The connection's response decoder, told each request's method.
    private let responseDecoder: HTTP1ResponseDecoder?

    init(responseDecoder: HTTP1ResponseDecoder? = nil) { self.responseDecoder = responseDecoder }

    /// This handler's context while it is in a pipeline, for `send`.
    private var context: ChannelHandlerContext?
    /// The channel's allocator, read once (`context.channel` retains and releases the channel per access).
    private var allocator = ByteBufferAllocator()

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
    }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        encode(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// Flushes from this handler's place: only the handlers between it and the channel (none, or TLS) see the
    /// flush, where `channel.flush()` walks the pipeline from its tail. False when the encoder has left the
    /// pipeline.
    func flush() -> Bool {
        guard let context else { return false }
        context.flush()
        return true
    }

    /// Asks the channel for its next read from this handler's place (see `HTTP1ResponseEncoder.read()`).
    func read() -> Bool {
        guard let context else { return false }
        context.read()
        return true
    }

    /// Writes `part` as if it had come down the pipeline to this handler, without boxing it in `NIOAny` and
    /// casting it back: for the handler whose writes reach this one with nothing between (the upstream
    /// connection's owner). False when the encoder has left the pipeline; the caller writes through the
    /// channel then.
    func send(_ part: HTTPClientRequestPart, promise: EventLoopPromise<Void>? = nil, flush: Bool = false) -> Bool {
        guard let context else { return false }
        encode(part, context: context, promise: promise)
        if flush { context.flush() }
        return true
    }

    /// `send(.head(head))` for a head whose headers are what `forwarded` sends of `received`.
    func sendHead(_ head: HTTPRequestHead, received: [(String, String)], forwarded: ForwardedFields, trace: InjectedTrace? = nil) -> Bool {
        guard let context else { return false }
        responseDecoder?.requestSent(head.method)
        let buffer = writer.request(head, received: received, forwarded: forwarded, trace: trace, allocator: allocator)
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        writer.keep(buffer)
        return true
    }

    private func encode(_ part: HTTPClientRequestPart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        switch part {
        case .head(let head):
            responseDecoder?.requestSent(head.method)
            let buffer = writer.request(head, allocator: allocator)
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
            writer.keep(buffer)
        case .body(let part):
            writer.body(part, context: context, promise: promise)
        case .end(let trailers):
            writer.end(trailers, context: context, promise: promise)
        }
    }
}

@available(*, unavailable)
extension HTTP1RequestEncoder: Sendable {}

/// Serialises `HTTPServerResponsePart`s to HTTP/1.x (the proxy's downstream side) through
/// `HTTP1HeadWriter`; a drop-in for NIO's `HTTPResponseEncoder` with the same framing, by status.
///
/// A response to a `HEAD` request has no body (RFC 9110 §9.3.2, RFC 9112 §6.3), though its framing headers
/// describe the body a `GET` would get. The handler sets `respondingToHEAD` when such a request begins. The
/// head is then written as it is, body parts are dropped, and nothing ends a body: no last chunk that the client
/// would read as the start of the next response.
final class HTTP1ResponseEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    private var writer = HTTP1HeadWriter()

    /// Whether the response being written answers a `HEAD` request; reset after its end.
    var respondingToHEAD = false

    /// This handler's context while it is in a pipeline, for `send`.
    private var context: ChannelHandlerContext?
    /// The channel's allocator, read once (`context.channel` retains and releases the channel per access).
    private var allocator = ByteBufferAllocator()

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
    }
    func handlerRemoved(context: ChannelHandlerContext) {
        releaseHead(context)
        self.context = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        encode(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// A head written by `sendHead`, held back until the next part or flush so that a small body that came
    /// with it (the usual response: head and body in one read from the upstream) goes out in the same
    /// buffer, one write through NIO's channel instead of two.
    private var heldHead: ByteBuffer?
    /// Bodies up to this size join a held head; a larger one is written after it, uncopied.
    static let joinLimit = 16 * 1024

    /// `send(.head(head))` for a head whose headers are exactly `fields`, written from the plain list.
    func sendHead(_ head: HTTPResponseHead, fields: [(String, String)]) -> Bool {
        guard let context else { return false }
        releaseHead(context)
        heldHead = writer.response(head, fields: fields, allocator: allocator)
        if respondingToHEAD { writer.noBody() }
        return true
    }

    /// `sendHead` for a head whose headers are `raw`'s fields not dropped, then `added`. Room is made for a
    /// body small enough to join the head.
    func sendHead(_ head: HTTPResponseHead, raw: RawFields, added: ProxiedResponseFields) -> Bool {
        guard let context else { return false }
        releaseHead(context)
        var reserve = 0
        if !respondingToHEAD, let n = raw.contentLength, n <= Self.joinLimit { reserve = n }
        heldHead = writer.response(head, raw: raw, added: added, reserve: reserve, allocator: allocator)
        if respondingToHEAD { writer.noBody() }
        return true
    }

    /// Writes the held head, if any.
    private func releaseHead(_ context: ChannelHandlerContext) {
        guard let head = heldHead else { return }
        heldHead = nil
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        writer.keep(head)
    }

    func flush(context: ChannelHandlerContext) {
        releaseHead(context)
        context.flush()
    }

    /// `flush(context:)` called directly: the held head goes, then the flush, from this handler's place. False
    /// when the encoder has left the pipeline.
    func flush() -> Bool {
        guard let context else { return false }
        flush(context: context)
        return true
    }

    /// Asks the channel for its next read from this handler's place, next to the channel's head (or its TLS
    /// handler). With `autoRead` on, NIO asks by a pipeline `read()` from the tail after each read, which passes
    /// every handler on the way (~1,200 instructions a read; ~850 from here). A read asked for here while NIO
    /// fires the read's completion leaves one pending, so NIO's own is not made. For the connection's owner,
    /// and only while it has not paused reading (`autoRead` off). False when the encoder has left the pipeline.
    func read() -> Bool {
        guard let context else { return false }
        context.read()
        return true
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        releaseHead(context)
        context.close(mode: mode, promise: promise)
    }

    /// Writes `part` as if it had come down the pipeline to this handler, without the `NIOAny` box and cast:
    /// for `DownstreamHandler`, whose writes reach this encoder with nothing between. False when the encoder
    /// has left the pipeline.
    func send(_ part: HTTPServerResponsePart, promise: EventLoopPromise<Void>? = nil, flush: Bool = false) -> Bool {
        guard let context else { return false }
        encode(part, context: context, promise: promise)
        if flush { context.flush() }
        return true
    }

    private func encode(_ part: HTTPServerResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        switch part {
        case .head(let head):
            releaseHead(context)
            let buffer = writer.response(head, allocator: allocator)
            if respondingToHEAD { writer.noBody() }
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
            writer.keep(buffer)
        case .body(let part):
            if respondingToHEAD {
                promise?.succeed()
                return
            }
            if var head = heldHead, !writer.isChunked, case .byteBuffer(let body) = part, body.readableBytes <= Self.joinLimit {
                heldHead = nil
                head.writeImmutableBuffer(body)
                context.write(wrapOutboundOut(.byteBuffer(head)), promise: promise)
                writer.keep(head)
                return
            }
            releaseHead(context)
            writer.body(part, context: context, promise: promise)
        case .end(let trailers):
            releaseHead(context)
            writer.end(trailers, context: context, promise: promise)
            respondingToHEAD = false
        }
    }
}

@available(*, unavailable)
extension HTTP1ResponseEncoder: Sendable {}

/// The request fields sent upstream when no route edits them, kept without a list of their own: the received
/// fields but those `dropped` (hop-by-hop fields, the peer metadata between proxies, the trace context's
/// fields replaced), then the proxy's own, always in this order: its peer metadata (`peer`), `connection:
/// upgrade` and `upgrade` (`upgrade`), `te: trailers`, `x-forwarded-proto: http`. Building that list per
/// request (an array, a retain of each string kept, their releases and the array's destruction) cost ~1.5k
/// instructions a request (BENCHMARKS.md, "Reads and flushes from the encoder's place, …").
struct ForwardedFields {
    /// Bit `i` set: received field `i` is not sent. Only for lists of at most `maxReceived` fields.
    var dropped: UInt64 = 0
    var peer: String?
    var upgrade: String?
    var teTrailers = false
    var forwardedProto = false

    /// The most received fields a mask covers; longer lists are sent from a list built for them.
    static let maxReceived = 64

    /// What an exchange keeps of these from routing to sending: the mask and which of the proxy's fields go.
    /// The values (its peer metadata, the upgrade) are read again when the head is written, which keeps the
    /// exchange within the allocator's per-thread cache (`ExchangeSizeTests`).
    struct Kept {
        var dropped: UInt64 = 0
        var peer = false
        var teTrailers = false
        var forwardedProto = false
    }

    init() {}

    init(_ kept: Kept, peer: String?, upgrade: String?) {
        dropped = kept.dropped
        self.peer = kept.peer ? peer : nil
        self.upgrade = upgrade
        teTrailers = kept.teTrailers
        forwardedProto = kept.forwardedProto
    }

    /// Received field `i`'s bit in a mask (`i < maxReceived`).
    @inline(__always) static func bit(_ i: Int) -> UInt64 { 1 &<< UInt64(i) }

    @inline(__always) static func drops(_ dropped: UInt64, _ i: Int) -> Bool { dropped & bit(i) != 0 }

    mutating func drop(_ i: Int) { dropped |= Self.bit(i) }

    /// The proxy's fields, in the order they are sent.
    var added: [(String, String)] {
        var out: [(String, String)] = []
        if let peer { out.append((PeerMetadata.header, peer)) }
        if let upgrade {
            out.append(("connection", "upgrade"))
            out.append(("upgrade", upgrade))
        }
        if teTrailers { out.append(("te", "trailers")) }
        if forwardedProto { out.append(("x-forwarded-proto", "http")) }
        return out
    }

    /// The fields sent, as a list (for an HTTP/2 upstream, a mirror, and tests).
    func list(_ received: [(String, String)]) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(received.count + 5)
        for i in received.indices where !Self.drops(dropped, i) { out.append(received[i]) }
        return out + added
    }

    /// The size of the proxy's field lines.
    var addedByteCount: Int {
        var n = 0
        if let peer { n += PeerMetadata.header.utf8.count + peer.utf8.count + 4 }
        if let upgrade { n += Self.connectionUpgrade.utf8CodeUnitCount + 9 + upgrade.utf8.count + 2 }
        if teTrailers { n += Self.teTrailersLine.utf8CodeUnitCount }
        if forwardedProto { n += Self.forwardedProtoLine.utf8CodeUnitCount }
        return n
    }

    private static let connectionUpgrade: StaticString = "connection: upgrade\r\n"
    private static let teTrailersLine: StaticString = "te: trailers\r\n"
    private static let forwardedProtoLine: StaticString = "x-forwarded-proto: http\r\n"

    /// Writes the proxy's field lines (`addedByteCount` bytes).
    func writeAdded(into out: inout HTTP1HeadWriter.Out) {
        if let peer { out.field(PeerMetadata.header, peer) }
        if let upgrade {
            out.put(Self.connectionUpgrade)
            out.field("upgrade", upgrade)
        }
        if teTrailers { out.put(Self.teTrailersLine) }
        if forwardedProto { out.put(Self.forwardedProtoLine) }
    }
}

extension ProxiedResponseFields {
    private static let serviceTimePrefix: StaticString = "x-envoy-upstream-service-time: "
    private static let serverLine: StaticString = "server: istio-envoy\r\n"
    private static let closeLine: StaticString = "connection: close\r\n"

    /// The size of the field lines.
    var byteCount: Int {
        var n = Self.serviceTimePrefix.utf8CodeUnitCount + HTTP1HeadWriter.Out.decimalDigits(serviceMilliseconds) + 2
        n += Self.serverLine.utf8CodeUnitCount
        if let peer { n += PeerMetadata.header.utf8.count + peer.utf8.count + 4 }
        if close { n += Self.closeLine.utf8CodeUnitCount }
        return n
    }

    /// Writes the field lines (`byteCount` bytes), as `list` has them.
    func write(into out: inout HTTP1HeadWriter.Out) {
        if let peer { out.field(PeerMetadata.header, peer) }
        out.put(Self.serviceTimePrefix)
        out.decimal(serviceMilliseconds)
        out.crlf()
        out.put(Self.serverLine)
        if close { out.put(Self.closeLine) }
    }
}
