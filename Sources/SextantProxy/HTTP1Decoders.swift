import NIOCore
import NIOHTTP1

/// Decodes HTTP/1.1 requests on a downstream connection into `HTTPServerRequestPart`s (a drop-in for
/// `ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))`): after an upgrade
/// request it stops and hands the bytes it holds to the next handler when it is removed.
///
/// When the `DownstreamHandler` right after it names itself the `sink`, parts are handed to it by a direct
/// call: no pipeline hop and no `NIOAny` box and dynamic cast per part. Errors, the close and leftover bytes
/// still travel the pipeline.
final class HTTP1RequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private let core = HTTP1DecoderCore(kind: .request)
    /// The next handler, when it takes parts directly (it clears this when it leaves the pipeline).
    var sink: DownstreamHandler?

    /// The event is handed over (`consuming`) so that a head's field list reaches the handler with one reference.
    private func deliver(_ event: consuming HTTP1Parser.Event, _ context: ChannelHandlerContext) -> Bool {
        let part: HTTPServerRequestPart
        switch consume event {
        case .requestHead(var head, let fields):
            if let sink {
                sink.receivedHead(head, fields: consume fields)
                return true
            }
            head.headers = HTTPHeaders(fields)
            part = .head(head)
        case .body(let b): part = .body(b)
        case .end(let t): part = .end(t)
        case .responseHead, .rawResponseHead: preconditionFailure("a request parser made a response head")
        }
        if let sink {
            sink.received(part)
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.read(unwrapInboundIn(data), context: context) { deliver($0, context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.inactive(context: context) { deliver($0, context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sink = nil
        core.removed(context: context)
    }
}

@available(*, unavailable)
extension HTTP1RequestDecoder: Sendable {}

/// Decodes HTTP/1.1 responses on an upstream connection into `HTTPClientResponsePart`s (a drop-in for
/// `ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))`, which drops
/// informational responses by default). `HTTP1RequestEncoder` tells it each request's method. Parts go
/// straight to the connection's `UpstreamHandler` when it is the `sink`.
final class HTTP1ResponseDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPClientResponsePart

    private let core: HTTP1DecoderCore
    /// The next handler, when it takes parts directly.
    var sink: UpstreamHandler?

    /// `rawFields` (by default: when there is a `sink`): response heads are parsed with their fields left in the
    /// bytes read (`RawFields`), which the sink takes as they are; anyone else gets them as `HTTPHeaders`.
    init(sink: UpstreamHandler? = nil, rawFields: Bool? = nil) {
        self.sink = sink
        core = HTTP1DecoderCore(kind: .response, rawResponseFields: rawFields ?? (sink != nil))
    }

    /// A request with this method went out on the connection (a response to `HEAD` has no body, a 2xx to
    /// `CONNECT` starts a tunnel).
    func requestSent(_ method: HTTPMethod) { core.methods.append(method) }

    /// The event is handed over (`consuming`) so that a head's field list reaches the handler with one reference.
    private func deliver(_ event: consuming HTTP1Parser.Event, _ context: ChannelHandlerContext) -> Bool {
        let part: HTTPClientResponsePart
        switch consume event {
        case .responseHead(var head, let fields):
            // 1xx other than 101 are dropped; the final response to the same request follows.
            if head.status.code < 200 && head.status != .switchingProtocols { return false }
            if let sink {
                sink.receivedHead(head, fields: consume fields)
                return true
            }
            head.headers = HTTPHeaders(fields)
            part = .head(head)
        case .rawResponseHead(var head, let fields):
            if head.status.code < 200 && head.status != .switchingProtocols { return false }
            if let sink {
                sink.receivedRawHead(head, fields: consume fields)
                return true
            }
            head.headers = HTTPHeaders(fields.list)
            part = .head(head)
        case .body(let b): part = .body(b)
        case .end(let t): part = .end(t)
        case .requestHead: preconditionFailure("a response parser made a request head")
        }
        if let sink {
            sink.received(part)
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        core.read(unwrapInboundIn(data), context: context) { deliver($0, context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        core.inactive(context: context) { deliver($0, context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sink = nil
        core.removed(context: context)
    }
}

@available(*, unavailable)
extension HTTP1ResponseDecoder: Sendable {}

/// What both decoders share: the bytes held between reads, re-entrant events, errors and the bytes left on
/// removal. A class so that handlers called back while it decodes (an upgrade removing the decoder, a close,
/// the next request's method) touch its other properties, never the parser being run.
final class HTTP1DecoderCore {
    private var parser: HTTP1Parser
    /// Methods of requests sent whose responses have not begun (response decoding).
    var methods: [HTTPMethod] = []
    private var methodStart = 0
    /// Bytes not yet decoded between reads: part of a head, or everything after an upgrade.
    private var pending: ByteBuffer?
    /// While a read is decoded: its bytes (the same storage the parser reads; it only moves the reader index),
    /// and where the bytes after the event being handled begin. `removed` forwards those. Kept as an index so
    /// that an event costs no retain and release of the buffer.
    private var decoding: ByteBuffer?
    private var restIndex = 0
    private var isRemoved = false
    private var isDecoding = false
    /// The channel went inactive while an event was being handled; finished when decoding stops.
    private var inactiveWhileDecoding = false
    /// The end of a message whose head `deliver` dropped (an informational response) is dropped too.
    private var dropping = false

    init(kind: HTTP1Parser.Kind, rawResponseFields: Bool = false) {
        parser = HTTP1Parser(kind: kind, rawResponseFields: rawResponseFields)
    }

    /// Decodes `data` after what was held, handing each event to `deliver` (false: the event was dropped).
    func read(_ data: ByteBuffer, context: ChannelHandlerContext, deliver: (consuming HTTP1Parser.Event) -> Bool) {
        guard !isRemoved, !inactiveWhileDecoding, parser.state != .failed else { return }
        var buffer: ByteBuffer
        if var p = pending {
            pending = nil
            var data = data
            p.writeBuffer(&data)
            buffer = p
        } else {
            buffer = data
        }
        isDecoding = true
        decoding = buffer
        do {
            try parser.decode(&buffer, nextMethod: nextMethod) { event, rest in
                if case .end = event, dropping {
                    dropping = false
                    return true
                }
                restIndex = rest.readerIndex
                if !deliver(consume event) {
                    dropping = true
                    return true
                }
                if isRemoved || inactiveWhileDecoding { return false }
                return true
            }
            isDecoding = false
            decoding = nil
        } catch {
            isDecoding = false
            decoding = nil
            context.fireErrorCaught(error)
            if inactiveWhileDecoding { inactive(context: context, deliver: deliver) }
            return
        }
        if inactiveWhileDecoding {
            // Decoding stopped after the event being handled: what follows it is what `finish` is told is left.
            if !isRemoved && buffer.readableBytes > 0 { pending = buffer }
            inactive(context: context, deliver: deliver)
        } else if !isRemoved && buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            pending = buffer
        }
    }

    private func nextMethod() -> HTTPMethod? {
        guard methodStart < methods.count else { return nil }
        let m = methods[methodStart]
        methodStart += 1
        if methodStart == methods.count {
            methods.removeAll(keepingCapacity: true)
            methodStart = 0
        }
        return m
    }

    /// The connection closed: ends a body that runs to the close, or reports a message cut short.
    func inactive(context: ChannelHandlerContext, deliver: (consuming HTTP1Parser.Event) -> Bool) {
        if isDecoding {
            inactiveWhileDecoding = true
            return
        }
        if !isRemoved {
            do {
                if let event = try parser.finish(hasBufferedBytes: (pending?.readableBytes ?? 0) > 0) {
                    _ = deliver(event)
                }
            } catch {
                // A message cut short by the peer's close is an error; one cut short by our own close (while
                // its events were being handled) is not news to anyone.
                if !inactiveWhileDecoding { context.fireErrorCaught(error) }
            }
        }
        pending = nil
        context.fireChannelInactive()
    }

    /// NIO's `.forwardBytes`: what was read but not decoded goes to the next handler.
    func removed(context: ChannelHandlerContext) {
        isRemoved = true
        if isDecoding, var rest = decoding {
            // Removed by a handler called back for an event: the bytes after that event.
            decoding = nil
            rest.moveReaderIndex(to: restIndex)
            pending = rest
        }
        if let p = pending, p.readableBytes > 0 {
            pending = nil
            context.fireChannelRead(NIOAny(p))
        }
        pending = nil
    }
}
