import NIOCore
import NIOHTTP1
import SextantIstio
import SextantModel

#if canImport(Glibc)
import Glibc
#endif

/// One downstream HTTP/1.1 connection: routes each request, applies the route's faults, retries and
/// timeouts, forwards it over a pooled upstream connection and streams the response back.
///
/// NIO's pipelining handler in front of it delivers one request at a time, so the handler holds at
/// most one `Exchange`. Everything runs on the connection's event loop.
final class DownstreamHandler: ChannelInboundHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let shared: ProxyShared
    let kind: ListenerKind
    /// The inbound listener's fixed cluster (the local app), nil on outbound listeners.
    let inboundCluster: ClusterRuntime?
    var pool: UpstreamPool!
    var context: ChannelHandlerContext!
    var exchange: Exchange?
    var remoteAddress: String?
    var localAddress: String?
    /// The port this connection arrived on (a gateway routes a request without one in its authority by it).
    private var listenerPort = 80
    var remoteIP: String?
    /// The client proxy's SPIFFE ID on a mesh-mTLS inbound connection.
    var downstreamPrincipal: String?
    /// The connection's names for its requests' records (`remoteAddress`, `localAddress`, `downstreamPrincipal`).
    private var recordDownstream = ProxyRecord.Downstream.none
    var random = FastRandom()
    /// Whether reading from the downstream is paused (backpressure), so `autoRead` changes only on a change.
    var readPaused = false
    /// The downstream channel's writability, as `channelWritabilityChanged` last reported it (a channel starts
    /// writable): read on every request, where asking the channel is a call through its protocol and a load
    /// of an atomic in another object.
    private var downstreamWritable = true
    /// Parts of pipelined requests waiting for the current response to finish.
    var pipelined: [HTTPServerRequestPart] = []
    var pipelinedBytes = 0
    /// `peerHeader(for:)`'s last answer.
    private var lastPeerHeader: (cluster: ClusterRuntime?, value: String)?
    /// The last request's route when it was a service's own (no VirtualService), with the snapshot and
    /// authority it was found for and the request port: such a route depends on nothing else, and a
    /// keep-alive connection's requests mostly name one authority (splitting it and looking the host up cost
    /// ~900 instructions).
    private var lastServiceRoute: LastRoute?

    /// The last service route this connection's requests took, by snapshot and authority (a class: reading a
    /// tuple's fields out of an optional retained and released each of them).
    private final class LastRoute {
        let snapshot: ProxySnapshot
        let authority: String
        let route: CompiledRoute
        let port: Int

        init(snapshot: ProxySnapshot, authority: String, route: CompiledRoute, port: Int) {
            self.snapshot = snapshot
            self.authority = authority
            self.route = route
            self.port = port
        }
    }
    /// The cluster this connection's last request went to, with the snapshot, route, destination index and
    /// port it was found by: keep-alive connections mostly go to one, and comparing those costs less than
    /// hashing the cluster key.
    private var lastClusterSnapshot: ProxySnapshot?
    private var lastClusterRoute: CompiledRoute?
    private var lastClusterDestination = 0
    private var lastClusterPort = 0
    private var lastCluster: ClusterRuntime?
    /// The HTTP/1 connection's request decoder when it calls `received` directly (nil on HTTP/2 streams).
    private var requestDecoder: HTTP1RequestDecoder?
    /// Whether an HTTP/1 read is being handled: upstream writes made meanwhile are flushed once, when the read
    /// completes, instead of once per part (each flush is a walk through NIO's channel even with nothing queued).
    private var reading = false
    /// The upstream connection written to during this read and not flushed yet.
    private var unflushed: UpstreamConnection?
    /// The HTTP/1 connection's response encoder (nil on HTTP/2 streams), told which responses answer `HEAD`.
    private var responseEncoder: HTTP1ResponseEncoder?
    /// Response parts were written and not flushed: flushed when the upstream read that brought them is
    /// handled, so that a response streams through as it arrives (a response's end flushes at once).
    private var downstreamUnflushed = false

    init(shared: ProxyShared, kind: ListenerKind, inboundCluster: ClusterRuntime?) {
        self.shared = shared
        self.kind = kind
        self.inboundCluster = inboundCluster
    }

    /// Per-request state. A class so that timers and pool callbacks can refer to the same request.
    final class Exchange {
        var head: HTTPRequestHead
        var record: ProxyRecord
        let started: NIODeadline
        let snapshot: ProxySnapshot
        var route: CompiledRoute?
        var cluster: ClusterRuntime?
        /// The request line sent upstream; its headers too when `forwarded` is nil (see
        /// `DownstreamHandler.upstreamHeadWithFields`).
        var upstreamHead: HTTPRequestHead?
        /// When nothing edits the fields sent upstream: which of `fields` go and which of the proxy's are added
        /// (`upstreamHead.headers` is empty then; `DownstreamHandler.forwardedFields` makes the whole).
        var forwarded: ForwardedFields.Kept?
        /// The trace context's fields, when they follow the `forwarded` fields (written by the encoder from the
        /// IDs) instead of being in `upstreamHead.headers`: made from `trace` and two flags.
        var upstreamTrace: InjectedTrace? {
            guard injectsTrace, let trace else { return nil }
            return InjectedTrace(context: trace, b3: injectsB3)
        }
        /// `upstreamTrace` is written after the list, replacing a single `b3` header when `injectsB3`.
        var injectsTrace = false
        var injectsB3 = false
        /// The picked destination's index in `route`, for its response header edits.
        var destinationIndex = -1
        /// The response header edits of the route's picked destination (none without a route).
        var responseHeaderOps: HeaderOperations.Operations {
            guard let route, destinationIndex >= 0 else { return HeaderOperations.Operations() }
            return route.responseOperations[destinationIndex]
        }
        /// `responseHeaderOps` is not empty; read once, when the destination is picked.
        var editsResponse = false
        var corsOrigin: String? {
            get { rare?.corsOrigin }
            set { if newValue != nil || rare != nil { rareFields().corsOrigin = newValue } }
        }
        /// Request body parts kept for (re)sending; emptied once streaming past `retryBufferBytes`.
        var parts: [ByteBuffer] = []
        var partsBytes = 0
        var canRetry = true
        var requestComplete = false
        var keepAlive: Bool
        /// Set when a local reply went out before the request body was read: ignore the rest, then close.
        var replied = false
        var attempt = 0
        var maxTries = 1
        var retryOn = RetryOn.istioDefault
        var perTryTimeout: Duration? {
            get { rare?.perTryTimeout }
            set { if newValue != nil || rare != nil { rareFields().perTryTimeout = newValue } }
        }
        var timeout: Duration? {
            get { rare?.timeout }
            set { if newValue != nil || rare != nil { rareFields().timeout = newValue } }
        }
        var tried = EndpointSet()
        var endpointIndex: Int?
        var connection: UpstreamConnection?
        var waiterID: Int?
        /// Bumped per attempt so that stale timers and callbacks are ignored.
        var generation = 0
        /// Set by each attempt (the first one started in the same read as the request reuses `started`).
        var attemptStart: NIODeadline = .uptimeNanoseconds(0)
        var responding = false
        var globalTimer: Scheduled<Void>? {
            get { rare?.globalTimer }
            set { if newValue != nil || rare != nil { rareFields().globalTimer = newValue } }
        }
        var tryTimer: Scheduled<Void>? {
            get { rare?.tryTimer }
            set { if newValue != nil || rare != nil { rareFields().tryTimer = newValue } }
        }
        var hash: UInt64?
        var activeCounted = false
        var endpointActive: EndpointState?
        var mirror: (ClusterKey, String)? {
            get { rare?.mirror }
            set { if newValue != nil || rare != nil { rareFields().mirror = newValue } }
        }
        /// An HTTP/1.1 `Upgrade` request (WebSocket): on 101 both connections become a byte relay.
        var upgrade: String? {
            get { rare?.upgrade }
            set { if newValue != nil || rare != nil { rareFields().upgrade = newValue } }
        }
        /// The upstream's 101, held until its end is read.
        var upgradeHead: HTTPResponseHead? {
            get { rare?.upgradeHead }
            set { if newValue != nil || rare != nil { rareFields().upgradeHead = newValue } }
        }
        /// `content-type: application/grpc*`: messages are counted for Istio's gRPC metrics.
        var isGRPC: Bool { record.isGRPC }
        /// This hop's trace context when tracing is on.
        var trace: TraceContext?
        /// The request's hop-by-hop fields (its `Connection` tokens read once).
        let hop: HopByHop
        /// gRPC status moved out of a Trailers-Only response head (see `upstreamRead`).
        var trailersFromHead: HTTPHeaders? {
            get { rare?.trailersFromHead }
            set { if newValue != nil || rare != nil { rareFields().trailersFromHead = newValue } }
        }

        /// The fields most requests leave nil (timeouts and their timers, a mirror, an upgrade, CORS, gRPC
        /// trailers moved out of a head), kept apart and made on the first set: inline they made the exchange
        /// 1,384 bytes, over the 1,032 that glibc's per-thread cache serves, so each request's allocation and
        /// free took the allocator's slow paths.
        final class Rare {
            var corsOrigin: String?
            var perTryTimeout: Duration?
            var timeout: Duration?
            var globalTimer: Scheduled<Void>?
            var tryTimer: Scheduled<Void>?
            var mirror: (ClusterKey, String)?
            var upgrade: String?
            var upgradeHead: HTTPResponseHead?
            var trailersFromHead: HTTPHeaders?
        }
        private var rare: Rare?

        private func rareFields() -> Rare {
            if let rare { return rare }
            let r = Rare()
            rare = r
            return r
        }

        /// `head.headers` as the plain list they wrap, read by index where every request reads them (see
        /// `HTTP1Parser.Event`). Whoever edits `head.headers` sets this again.
        var fields: [(String, String)]

        /// Takes the head and the record over (`consuming`): copying a `ProxyRecord` retains each of its fields.
        init(
            head: consuming HTTPRequestHead, fields: [(String, String)], hop: HopByHop, record: consuming ProxyRecord,
            snapshot: ProxySnapshot
        ) {
            self.hop = hop
            self.keepAlive = hop.isKeepAlive(version: head.version)
            self.fields = fields
            self.head = head
            self.record = record
            self.snapshot = snapshot
            self.started = .now()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        downstreamWritable = context.channel.isWritable
        pool = shared.pools.pool(for: context.eventLoop)
        remoteAddress = context.channel.remoteAddress.map(Self.format)
        let local = context.channel.localAddress
        localAddress = local.map(Self.format)
        listenerPort = local?.port ?? 80
        remoteIP = context.channel.remoteAddress?.ipAddress
        responseEncoder = try? context.pipeline.syncOperations.handler(type: HTTP1ResponseEncoder.self)
        // The HTTP/1 decoder right before this handler hands parts over by direct calls.
        if let decoder = try? context.pipeline.syncOperations.handler(type: HTTP1RequestDecoder.self) {
            decoder.sink = self
            requestDecoder = decoder
        }
        // Only the inbound listener terminates mesh TLS.
        if kind != .outbound, shared.meshTLS != nil { downstreamPrincipal = MeshPeerIdentityHandler.principal(of: context) }
        recordDownstream = ProxyRecord.Downstream(remoteAddress: remoteAddress, localAddress: localAddress, peerPrincipal: downstreamPrincipal)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        requestDecoder?.sink = nil
        requestDecoder = nil
    }

    /// Writes a response part: straight into the HTTP/1 encoder when there is one (no `NIOAny` box and cast),
    /// else down the pipeline (HTTP/2 streams).
    private func respond(_ part: HTTPServerResponsePart, flush: Bool = false) {
        downstreamUnflushed = !flush
        if let e = responseEncoder, e.send(part, flush: flush) { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
    }

    /// `%PROTOCOL%` without building a string per request.
    static func protocolName(_ v: HTTPVersion) -> String {
        switch (v.major, v.minor) {
        case (1, 1): return "HTTP/1.1"
        case (2, _): return "HTTP/2"
        case (1, 0): return "HTTP/1.0"
        default: return "HTTP/\(v.major).\(v.minor)"
        }
    }

    static func format(_ a: SocketAddress) -> String {
        guard let ip = a.ipAddress, let port = a.port else { return "\(a)" }
        return ip.utf8.contains(UInt8(ascii: ":")) ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { received(unwrapInboundIn(data)) }

    /// A request part, from the pipeline or straight from `HTTP1RequestDecoder`.
    func received(_ part: HTTPServerRequestPart) {
        if requestDecoder != nil { reading = true }
        if mustHold {
            hold(part)
        } else {
            deliver(part)
        }
    }

    /// A request head straight from `HTTP1RequestDecoder`: its `headers` are empty, its fields are the list
    /// (handed over, for `begin` to edit in place).
    func receivedHead(_ head: HTTPRequestHead, fields: consuming [(String, String)]) {
        reading = true
        if mustHold {
            var head = head
            head.headers = HTTPHeaders(fields)
            hold(.head(head))
        } else {
            begin(head, fields: consume fields)
        }
    }

    /// HTTP/1.1 pipelining: a request that arrives while the previous response is still going out waits
    /// (NIO's pipelining helper would do this too, but by toggling read interest on every request, which
    /// costs two `epoll_ctl` calls per request).
    private var mustHold: Bool { !pipelined.isEmpty || (exchange?.requestComplete ?? false) }

    private func hold(_ part: HTTPServerRequestPart) {
        pipelined.append(part)
        if case .body(let b) = part { pipelinedBytes += b.readableBytes }
        if pipelined.count > 64 || pipelinedBytes > shared.limits.retryBufferBytes { pauseDownstream(true) }
    }

    /// Hands the requests that waited behind a finished response to `deliver`, in order.
    private func drainPipelined() {
        while exchange == nil || !(exchange!.requestComplete), !pipelined.isEmpty {
            let part = pipelined.removeFirst()
            if case .body(let b) = part { pipelinedBytes -= b.readableBytes }
            deliver(part)
            if context == nil || !context.channel.isActive { return }
        }
        if pipelined.isEmpty && readPaused && exchange?.connection == nil { pauseDownstream(false) }
    }

    private func deliver(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            begin(head, fields: head.headers.map { ($0.name, $0.value) })
        case .body(let buffer):
            guard let x = exchange, !x.replied else { return }
            x.record.bytesReceived += buffer.readableBytes
            if x.isGRPC { x.record.requestMessages.consume(buffer) }
            if let c = x.connection {
                c.send(.body(.byteBuffer(buffer)))
                flushUpstream(c)
                keepForRetry(buffer, in: x)
            } else {
                // Not connected yet (routing, fault delay, connecting, retry back-off): hold the part.
                x.parts.append(buffer)
                x.partsBytes += buffer.readableBytes
                if x.partsBytes > shared.limits.retryBufferBytes {
                    // Stop reading until an upstream connection takes what is held.
                    pauseDownstream(true)
                }
            }
        case .end:
            guard let x = exchange else { return }
            x.requestComplete = true
            if x.replied {
                finish(x)
                return
            }
            if let c = x.connection {
                c.send(.end(nil))
                flushUpstream(c)
            }
            startTimers(x)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        if let c = unflushed {
            unflushed = nil
            c.flush()
        } else if requestDecoder == nil {
            exchange?.connection?.flush()
        }
        // The next read is asked for next to the channel's head (`HTTP1ResponseEncoder.read()`), not by NIO's
        // walk from the tail; not while reading is paused.
        if !readPaused, let e = responseEncoder { _ = e.read() }
    }

    /// Flushes the upstream connection now, or at the end of the read being handled.
    private func flushUpstream(_ c: UpstreamConnection) {
        if reading {
            unflushed = c
        } else {
            c.flush()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        reading = false
        if let c = unflushed {
            unflushed = nil
            c.flush()
        }
        guard let x = exchange else { return }
        x.record.responseFlags.insert(.downstreamConnectionTermination)
        abandonUpstream(x)
        complete(x)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        downstreamWritable = writable
        if let c = exchange?.connection { c.pauseReading(!writable) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? HTTPParserError {
            let tooLarge = e == .headerOverflow
            if exchange == nil || !(exchange!.responding) {
                localReplyAndClose(status: tooLarge ? .requestHeaderFieldsTooLarge : .badRequest, flags: .downstreamProtocolError)
                return
            }
        }
        context.close(promise: nil)
    }

    /// Stops or resumes reading the downstream connection (only when that changes: each change is an
    /// `epoll_ctl` system call).
    private func pauseDownstream(_ pause: Bool) {
        guard pause != readPaused else { return }
        readPaused = pause
        context.channel.setOption(ChannelOptions.autoRead, value: !pause).whenComplete { _ in }
    }

    // MARK: Routing

    /// Starts an exchange for a request head. `fields` are its headers as a list, handed over by the decoder
    /// (for HTTP/2 and held pipelined requests, made from `head.headers`).
    private func begin(_ received: HTTPRequestHead, fields: consuming [(String, String)]) {
        let snapshot = shared.state.snapshot
        var head = received
        // Edits below go to `fields` alone, uniquely held: the head gets them back as one `HTTPHeaders` after.
        head.headers = [:]
        // One pass over the fields reads all that every request needs, by index (no copy of each name and
        // value, as `HTTPHeaders` lookups and iteration make): a second scan per name cost more than the rest
        // of routing.
        var hop = HopByHop()
        var authority = ""
        var requestIDAt: Int?
        var peerAt: Int?
        var expectAt: Int?
        var upgrade: String?
        var connectionUpgrade = false
        var contentTypeSeen = false
        var isGRPC = false
        var traceFields = TraceContext.Fields()
        var known = ProxyRecord.KnownRequestFields()
        // False when the noted indexes cannot stand: past 16 bits (an HTTP/2 head of that many fields), or
        // moved by a removal below.
        var notes = shared.notesRequestFields && fields.count <= Int(Int16.max)
        var headerBytes = 0
        for i in fields.indices {
            headerBytes += fields[i].0.utf8.count + fields[i].1.utf8.count + 4
            switch fields[i].0.utf8.count {
            case 4 where authority.isEmpty && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "host"):
                authority = fields[i].1
            case 6 where expectAt == nil && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "expect"):
                expectAt = i
            case 7 where upgrade == nil && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "upgrade"):
                upgrade = fields[i].1
            case 10 where HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "connection"):
                hop.noteConnection(fields[i].1)
                if !connectionUpgrade && fields[i].1.lowercased().contains("upgrade") { connectionUpgrade = true }
            case 12 where requestIDAt == nil && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "x-request-id"):
                requestIDAt = i
            case 12 where !contentTypeSeen && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "content-type"):
                contentTypeSeen = true
                isGRPC = fields[i].1.hasPrefix("application/grpc")
            case 10 where notes && known.userAgent < 0 && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "user-agent"):
                known.userAgent = Int16(i)
            case 15 where notes && known.forwardedFor < 0 && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "x-forwarded-for"):
                known.forwardedFor = Int16(i)
            case 21 where notes && known.originalPath < 0 && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: "x-envoy-original-path"):
                known.originalPath = Int16(i)
            case PeerMetadata.header.utf8.count where peerAt == nil
                && HostName.equalsIgnoringASCIICase(fields[i].0, lowercased: PeerMetadata.header):
                peerAt = i
            default:
                traceFields.note(fields[i].0, at: i)
            }
        }
        // Read before the edits below move fields.
        let incoming = shared.tracer == nil ? nil : TraceContext.extract(fields, at: traceFields)
        var requestID = requestIDAt.map { fields[$0].1 } ?? ""
        if requestID.isEmpty {
            requestID = RequestID.make(using: &random)
            if let i = requestIDAt {
                // `HTTPHeaders.set`: the first takes the value; later ones (all empty? any) go.
                fields[i].1 = requestID
                var k = fields.count - 1
                while k > i {
                    if HostName.equalsIgnoringASCIICase(fields[k].0, lowercased: "x-request-id") {
                        fields.remove(at: k)
                        // The indexes noted after it moved.
                        notes = false
                    }
                    k -= 1
                }
            } else {
                fields.append(("x-request-id", requestID))
            }
        }
        let requestFields = copy fields
        let peer = peerAt.map { fields[$0].1 }
        // Envoy answers `Expect: 100-continue` itself and does not forward it.
        let expectContinue = expectAt.map { fields[$0].1.lowercased() == "100-continue" } ?? false
        if peer != nil || expectContinue {
            // Identity headers are between proxies only: never forwarded to apps or further hops.
            fields.removeAll {
                (peer != nil && HostName.equalsIgnoringASCIICase($0.0, lowercased: PeerMetadata.header))
                    || (expectContinue && HostName.equalsIgnoringASCIICase($0.0, lowercased: "expect"))
            }
        }
        head.headers = HTTPHeaders(copy fields)
        // The record is made in the call, so that it is moved into the exchange, not copied (a copy retains
        // each of its fields), and filled in there.
        let x = Exchange(
            head: head, fields: fields, hop: hop,
            record: ProxyRecord(
                direction: kind == .outbound ? ProxyRecord.Direction.outbound : .inbound, startUnixNanos: WallClock.nowNanos(),
                method: head.method.rawValue, path: head.uri, protocolName: Self.protocolName(head.version), authority: authority,
                requestFields: requestFields),
            snapshot: snapshot)
        x.record.requestID = requestID
        if notes { x.record.knownRequestFields = known }
        x.record.isGRPC = isGRPC
        x.record.downstream = recordDownstream
        exchange = x
        // Whichever way this request is answered, the response has no body if it is a HEAD; the encoder
        // forgets it after the response's end, before the next request begins.
        responseEncoder?.respondingToHEAD = x.head.method.isHEAD
        if let tracer = shared.tracer {
            let sampled = incoming?.2 ?? (Double.random(in: 0..<100, using: &random) < tracer.settings.samplingPercent)
            var traceID = incoming?.0 ?? TraceID(high: random.next(), low: random.next())
            if !traceID.isValid { traceID = TraceID(high: 1, low: random.next()) }
            let spanID = SpanID(random.next() | 1)
            x.trace = TraceContext(traceID: traceID, spanID: spanID, parentSpanID: incoming?.1, sampled: sampled, traceState: incoming?.3)
            x.record.traceID = traceID
            x.record.spanID = spanID
        }
        if let peer, kind != .outbound { x.record.peer = PeerMetadata(headerValue: peer) }
        if x.head.version.major == 1, let upgrade, connectionUpgrade {
            x.upgrade = upgrade
            // The decoder stops parsing after an upgrade request: this connection ends with this exchange
            // unless it becomes a relay.
            x.keepAlive = false
        }

        if headerBytes > shared.limits.maxRequestHeaderBytes {
            localReply(x, status: .requestHeaderFieldsTooLarge, body: "", flags: .downstreamProtocolError, details: "request_headers_too_large")
            return
        }
        if expectContinue {
            respond(.head(HTTPResponseHead(version: x.head.version, status: .continue)), flush: true)
        }

        // RequestAuthentication: a gateway checks what it accepts, a sidecar what reaches its workload.
        var claims: [String: [String]] = [:]
        if let jwt = snapshot.jwt, kind != .outbound || snapshot.table.identity.mode == .gateway {
            switch jwt.authenticate(headers: x.head.headers, uri: head.uri, now: Double(WallClock.nowNanos()) / 1e9) {
            case .none:
                break
            case .invalid(let reason):
                var extra = HTTPHeaders()
                extra.add(name: "www-authenticate", value: "Bearer realm=\"http://\(authority)\(head.uri.split(separator: "?").first ?? "")\", error=\"invalid_token\"")
                let detail = reason.replacingOccurrences(of: " ", with: "_")
                localReply(x, status: .unauthorized, body: reason, flags: [], details: "jwt_authn_access_denied{\(detail)}", extra: extra)
                return
            case .valid(let v):
                claims = v.claims
                if !v.rule.forwardOriginalToken, let h = v.header { x.head.headers.remove(name: h) }
                for (header, claim) in v.rule.outputClaimToHeaders {
                    if let values = v.claims[claim], !values.isEmpty { x.head.headers.replaceOrAdd(name: header, value: values.joined(separator: ",")) }
                }
                if let h = v.rule.outputPayloadToHeader { x.head.headers.replaceOrAdd(name: h, value: String(v.payloadBase64)) }
                x.fields = x.head.headers.map { ($0.name, $0.value) }
            }
        }

        if case .inbound = kind {
            guard let cluster = inboundCluster else { return }
            x.cluster = cluster
            x.maxTries = 1
            x.record.destination = cluster.inboundDestination
            x.record.routeName = "default"
            x.upstreamHead = upstreamHead(for: x, route: nil, destinationRequest: nil)
            startAttempt(x, now: x.started)
            return
        }

        let route: CompiledRoute
        let requestPort: Int
        if let last = lastServiceRoute, last.snapshot === snapshot, last.authority == authority {
            route = last.route
            requestPort = last.port
        } else {
            let (authorityHost, authorityPort) = HostName.splitAuthority(authority)
            requestPort = authorityPort ?? (snapshot.table.identity.mode == .gateway ? listenerPort : 80)
            // The full routing head is made only for a VirtualService's rules to match.
            let decision = snapshot.table.route(host: authorityHost, port: requestPort) {
                RequestHead(
                    authority: authority, path: head.uri, method: head.method.rawValue, scheme: "http",
                    headers: snapshot.routingNeedsHeaders ? x.fields.map { (name: $0.0, value: $0.1) } : [],
                    port: requestPort, sourceLabels: snapshot.table.identity.labels,
                    sourceNamespace: snapshot.table.identity.namespace, claims: claims, host: authorityHost)
            }
            guard case .route(let r, _) = decision else {
                localReply(x, status: .notFound, body: "", flags: .noRouteFound, details: "route_not_found")
                return
            }
            route = r
            lastServiceRoute = r.virtualService == nil ? LastRoute(snapshot: snapshot, authority: authority, route: r, port: requestPort) : nil
        }
        x.route = route
        x.record.routeName = route.name

        // The rule is read in place (`route.rule.…`): a local copy retained each of its fields.
        if let cors = route.rule.corsPolicy, let origin = x.head.headers.first(name: "origin") {
            if cors.allowOrigins.contains(where: { $0.matches(origin) }) {
                x.corsOrigin = origin
                if head.method == .OPTIONS, x.head.headers.contains(name: "access-control-request-method") {
                    var extra = HTTPHeaders()
                    extra.add(name: "access-control-allow-origin", value: origin)
                    if !cors.allowMethods.isEmpty { extra.add(name: "access-control-allow-methods", value: cors.allowMethods.joined(separator: ",")) }
                    if !cors.allowHeaders.isEmpty { extra.add(name: "access-control-allow-headers", value: cors.allowHeaders.joined(separator: ",")) }
                    if let age = cors.maxAge { extra.add(name: "access-control-max-age", value: "\(age.components.seconds)") }
                    if cors.allowCredentials == true { extra.add(name: "access-control-allow-credentials", value: "true") }
                    localReply(x, status: .ok, body: "", flags: [], details: "cors_response", extra: extra)
                    return
                }
            }
        }
        if let direct = route.rule.directResponse {
            localReply(x, status: .init(statusCode: direct.status), bytes: direct.body ?? [], flags: [], details: "direct_response")
            return
        }
        if let redirect = route.rule.redirect {
            let (host, port) = HostName.splitAuthority(authority)
            var location = "\(redirect.scheme ?? "http")://\(redirect.authority ?? host)"
            if let p = redirect.port ?? (redirect.authority == nil ? port : nil) { location += ":\(p)" }
            location += redirect.uri ?? head.uri
            var extra = HTTPHeaders()
            extra.add(name: "location", value: location)
            localReply(x, status: .init(statusCode: redirect.redirectCode), body: "", flags: [], details: "direct_response", extra: extra)
            return
        }
        guard let pickedAt = route.pick(random: Int.random(in: 0..<100, using: &random)),
            let cluster = cluster(route, pickedAt, requestPort: requestPort, in: snapshot)
        else {
            localReply(x, status: .serviceUnavailable, body: "", flags: .noClusterFound, details: "cluster_not_found")
            return
        }
        x.cluster = cluster
        x.record.destination = cluster.outboundDestination
        x.destinationIndex = pickedAt
        x.editsResponse = !route.responseOperations[pickedAt].isEmpty
        x.upstreamHead = upstreamHead(for: x, route: route, destinationRequest: route.destinationRequestOperations[pickedAt])
        x.timeout = route.rule.timeout.flatMap { $0 > .zero ? $0 : nil }
        if let r = route.rule.retries {
            x.maxTries = 1 + r.attempts
            x.retryOn = r.retryOn
            x.perTryTimeout = r.perTryTimeout
        } else {
            // Istio's default retry policy for routes without `retries`.
            x.maxTries = 3
        }
        if x.upgrade != nil {
            x.maxTries = 1
            x.canRetry = false
        }
        if case .consistentHash = cluster.policy { x.hash = hashKey(cluster.policy, x) }
        if let m = route.mirror, Double.random(in: 0..<100, using: &random) < (route.rule.mirrorPercentage ?? 100) {
            x.mirror = (m, authority)
        }

        if let fault = route.rule.fault {
            if let delay = fault.delay, Double.random(in: 0..<100, using: &random) < delay.percentage {
                x.record.responseFlags.insert(.delayInjected)
                let generation = x.generation
                context.eventLoop.assumeIsolated().scheduleTask(in: delay.fixedDelay.timeAmount) { [self] in
                    guard exchange === x, x.generation == generation else { return }
                    afterDelay(x, fault: fault)
                }
                return
            }
            afterDelay(x, fault: fault)
            return
        }
        startAttempt(x, now: x.started)
    }

    private func afterDelay(_ x: Exchange, fault: HTTPFault) {
        if let abort = fault.abort, Double.random(in: 0..<100, using: &random) < abort.percentage {
            switch abort.kind {
            case .httpStatus(let code):
                localReply(x, status: .init(statusCode: code), body: "fault filter abort", flags: .faultInjected, details: "fault_filter_abort")
            case .grpcStatus(let name):
                var extra = HTTPHeaders()
                extra.add(name: "content-type", value: "application/grpc")
                extra.add(name: "grpc-status", value: "\(GRPCStatusName.code(name) ?? 2)")
                extra.add(name: "grpc-message", value: "fault filter abort")
                localReply(x, status: .ok, body: "", flags: .faultInjected, details: "fault_filter_abort", extra: extra)
            }
            return
        }
        startAttempt(x)
    }

    private func hashKey(_ policy: LoadBalancerSettings, _ x: Exchange) -> UInt64? {
        guard case .consistentHash(let key, _) = policy else { return nil }
        switch key {
        case .header(let name):
            return x.head.headers.first(name: name).map { StableHash.hash($0) }
        case .cookie(let name, _, _):
            for cookie in x.head.headers["cookie"] {
                for pair in cookie.split(separator: ";") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, kv[0].trimmingPrefixSpaces == name { return StableHash.hash(kv[1]) }
                }
            }
            return nil
        case .sourceIP:
            return remoteIP.map { StableHash.hash($0) }
        case .queryParameter(let name):
            let rh = RequestHead(authority: "", path: x.head.uri, method: "")
            return rh.query(name).map { StableHash.hash($0) }
        }
    }

    /// `snapshot.cluster(key, requestPort:)`, remembered for the next request of the connection.
    private func cluster(_ route: CompiledRoute, _ destination: Int, requestPort: Int, in snapshot: ProxySnapshot) -> ClusterRuntime? {
        // Compared by identity: the route belongs to the snapshot, so the same route, destination and port
        // name the same cluster (the key's strings are neither copied nor compared).
        if lastClusterSnapshot === snapshot, lastClusterRoute === route, lastClusterDestination == destination,
            lastClusterPort == requestPort, let c = lastCluster
        {
            return c
        }
        let c = snapshot.cluster(route.destinations[destination].cluster, requestPort: requestPort)
        lastClusterSnapshot = snapshot
        lastClusterRoute = route
        lastClusterDestination = destination
        lastClusterPort = requestPort
        lastCluster = c
        return c
    }

    /// This workload's identity header for requests to `cluster` (it names the destination service),
    /// kept for the connection's last cluster: keep-alive connections mostly go to one.
    private func peerHeader(for cluster: ClusterRuntime?) -> String {
        if let cached = lastPeerHeader, cached.cluster === cluster { return cached.value }
        var me = shared.me
        me.service = cluster?.cluster.key.host
        me.servicePort = cluster?.cluster.key.port
        let value = me.headerValue
        lastPeerHeader = (cluster, value)
        return value
    }

    /// The request as sent upstream: hop-by-hop headers removed, route header edits and rewrites applied.
    /// When nothing edits the fields (the usual case), they are kept as `x.forwarded` over the received list
    /// for the encoder to write from, and the trace context's fields are left to the encoder too
    /// (`x.upstreamTrace`); the returned head has no headers then (`forwardedHead`).
    private func upstreamHead(for x: Exchange, route: CompiledRoute?, destinationRequest: HeaderOperations.Operations?) -> HTTPRequestHead {
        let gatewayIP = x.snapshot.table.identity.mode == .gateway ? remoteIP : nil
        let edits = gatewayIP != nil || route?.editsRequest == true || destinationRequest != nil
        if !edits && x.fields.count <= ForwardedFields.maxReceived { return forwardedHead(x) }
        // The list sent upstream, with room for what is added later: what `forwardedHead` keeps as a mask,
        // built. `HTTPHeaders` edits would scan the list once per name and check every added name for ASCII.
        x.forwarded = nil
        let trace = x.trace
        var fields: [(String, String)] = []
        fields.reserveCapacity(x.fields.count + 12)
        let sorted = sortForwarded(x) { i, sent in if sent { fields.append(x.fields[i]) } }
        fields += forwardedFields(x, sorted.kept).added
        // Edits made below see (and may change) the trace context's fields, so they go into the list as
        // strings (`forwardedHead` has the encoder write them from the IDs).
        x.injectsTrace = false
        if let trace { trace.inject(into: &fields, b3: sorted.hadB3) }
        var headers = HTTPHeaders(fields)
        if let ip = gatewayIP {
            if let xff = headers.first(name: "x-forwarded-for") {
                headers.replaceOrAdd(name: "x-forwarded-for", value: "\(xff), \(ip)")
            } else {
                headers.add(name: "x-forwarded-for", value: ip)
            }
        }
        var rewritten: String?
        if let rule = route?.rule {
            if let rw = rule.rewrite {
                if let newURI = rw.uri {
                    let uri = x.head.uri
                    headers.replaceOrAdd(name: "x-envoy-original-path", value: uri)
                    rewritten = Self.rewrite(uri, matched: rule.match.first?.uri, with: newURI)
                }
                if let a = rw.authority {
                    headers.replaceOrAdd(name: "host", value: a)
                }
            }
            if !rule.headers.request.isEmpty {
                Self.apply(rule.headers.request, to: &headers)
            }
        }
        if let d = destinationRequest {
            Self.apply(d, to: &headers)
        }
        if edits { headers.removeIfPresent(name: "transfer-encoding") }
        if rewritten == nil && x.head.version == .http1_1 {
            // The received head's method, target and version go on unchanged: its storage is shared.
            var h = x.head
            h.headers = headers
            return h
        }
        return HTTPRequestHead(version: .http1_1, method: x.head.method, uri: rewritten ?? x.head.uri, headers: headers)
    }

    /// `upstreamHead` when nothing edits the fields (the usual case): the same fields go, but as `x.forwarded`
    /// over the received list, which the encoder writes from; the trace context's fields are written from
    /// the IDs after them. The head returned has no headers (`upstreamHeadWithFields` has them).
    private func forwardedHead(_ x: Exchange) -> HTTPRequestHead {
        var dropped: UInt64 = 0
        var sorted = sortForwarded(x) { i, sent in if !sent { dropped |= ForwardedFields.bit(i) } }
        sorted.kept.dropped = dropped
        x.forwarded = sorted.kept
        x.injectsTrace = x.trace != nil
        x.injectsB3 = sorted.hadB3
        var head = x.head
        head.headers = [:]
        if head.version != .http1_1 { head.version = .http1_1 }
        return head
    }

    /// One pass over the received fields, by index, says of each whether it is sent upstream (`body(i, sent)`):
    /// hop-by-hop fields, the peer metadata between proxies (outbound) and the trace context's fields that the
    /// proxy replaces are not. Returns which of the proxy's own fields are added (its `dropped` left 0), and
    /// whether the request carried a single `b3` field (replaced only then).
    private func sortForwarded(_ x: Exchange, _ body: (Int, Bool) -> Void) -> (kept: ForwardedFields.Kept, hadB3: Bool) {
        let hop = x.hop
        let tracing = x.trace != nil
        let replacesTraceState = x.trace?.traceState != nil
        var kept = ForwardedFields.Kept()
        var forwardedProto = false
        var hadB3 = false
        for i in x.fields.indices {
            if hop.contains(x.fields[i].0) {
                // `TE: trailers` is the one TE value HTTP/2 allows, and gRPC requires it end to end.
                if HostName.equalsIgnoringASCIICase(x.fields[i].0, lowercased: "te")
                    && HostName.equalsIgnoringASCIICase(x.fields[i].1, lowercased: "trailers")
                {
                    kept.teTrailers = true
                }
                body(i, false)
                continue
            }
            // Lengths first: most names are none of these, and a comparison call costs more than the count.
            let n = x.fields[i].0.utf8.count
            if kind == .outbound && n == PeerMetadata.header.utf8.count
                && HostName.equalsIgnoringASCIICase(x.fields[i].0, lowercased: PeerMetadata.header)
            {
                body(i, false)
                continue
            }
            if tracing && TraceContext.isInjected(x.fields[i].0, replacingTraceState: replacesTraceState) {
                if n == 2 { hadB3 = true }
                body(i, false)
                continue
            }
            if !forwardedProto && n == 17 && HostName.equalsIgnoringASCIICase(x.fields[i].0, lowercased: "x-forwarded-proto") {
                forwardedProto = true
            }
            body(i, true)
        }
        kept.peer = kind == .outbound
        kept.forwardedProto = !forwardedProto
        return (kept, hadB3)
    }

    /// The fields `x.forwarded` sends, with the values of the proxy's own.
    private func forwardedFields(_ x: Exchange, _ kept: ForwardedFields.Kept) -> ForwardedFields {
        ForwardedFields(kept, peer: kept.peer ? peerHeader(for: x.cluster) : nil, upgrade: x.upgrade)
    }

    /// The head sent upstream with its headers, whichever way they are kept.
    private func upstreamHeadWithFields(_ x: Exchange) -> HTTPRequestHead? {
        guard var head = x.upstreamHead else { return nil }
        if let kept = x.forwarded { head.headers = HTTPHeaders(forwardedFields(x, kept).list(x.fields)) }
        return head
    }

    /// Envoy's `prefix_rewrite`: the matched prefix is replaced; for exact/regex matches, the whole path.
    static func rewrite(_ uri: String, matched: StringMatch?, with replacement: String) -> String {
        if case .prefix(let p) = matched, uri.hasPrefix(p) {
            return replacement + uri.dropFirst(p.count)
        }
        let query = uri.firstIndex(of: "?").map { String(uri[$0...]) } ?? ""
        return replacement + query
    }

    static func apply(_ ops: HeaderOperations.Operations, to headers: inout HTTPHeaders) {
        for (n, v) in ops.set { headers.replaceOrAdd(name: n, value: v) }
        for (n, v) in ops.add { headers.add(name: n, value: v) }
        for n in ops.remove { headers.remove(name: n) }
    }

    // MARK: Attempts

    /// `now`: when the caller already read the clock in this same event (the request's first attempt).
    private func startAttempt(_ x: Exchange, now: NIODeadline? = nil) {
        guard let cluster = x.cluster else { return }
        x.attempt += 1
        x.generation += 1
        x.record.attempts = x.attempt
        guard let index = cluster.pick(hash: x.hash, tried: x.tried, now: .now, random: &random) else {
            localReply(x, status: .serviceUnavailable, body: "no healthy upstream", flags: .noHealthyUpstream, details: "no_healthy_upstream")
            return
        }
        if !x.activeCounted {
            guard ClusterRuntime.tryIncrement(cluster.activeRequests, limit: cluster.maxRequests) else {
                overflow(x)
                return
            }
            x.activeCounted = true
        }
        x.endpointIndex = index
        x.tried.insert(index)
        let endpoint = cluster.endpoints[index]
        x.record.upstreamHost = endpoint.key
        x.record.upstreamLabels = endpoint.endpoint.labels
        let generation = x.generation
        x.attemptStart = now ?? .now()
        let http2 = upstreamHTTP2(cluster, x)
        if !http2, let idle = pool.takeIdle(endpoint) {
            attach(x, idle)
            return
        }
        let acquired = pool.acquire(cluster: cluster, endpoint: endpoint, http2: http2) { [self] result in
            guard exchange === x, x.generation == generation else {
                if case .success(let c) = result { pool.release(c, reusable: true) }
                return
            }
            x.waiterID = nil
            switch result {
            case .success(let c): attach(x, c)
            case .failure(let error): connectFailed(x, error)
            }
        }
        switch acquired {
        case .ready(let c): attach(x, c)
        case .pending(let waiterID): x.waiterID = waiterID
        case .overflow: overflow(x)
        }
    }

    /// Istio's protocol selection for the upstream side: the port's protocol (`GRPC`, `HTTP2` → HTTP/2;
    /// `HTTP` → HTTP/1.1), else the protocol the client used.
    private func upstreamHTTP2(_ cluster: ClusterRuntime, _ x: Exchange) -> Bool {
        switch cluster.cluster.protocolName {
        case .grpc, .http2: return true
        case .http: return false
        default: return x.head.version.major == 2
        }
    }

    private func overflow(_ x: Exchange) {
        localReply(
            x, status: .serviceUnavailable, body: "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            flags: .upstreamOverflow, details: "upstream_reset_before_response_started{overflow}")
    }

    private func connectFailed(_ x: Exchange, _ error: any Error) {
        if let i = x.endpointIndex { x.cluster?.record(endpoint: i, status: nil, now: .now) }
        x.record.upstreamTransportFailureReason = "\(error)"
        if x.retryOn.connectFailure && x.attempt < x.maxTries && x.canRetry {
            retryLater(x)
            return
        }
        // A failed TLS handshake names BoringSSL's reason, as Envoy's `TLS_error` transport failure does.
        let tls = (error as? UpstreamTLSError).map { ",TLS_error:\($0.reason)" } ?? ""
        let transport = (error as? UpstreamTLSError).map { ", transport failure reason: TLS_error:\($0.reason)" } ?? ""
        localReply(
            x, status: .serviceUnavailable,
            body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure\(transport)",
            flags: .upstreamConnectionFailure, details: "upstream_reset_before_response_started{connection_failure\(tls)}")
    }

    private func attach(_ x: Exchange, _ c: UpstreamConnection) {
        x.connection = c
        c.delegate = self
        x.record.upstreamLocalAddress = c.localAddressText
        x.record.upstreamPeerPrincipal = c.peerPrincipal
        if let e = x.endpointIndex, let cluster = x.cluster {
            x.endpointActive = cluster.endpoints[e]
            cluster.endpoints[e].active.add(1, ordering: .relaxed)
        }
        guard let head = x.upstreamHead else { return }
        if let kept = x.forwarded {
            c.sendHead(head, received: x.fields, forwarded: forwardedFields(x, kept), trace: x.upstreamTrace)
        } else {
            c.send(.head(head))
        }
        for p in x.parts { c.send(.body(.byteBuffer(p))) }
        dropRetryBufferIfFull(x)
        if x.requestComplete {
            c.send(.end(nil))
            flushUpstream(c)
            startTryTimer(x)
        } else {
            flushUpstream(c)
            pauseDownstream(false)
        }
        c.pauseReading(!downstreamWritable)
    }

    /// Keeps a body part for retries while the body fits the retry buffer; past it, the request
    /// streams through and can no longer be retried or mirrored.
    private func keepForRetry(_ buffer: ByteBuffer, in x: Exchange) {
        guard x.canRetry else { return }
        x.parts.append(buffer)
        x.partsBytes += buffer.readableBytes
        dropRetryBufferIfFull(x)
    }

    private func dropRetryBufferIfFull(_ x: Exchange) {
        if x.partsBytes > shared.limits.retryBufferBytes {
            x.canRetry = false
            x.parts = []
            x.partsBytes = 0
        }
    }

    private func startTimers(_ x: Exchange) {
        if let t = x.timeout, x.globalTimer == nil {
            x.globalTimer = context.eventLoop.assumeIsolated().scheduleTask(in: t.timeAmount) { [self] in
                guard exchange === x else { return }
                globalTimeout(x)
            }
        }
        if x.connection != nil { startTryTimer(x) }
    }

    private func startTryTimer(_ x: Exchange) {
        guard let t = x.perTryTimeout, t > .zero else { return }
        x.tryTimer?.cancel()
        let generation = x.generation
        x.tryTimer = context.eventLoop.assumeIsolated().scheduleTask(in: t.timeAmount) { [self] in
            guard exchange === x, x.generation == generation, !x.responding else { return }
            if let i = x.endpointIndex { x.cluster?.record(endpoint: i, status: 504, now: .now) }
            abandonUpstream(x)
            if (x.retryOn.fiveXX || x.retryOn.gatewayError || x.retryOn.reset) && x.attempt < x.maxTries && x.canRetry {
                retryLater(x)
            } else {
                x.record.responseFlags.insert(.upstreamRequestTimeout)
                localReply(x, status: .gatewayTimeout, body: "upstream request timeout", flags: .upstreamRequestTimeout, details: "upstream_per_try_timeout")
            }
        }
    }

    private func globalTimeout(_ x: Exchange) {
        abandonUpstream(x)
        if x.responding {
            x.record.responseFlags.insert(.upstreamRequestTimeout)
            context.close(promise: nil)
            return
        }
        localReply(x, status: .gatewayTimeout, body: "upstream request timeout", flags: .upstreamRequestTimeout, details: "response_timeout")
    }

    /// Retries after Envoy's jittered exponential back-off (base 25 ms, capped at 250 ms).
    private func retryLater(_ x: Exchange) {
        x.generation += 1
        let generation = x.generation
        let base = shared.limits.retryBackoffBase
        let ceiling = min(shared.limits.retryBackoffMax, base * (1 << min(x.attempt, 10)))
        let nanos = Int64(Double(ceiling.timeAmount.nanoseconds) * Double.random(in: 0..<1, using: &random))
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanos)) { [self] in
            guard exchange === x, x.generation == generation else { return }
            startAttempt(x)
        }
    }

    /// Lets go of the current upstream connection mid-exchange: it cannot be reused (HTTP/1.1 has no
    /// way to cancel one request), so it is closed.
    private func abandonUpstream(_ x: Exchange) {
        x.tryTimer?.cancel()
        x.tryTimer = nil
        if let id = x.waiterID, let cluster = x.cluster {
            pool.cancelWaiter(id, cluster: cluster)
            x.waiterID = nil
        }
        releaseEndpoint(x)
        guard let c = x.connection else { return }
        x.connection = nil
        c.delegate = nil
        c.channel.close(promise: nil)
    }

    /// Moves the gRPC status headers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`) out of a
    /// response head into the trailers that carry them on HTTP/2.
    static func moveGRPCStatus(from headers: inout HTTPHeaders) -> HTTPHeaders {
        var trailers = HTTPHeaders()
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            for v in headers[name] { trailers.add(name: name, value: v) }
            headers.remove(name: name)
        }
        return trailers
    }

    /// Gives back the least-request slot the exchange holds on its endpoint, if any.
    private func releaseEndpoint(_ x: Exchange) {
        x.endpointActive?.active.subtract(1, ordering: .relaxed)
        x.endpointActive = nil
    }

    // MARK: Upstream events

    func upstreamHead(_ head: consuming HTTPResponseHead, fields: consuming [(String, String)], from c: UpstreamConnection) {
        guard let x = exchange, x.connection === c else { return }
        responseHead(head, fields: fields, x, c)
    }

    /// A final response head's fate: false when its status is retried (the attempt is abandoned and another
    /// scheduled); otherwise the exchange is responding and the record has the status.
    private func acceptResponse(_ x: Exchange, status: Int, grpcStatus: Int?) -> Bool {
        if x.retryOn.retries(status: status, grpcStatus: grpcStatus) && x.canRetry {
            if x.attempt < x.maxTries {
                abandonUpstream(x)
                retryLater(x)
                return false
            }
            if x.maxTries > 1 { x.record.responseFlags.insert(.upstreamRetryLimitExceeded) }
        }
        x.tryTimer?.cancel()
        x.responding = true
        x.record.responseCode = status
        x.record.grpcStatus = grpcStatus.map { "\($0)" }
        x.record.responseCodeDetails = "via_upstream"
        return true
    }

    /// The fields the proxy adds to every response it forwards (`ProxiedResponseFields`), `connection: close`
    /// aside.
    private func proxyFields(_ x: Exchange) -> ProxiedResponseFields {
        ProxiedResponseFields(peer: kind != .outbound ? shared.meHeader : nil, serviceMilliseconds: x.record.upstreamServiceMilliseconds)
    }

    /// The usual HTTP/1 response head, its fields left in the bytes read: `responseHead`'s decisions, made on
    /// the bytes. The head sent on is the received fields, less the dropped ones, copied from those bytes, then
    /// the proxy's own. Heads that need other edits (header operations, CORS, an HTTP/2 client, an upgrade)
    /// take `responseHead` with the fields as strings.
    func upstreamRawHead(_ head: consuming HTTPResponseHead, fields: consuming RawFields, from c: UpstreamConnection) {
        guard let x = exchange, x.connection === c else { return }
        guard head.status.code >= 200, x.head.version.major < 2, x.corsOrigin == nil, responseEncoder != nil,
            !x.editsResponse
        else {
            responseHead(head, fields: fields.list, x, c)
            return
        }
        x.record.upstreamServiceNanoseconds = Int64((NIODeadline.now() - x.attemptStart).nanoseconds)
        let status = Int(head.status.code)
        var raw = consume fields
        // One pass reads `Connection` (its tokens name more hop-by-hop fields) and the first `grpc-status`.
        var hop = HopByHop()
        var grpcStatus: Int?
        raw.bytes.withUnsafeReadableBytes { p in
            var grpcStatusSeen = false
            for s in raw.spans {
                switch UpstreamResponseField(RawFields.name(s, p)) {
                case .connection:
                    hop.noteConnection(bytes: RawFields.value(s, p))
                case .grpcStatus where !grpcStatusSeen:
                    grpcStatusSeen = true
                    grpcStatus = Int(String(decoding: RawFields.value(s, p), as: UTF8.self))
                default:
                    break
                }
            }
        }
        if let i = x.endpointIndex { x.cluster?.record(endpoint: i, status: status, now: .now) }
        guard acceptResponse(x, status: status, grpcStatus: grpcStatus) else { return }
        // Hop-by-hop fields, the upstream's `server`, its peer header and service time are dropped in place.
        var peer: String?
        raw.bytes.withUnsafeReadableBytes { p in
            raw.spans.withUnsafeMutableBufferPointer { spans in
                for i in spans.indices {
                    let name = RawFields.name(spans[i], p)
                    if hop.contains(bytes: name) {
                        spans[i].dropped = true
                        continue
                    }
                    switch UpstreamResponseField(name) {
                    case .peerMetadata:
                        if peer == nil { peer = String(decoding: RawFields.value(spans[i], p), as: UTF8.self) }
                        spans[i].dropped = true
                    case .server, .serviceTime:
                        spans[i].dropped = true
                    default:
                        break
                    }
                }
            }
        }
        if let peer, kind == .outbound { x.record.peer = PeerMetadata(headerValue: peer) }
        var added = proxyFields(x)
        added.close = !x.keepAlive
        if !hop.isKeepAlive(version: head.version) { c.requestsServed = Int.max - 1 }
        var h = head
        if h.version != x.head.version { h.version = x.head.version }
        // `added` has the proxy's service time; the upstream's was dropped above.
        x.record.responseFields = .proxied(raw, added: added)
        if responseEncoder?.sendHead(h, raw: raw, added: added) ?? false {
            downstreamUnflushed = true
        } else {
            h.headers = HTTPHeaders(raw.list + added.list)
            respond(.head(h))
        }
    }

    func upstreamRead(_ part: HTTPClientResponsePart, from c: UpstreamConnection) {
        guard let x = exchange, x.connection === c else { return }
        switch part {
        case .head(let head):
            responseHead(head, fields: head.headers.map { ($0.name, $0.value) }, x, c)
        case .body(let b):
            guard x.responding else { return }
            x.record.bytesSent += b.readableBytes
            if x.isGRPC { x.record.responseMessages.consume(b) }
            respond(.body(.byteBuffer(b)))
            if !downstreamWritable {
                c.pauseReading(true)
            }
        case .end(let trailers):
            if let g = trailers?.first(name: "grpc-status") { x.record.grpcStatus = g }
            if let head = x.upgradeHead {
                switchToRelay(x, c, head)
                return
            }
            guard x.responding else { return }
            let reusable = x.requestComplete && c.requestsServed < Int.max - 1
            x.connection = nil
            releaseEndpoint(x)
            pool.release(c, reusable: reusable)
            sendMirror(x)
            respond(.end(trailers ?? x.trailersFromHead), flush: true)
            if !x.requestComplete {
                // The upstream answered before the request body was all sent: the rest cannot be
                // skipped reliably on this connection, so it closes after the response (as Envoy does).
                x.keepAlive = false
            }
            finish(x)
        }
    }

    /// The upstream's response head: a retry, or the head sent downstream.
    /// `fields` are the received head's (its `headers` may be empty); the head and its fields are handed over
    /// and edited in place into the head sent on.
    private func responseHead(_ head: consuming HTTPResponseHead, fields: consuming [(String, String)], _ x: Exchange, _ c: UpstreamConnection) {
        x.record.upstreamServiceNanoseconds = Int64((NIODeadline.now() - x.attemptStart).nanoseconds)
        let status = Int(head.status.code)
        // One pass reads `Connection` and `grpc-status`, by index.
        var hop = HopByHop()
        var grpcStatus: Int?
        var grpcStatusSeen = false
        for i in fields.indices {
            switch UpstreamResponseField(fields[i].0) {
            case .connection:
                hop.noteConnection(fields[i].1)
            case .grpcStatus where !grpcStatusSeen:
                grpcStatusSeen = true
                grpcStatus = Int(fields[i].1)
            default:
                break
            }
        }
        if let i = x.endpointIndex { x.cluster?.record(endpoint: i, status: status, now: .now) }

        if head.status == .switchingProtocols, x.upgrade != nil {
            // The decoder still delivers the 101's end; the relay takes over after it.
            x.upgradeHead = HTTPResponseHead(version: head.version, status: head.status, headers: HTTPHeaders(fields))
            return
        }
        if head.status.code >= 100 && head.status.code < 200 { return }
        guard acceptResponse(x, status: status, grpcStatus: grpcStatus) else { return }
        // The response head sent downstream, edited in place from the received list (the decoder reserved
        // room for the proxy's fields): hop-by-hop fields, the upstream's identity and the fields the proxy
        // sets go, keeping the others' order; the proxy's are appended.
        // (`removeAll(where:)` copied each field out for its predicate; this moves the kept ones.)
        var peer: String?
        let kept = fields.withUnsafeMutableBufferPointer { list in
            var kept = 0
            for i in list.indices {
                if hop.contains(list[i].0) { continue }
                switch UpstreamResponseField(list[i].0) {
                case .peerMetadata:
                    if peer == nil { peer = list[i].1 }
                case .server, .serviceTime:
                    break
                default:
                    if kept != i { list.swapAt(kept, i) }
                    kept += 1
                }
            }
            return kept
        }
        if kept < fields.count { fields.removeSubrange(kept...) }
        if let peer, kind == .outbound { x.record.peer = PeerMetadata(headerValue: peer) }
        fields += proxyFields(x).list
        let upstreamVersion = head.version
        var h = head
        if h.version != x.head.version { h.version = x.head.version }
        h.headers = HTTPHeaders(copy fields)
        // Whether `h.headers` still are `fields` (the usual case), so the encoder can write from the list.
        var edited = false
        let ops = x.responseHeaderOps
        if !ops.set.isEmpty || !ops.add.isEmpty || !ops.remove.isEmpty {
            Self.apply(ops, to: &h.headers)
            edited = true
        }
        if let origin = x.corsOrigin, let cors = x.route?.rule.corsPolicy {
            h.headers.replaceOrAdd(name: "access-control-allow-origin", value: origin)
            if !cors.exposeHeaders.isEmpty { h.headers.replaceOrAdd(name: "access-control-expose-headers", value: cors.exposeHeaders.joined(separator: ",")) }
            if cors.allowCredentials == true { h.headers.replaceOrAdd(name: "access-control-allow-credentials", value: "true") }
            edited = true
        }
        if !x.keepAlive && x.head.version.major < 2 {
            h.headers.replaceOrAdd(name: "connection", value: "close")
            edited = true
        }
        if x.head.version.major == 2, h.headers.contains(name: "grpc-status") {
            // A gRPC "Trailers-Only" response (one HEADERS frame with END_STREAM) reaches us as a head
            // and an empty end; the status goes out as trailers so the client still finds it there.
            x.trailersFromHead = Self.moveGRPCStatus(from: &h.headers)
            edited = true
        }
        if !hop.isKeepAlive(version: upstreamVersion) { c.requestsServed = Int.max - 1 }
        x.record.responseHeaders = h.headers
        if edited || !(responseEncoder?.sendHead(h, fields: fields) ?? false) {
            respond(.head(h))
        } else {
            downstreamUnflushed = true
        }
    }

    /// The upstream accepted the upgrade: forward its 101, then replace the HTTP codecs on both
    /// connections by a `RawRelay` pair. Bytes either side already read past the handshake are forwarded
    /// by the decoders as they are removed.
    private func switchToRelay(_ x: Exchange, _ c: UpstreamConnection, _ head: HTTPResponseHead) {
        x.tryTimer?.cancel()
        x.globalTimer?.cancel()
        var h = HTTPResponseHead(version: x.head.version, status: .switchingProtocols, headers: head.headers)
        h.headers.replaceOrAdd(name: "server", value: "istio-envoy")
        x.record.responseCode = 101
        x.record.responseCodeDetails = "via_upstream"
        x.record.responseHeaders = h.headers
        respond(.head(h), flush: true)
        x.connection = nil
        c.delegate = nil
        releaseEndpoint(x)
        x.keepAlive = true
        complete(x)
        let (down, up) = RawRelay.pair()
        do {
            let u = c.channel.pipeline.syncOperations
            let d = context.pipeline.syncOperations
            // Relays first; then the encoders go (the relays write raw bytes); then the decoders, which
            // hand the bytes they hold past the handshake to the relays as they are removed. The upstream
            // handler stays last, so the connection's close still reaches the pool.
            try u.addHandler(up, position: .before(try u.handler(type: UpstreamHandler.self)))
            try d.addHandler(down, position: .before(self))
            u.removeHandler(try u.handler(type: HTTP1RequestEncoder.self), promise: nil)
            d.removeHandler(try d.handler(type: HTTP1ResponseEncoder.self), promise: nil)
            d.removeHandler(try d.handler(type: HTTP1RequestDecoder.self), promise: nil)
            u.removeHandler(try u.handler(type: HTTP1ResponseDecoder.self), promise: nil)
        } catch {
            c.channel.close(promise: nil)
            context.close(promise: nil)
            return
        }
        pauseDownstream(false)
        c.pauseReading(false)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func upstreamClosed(_ c: UpstreamConnection) {
        guard let x = exchange, x.connection === c else { return }
        x.connection = nil
        c.delegate = nil
        releaseEndpoint(x)
        x.tryTimer?.cancel()
        if x.responding {
            x.record.responseFlags.insert(.upstreamConnectionTermination)
            context.close(promise: nil)
            return
        }
        if let i = x.endpointIndex { x.cluster?.record(endpoint: i, status: nil, now: .now) }
        // A reused keep-alive connection the upstream closed just as we sent on it: resend once, as a
        // fresh connection would have been used had the close been seen first.
        let staleKeepAlive = c.requestsServed > 0 && x.canRetry
        if (x.retryOn.reset || staleKeepAlive) && x.attempt < x.maxTries + (staleKeepAlive ? 1 : 0) && x.canRetry {
            retryLater(x)
            return
        }
        localReply(
            x, status: .serviceUnavailable,
            body: "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            flags: .upstreamConnectionTermination, details: "upstream_reset_before_response_started{connection_termination}")
    }

    func upstreamReadComplete(_ c: UpstreamConnection) {
        guard downstreamUnflushed, context != nil else { return }
        downstreamUnflushed = false
        if let e = responseEncoder, e.flush() { return }
        context.flush()
    }

    func upstreamWritabilityChanged(_ c: UpstreamConnection, writable: Bool) {
        guard let x = exchange, x.connection === c else { return }
        pauseDownstream(!writable)
    }

    // MARK: Mirroring

    /// Sends a copy of the request to the mirror cluster with `-shadow` appended to the authority, as
    /// Envoy's request mirroring does; the answer is read and dropped.
    private func sendMirror(_ x: Exchange) {
        guard let (key, authority) = x.mirror, x.canRetry, var head = upstreamHeadWithFields(x) else { return }
        x.mirror = nil
        if let trace = x.upstreamTrace { head = trace.adding(to: head) }
        guard let cluster = x.snapshot.cluster(key, requestPort: HostName.splitAuthority(authority).port ?? 80),
            let index = cluster.pick(hash: nil, tried: [], now: .now, random: &random)
        else { return }
        let (host, port) = HostName.splitAuthority(authority)
        head.headers.replaceOrAdd(name: "host", value: port.map { "\(host)-shadow:\($0)" } ?? "\(host)-shadow")
        let shadow = ShadowRequest(pool: pool, head: head, body: x.parts)
        shadow.start(cluster: cluster, endpoint: cluster.endpoints[index], http2: upstreamHTTP2(cluster, x))
    }

    // MARK: Replies

    private func localReply(
        _ x: Exchange, status: HTTPResponseStatus, body: String, flags: ResponseFlags, details: String, extra: HTTPHeaders = [:]
    ) {
        localReply(x, status: status, bytes: Array(body.utf8), flags: flags, details: details, extra: extra)
    }

    private func localReply(
        _ x: Exchange, status: HTTPResponseStatus, bytes: [UInt8], flags: ResponseFlags, details: String, extra: HTTPHeaders = [:]
    ) {
        abandonUpstream(x)
        x.globalTimer?.cancel()
        x.generation += 1
        x.record.responseFlags.formUnion(flags)
        x.record.responseCode = Int(status.code)
        x.record.responseCodeDetails = details
        var h = HTTPResponseHead(version: x.head.version, status: status)
        if !bytes.isEmpty && !extra.contains(name: "content-type") { h.headers.add(name: "content-type", value: "text/plain") }
        h.headers.add(name: "content-length", value: "\(bytes.count)")
        h.headers.add(contentsOf: extra)
        h.headers.add(name: "server", value: "istio-envoy")
        // A reply sent before the request's end closes the connection: the rest of a body cannot be skipped
        // reliably. Without a body (most replies at the head: no route, fault aborts, redirects) the end
        // follows the head at once and is dropped when it comes, as the exchange is over; the connection stays
        // open, as Envoy keeps it. A protocol error closes it regardless.
        let nothingFollows = x.requestComplete
            || (x.head.version.major < 2 && !flags.contains(.downstreamProtocolError) && Self.hasNoBody(x.head))
        if (!nothingFollows || !x.keepAlive) && x.head.version.major < 2 {
            x.keepAlive = false
            h.headers.add(name: "connection", value: "close")
        }
        if let origin = x.corsOrigin, details != "cors_response" { h.headers.add(name: "access-control-allow-origin", value: origin) }
        x.record.responseHeaders = h.headers
        x.record.bytesSent = bytes.count
        x.responding = true
        var trailers: HTTPHeaders?
        x.record.grpcStatus = h.headers.first(name: "grpc-status")
        if x.head.version.major == 2, h.headers.contains(name: "grpc-status") {
            // gRPC over HTTP/2 reads the status from trailers (a fault abort with `grpcStatus`).
            h.headers.remove(name: "content-length")
            trailers = Self.moveGRPCStatus(from: &h.headers)
        }
        respond(.head(h))
        if !bytes.isEmpty {
            var buf = context.channel.allocator.buffer(capacity: bytes.count)
            buf.writeBytes(bytes)
            respond(.body(.byteBuffer(buf)))
        }
        respond(.end(trailers), flush: true)
        if nothingFollows {
            finish(x)
        } else {
            // The rest of the request body is not read: the connection closes after this reply.
            x.replied = true
            complete(x)
            context.close(promise: nil)
        }
    }

    /// Whether an HTTP/1 request has no body (RFC 9112 §6.3): neither `Transfer-Encoding` nor a
    /// `Content-Length` other than 0.
    static func hasNoBody(_ head: HTTPRequestHead) -> Bool {
        for (name, value) in head.headers {
            switch HTTP1HeadWriter.framing(name) {
            case .transferEncoding:
                return false
            case .contentLength:
                if value.utf8.contains(where: { $0 != UInt8(ascii: "0") && $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) { return false }
            case nil:
                break
            }
        }
        return true
    }

    private func localReplyAndClose(status: HTTPResponseStatus, flags: ResponseFlags) {
        if let x = exchange {
            x.requestComplete = false
            localReply(x, status: status, body: "", flags: flags, details: "downstream_protocol_error")
            return
        }
        var h = HTTPResponseHead(version: .http1_1, status: status)
        h.headers.add(name: "content-length", value: "0")
        h.headers.add(name: "connection", value: "close")
        h.headers.add(name: "server", value: "istio-envoy")
        context.write(wrapOutboundOut(.head(h)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [context] _ in
            context!.close(promise: nil)
        }
    }

    /// The response is complete: report it, and close the connection if the request asked for that.
    private func finish(_ x: Exchange) {
        complete(x)
        if !x.keepAlive {
            pipelined = []
            context.close(promise: nil)
            return
        }
        if !pipelined.isEmpty { drainPipelined() }
    }

    private func complete(_ x: Exchange) {
        guard exchange === x else { return }
        exchange = nil
        x.globalTimer?.cancel()
        x.tryTimer?.cancel()
        releaseEndpoint(x)
        if x.activeCounted, let cluster = x.cluster { cluster.activeRequests.subtract(1, ordering: .relaxed) }
        // The record is moved out of the finished exchange, not copied (a copy retains each of its fields).
        var record = ProxyRecord(
            direction: x.record.direction, startUnixNanos: 0, method: "", path: "", protocolName: "", authority: "", requestFields: [])
        swap(&record, &x.record)
        record.durationNanoseconds = (NIODeadline.now() - x.started).nanoseconds
        shared.observer.requestFinished(record)
        if let t = x.trace, t.sampled, let tracer = shared.tracer { tracer.exporter.add(record, t, builder: tracer.builder) }
    }
}

@available(*, unavailable)
extension DownstreamHandler: Sendable {}

@available(*, unavailable)
extension DownstreamHandler.Exchange: Sendable {}

/// A mirrored request: sent on its own connection, its response drained and dropped.
final class ShadowRequest: UpstreamDelegate {
    let pool: UpstreamPool
    let head: HTTPRequestHead
    let body: [ByteBuffer]
    var keepSelf: ShadowRequest?

    init(pool: UpstreamPool, head: HTTPRequestHead, body: [ByteBuffer]) {
        self.pool = pool
        self.head = head
        self.body = body
    }

    func start(cluster: ClusterRuntime, endpoint: EndpointState, http2: Bool) {
        keepSelf = self
        let acquired = pool.acquire(cluster: cluster, endpoint: endpoint, http2: http2) { [self] result in
            switch result {
            case .success(let c): send(on: c)
            case .failure: keepSelf = nil
            }
        }
        switch acquired {
        case .ready(let c): send(on: c)
        case .pending: break
        case .overflow: keepSelf = nil
        }
    }

    private func send(on c: UpstreamConnection) {
        c.delegate = self
        c.send(.head(head))
        for b in body { c.send(.body(.byteBuffer(b))) }
        c.send(.end(nil), flush: true)
    }

    func upstreamRead(_ part: HTTPClientResponsePart, from c: UpstreamConnection) {
        if case .end = part {
            pool.release(c, reusable: true)
            keepSelf = nil
        }
    }

    func upstreamClosed(_ c: UpstreamConnection) { keepSelf = nil }
    func upstreamWritabilityChanged(_ c: UpstreamConnection, writable: Bool) {}
}

@available(*, unavailable)
extension ShadowRequest: Sendable {}

/// The fields of an upstream response the proxy reads or replaces before forwarding it, by name in any case:
/// `Connection` and `grpc-status` are read; the upstream's `server`, peer header and service time give way to
/// the proxy's own (as Envoy's router sets `server` and `x-envoy-upstream-service-time`).
enum UpstreamResponseField {
    case connection, grpcStatus, server, peerMetadata, serviceTime

    /// Most names are rejected by length alone.
    init?(_ name: UnsafeRawBufferPointer) {
        switch name.count {
        case 6 where Token.equalsFoldingCase(name, "server"): self = .server
        case 10 where Token.equalsFoldingCase(name, "connection"): self = .connection
        case 11 where Token.equalsFoldingCase(name, "grpc-status"): self = .grpcStatus
        // `PeerMetadata.header`, as a literal the comparison can take.
        case 23 where Token.equalsFoldingCase(name, "x-sextant-peer-metadata"): self = .peerMetadata
        case 29 where Token.equalsFoldingCase(name, "x-envoy-upstream-service-time"): self = .serviceTime
        default: return nil
        }
    }

    init?(_ name: String) {
        var name = name
        guard let field = name.withUTF8({ Self(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = field
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy must not forward, plus those named in `Connection`.
/// Checked per header per request, so without sets or lower-cased copies.
struct HopByHop {
    /// Extra names listed in the message's `Connection` header (lower-cased), usually none.
    private var listed: [String] = []
    /// `close` tokens, and `keep-alive` tokens, seen in `Connection`.
    private var closes = 0
    private var keepAlives = 0

    /// No `Connection` header yet: `noteConnection` adds each.
    init() {}

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers where HostName.equalsIgnoringASCIICase(name, lowercased: "connection") {
            noteConnection(value)
        }
    }

    /// Reads one `Connection` field's value.
    mutating func noteConnection(_ value: String) {
        var text = value
        text.withUTF8 { Self.addListed(in: UnsafeRawBufferPointer($0), to: &listed, closes: &closes, keepAlives: &keepAlives) }
    }

    /// `noteConnection` of a value's bytes.
    mutating func noteConnection(bytes: UnsafeRawBufferPointer) {
        Self.addListed(in: bytes, to: &listed, closes: &closes, keepAlives: &keepAlives)
    }

    /// NIO's `isKeepAlive`, from the same scan of `Connection` (RFC 9112 §9.3): a `close` closes, else a
    /// `keep-alive` persists, else HTTP/1.1 persists; two such tokens close. NIO's own answer splits every
    /// `Connection` value into an array of strings unless its decoder noted the answer, which ours cannot.
    func isKeepAlive(version: HTTPVersion) -> Bool {
        if closes > 0 || keepAlives > 1 { return false }
        if keepAlives == 1 { return true }
        // As NIO answers: HTTP/1.1 persists by default (HTTP/2 streams end with their exchange).
        return version.major == 1 && version.minor >= 1
    }

    /// The tokens of a `Connection` value, split and trimmed in place (they are ASCII): `close` and
    /// `keep-alive`, nearly always the only ones (a response from a keep-alive upstream has one), are
    /// recognised without building a string or a list of slices.
    private static func addListed(in u: UnsafeRawBufferPointer, to listed: inout [String], closes: inout Int, keepAlives: inout Int) {
        Token.forEachListElement(u) { t in
            if HostName.bytesEqualIgnoringASCIICase(t, lowercased: "close".utf8) {
                closes += 1
            } else if HostName.bytesEqualIgnoringASCIICase(t, lowercased: "keep-alive".utf8) {
                keepAlives += 1
            } else if !t.isEmpty {
                listed.append(String(decoding: t, as: UTF8.self).lowercased())
            }
        }
    }

    /// Whether a name is one of the fixed hop-by-hop names (in any case); most are rejected by length alone.
    static func isFixed(bytes name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return Token.equalsFoldingCase(name, "te")
        case 7: return Token.equalsFoldingCase(name, "trailer") || Token.equalsFoldingCase(name, "upgrade")
        case 10: return Token.equalsFoldingCase(name, "connection") || Token.equalsFoldingCase(name, "keep-alive")
        case 16: return Token.equalsFoldingCase(name, "proxy-connection")
        case 17: return Token.equalsFoldingCase(name, "transfer-encoding")
        case 18: return Token.equalsFoldingCase(name, "proxy-authenticate")
        case 19: return Token.equalsFoldingCase(name, "proxy-authorization")
        default: return false
        }
    }

    /// Whether the field `name` (its bytes) is hop-by-hop: a fixed name or one `Connection` listed.
    func contains(bytes name: UnsafeRawBufferPointer) -> Bool {
        if Self.isFixed(bytes: name) { return true }
        if listed.isEmpty { return false }
        for f in listed where HostName.bytesEqualIgnoringASCIICase(name, lowercased: f.utf8) { return true }
        return false
    }

    /// `contains(bytes:)` of a name; one no fixed name's length, with nothing listed, is not looked at.
    func contains(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2, 7, 10, 16, 17, 18, 19: break
        default: if listed.isEmpty { return false }
        }
        var name = name
        return name.withUTF8 { contains(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension HTTPHeaders {
    /// `remove`, without rebuilding the field array when no field has the name.
    mutating func removeIfPresent(name: String) {
        if contains(name: name) { remove(name: name) }
    }
}

extension Substring {
    var trimmingPrefixSpaces: String {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// `CLOCK_MONOTONIC_COARSE` as an `NIODeadline` (the same clock as `NIODeadline.now()`, read at the
/// kernel tick's resolution, a few milliseconds, without reading the TSC): for timestamps that only
/// expiries in seconds compare, such as an idle connection's or a metric series' last use.
enum CoarseClock {
    static func now() -> NIODeadline {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return .uptimeNanoseconds(UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec))
    }
}

/// Wall-clock time for `%START_TIME%`.
enum WallClock {
    static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
