import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// Receives the response of the request currently using an upstream connection.
protocol UpstreamDelegate: AnyObject {
    func upstreamRead(_ part: HTTPClientResponsePart, from connection: UpstreamConnection)
    /// A response head from the HTTP/1 decoder: its `headers` are empty, its fields are the list (handed
    /// over, so that the delegate may hold its only reference and edit it in place).
    func upstreamHead(_ head: consuming HTTPResponseHead, fields: consuming [(String, String)], from connection: UpstreamConnection)
    /// A response head from the HTTP/1 decoder with its fields left in the bytes read (handed over, so that
    /// the delegate may mark fields dropped in place).
    func upstreamRawHead(_ head: consuming HTTPResponseHead, fields: consuming RawFields, from connection: UpstreamConnection)
    func upstreamClosed(_ connection: UpstreamConnection)
    func upstreamWritabilityChanged(_ connection: UpstreamConnection, writable: Bool)
    /// The connection's current read is handled: what it made the delegate write is flushed now.
    func upstreamReadComplete(_ connection: UpstreamConnection)
}

extension UpstreamDelegate {
    func upstreamReadComplete(_ connection: UpstreamConnection) {}

    func upstreamHead(_ head: consuming HTTPResponseHead, fields: consuming [(String, String)], from connection: UpstreamConnection) {
        var head = head
        head.headers = HTTPHeaders(fields)
        upstreamRead(.head(head), from: connection)
    }

    func upstreamRawHead(_ head: consuming HTTPResponseHead, fields: consuming RawFields, from connection: UpstreamConnection) {
        upstreamHead(head, fields: fields.list, from: connection)
    }
}

/// One HTTP/1.1 connection to an endpoint, owned by the pool of its event loop.
final class UpstreamConnection {
    let channel: any Channel
    let endpointKey: String
    let cluster: ClusterRuntime
    /// Its endpoint's idle list in the pool, where it goes back after an exchange (HTTP/1 connections).
    var idleList: UpstreamPool.IdleList?
    /// The current user, held strongly and cleared whenever the connection is given back, abandoned or
    /// closed: a `weak` reference would give every `DownstreamHandler` a side table, which makes each of
    /// its retains and releases take the runtime's slow path.
    var delegate: (any UpstreamDelegate)?
    var requestsServed = 0
    var isClosed = false
    /// When it went idle, for the idle timeout (`CoarseClock`).
    var idleSince: NIODeadline = CoarseClock.now()
    private var readPaused = false
    /// `%UPSTREAM_LOCAL_ADDRESS%`, formatted once per connection rather than per request.
    lazy var localAddressText: String? = channel.localAddress.map(DownstreamHandler.format)

    /// Stops or resumes reading responses (backpressure from a slow downstream); a system call, so
    /// only on a change.
    func pauseReading(_ pause: Bool) {
        guard pause != readPaused else { return }
        readPaused = pause
        channel.setOption(ChannelOptions.autoRead, value: !pause).whenComplete { _ in }
    }

    /// Flushes what was written: from the HTTP/1 encoder's place when there is one, else from the pipeline's tail.
    func flush() {
        if let encoder, encoder.flush() { return }
        channel.flush()
    }

    /// The connection's read is handled: unless reading is paused, the next read is asked for from the HTTP/1
    /// encoder's place, sparing NIO's walk from the tail (`HTTP1ResponseEncoder.read()`).
    func readCompleted() {
        guard !readPaused, let encoder else { return }
        _ = encoder.read()
    }

    /// An HTTP/2 stream on a shared connection (not pooled itself; the connection is).
    let isStream: Bool
    /// The upstream proxy's SPIFFE ID when the connection is mesh mTLS (`%UPSTREAM_PEER_URI_SAN%`).
    var peerPrincipal: String?

    /// The HTTP/1 connection's request encoder, written to directly by `send` (nil on HTTP/2 streams).
    var encoder: HTTP1RequestEncoder?

    /// Writes a request part: straight into the HTTP/1 encoder when there is one (no `NIOAny` box and cast,
    /// no walk from the pipeline's tail), else through the channel.
    func send(_ part: HTTPClientRequestPart, flush: Bool = false) {
        if let encoder, encoder.send(part, flush: flush) { return }
        if flush {
            channel.writeAndFlush(part, promise: nil)
        } else {
            channel.write(part, promise: nil)
        }
    }

    /// `send(.head(head))` for a head whose headers are what `forwarded` sends of `received`, which the
    /// encoder writes from (`head.headers` is not read). With `trace`, its fields follow (rendered by the
    /// encoder from the IDs; as strings in the head's headers for an HTTP/2 stream).
    func sendHead(_ head: HTTPRequestHead, received: [(String, String)], forwarded: ForwardedFields, trace: InjectedTrace? = nil) {
        if let encoder, encoder.sendHead(head, received: received, forwarded: forwarded, trace: trace) { return }
        var head = head
        head.headers = HTTPHeaders(forwarded.list(received))
        channel.write(HTTPClientRequestPart.head(trace.map { $0.adding(to: head) } ?? head), promise: nil)
    }

    init(channel: any Channel, endpointKey: String, cluster: ClusterRuntime, isStream: Bool = false) {
        self.channel = channel
        self.endpointKey = endpointKey
        self.cluster = cluster
        self.isStream = isStream
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// Hands response parts of an upstream connection to its current user.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    var connection: UpstreamConnection?
    let pool: UpstreamPool
    /// The connection's HTTP/1 request encoder, handed to its `UpstreamConnection`.
    var encoder: HTTP1RequestEncoder?

    init(pool: UpstreamPool) { self.pool = pool }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { received(unwrapInboundIn(data)) }

    /// A response part, from the pipeline or straight from `HTTP1ResponseDecoder`.
    func received(_ part: HTTPClientResponsePart) {
        guard let c = connection else { return }
        c.delegate?.upstreamRead(part, from: c)
    }

    /// A response head straight from `HTTP1ResponseDecoder`, with its fields (see `UpstreamDelegate.upstreamHead`).
    func receivedHead(_ head: consuming HTTPResponseHead, fields: consuming [(String, String)]) {
        guard let c = connection else { return }
        c.delegate?.upstreamHead(head, fields: consume fields, from: c)
    }

    /// A response head straight from `HTTP1ResponseDecoder`, its fields in the bytes read.
    func receivedRawHead(_ head: consuming HTTPResponseHead, fields: consuming RawFields) {
        guard let c = connection else { return }
        c.delegate?.upstreamRawHead(head, fields: consume fields, from: c)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let c = connection else { return }
        c.delegate?.upstreamReadComplete(c)
        c.readCompleted()
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard let c = connection else { return }
        connection = nil
        pool.closed(c)
        let delegate = c.delegate
        c.delegate = nil
        delegate?.upstreamClosed(c)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard let c = connection else { return }
        c.delegate?.upstreamWritabilityChanged(c, writable: context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamHandler: Sendable {}

/// Upstream HTTP/1.1 connections of one event loop, per endpoint, with Envoy's circuit breakers:
/// `maxConnections` per cluster (shared across loops), then up to `http1MaxPendingRequests` waiting
/// requests, then overflow (503 `UO`). All methods run on `eventLoop`.
final class UpstreamPool {
    typealias Completion = (Result<UpstreamConnection, any Error>) -> Void

    enum Acquired {
        case ready(UpstreamConnection)
        /// Connecting or queued: the completion runs with a connection or an error.
        case pending(waiterID: Int?)
        case overflow
    }

    struct Waiter {
        let id: Int
        let endpoint: EndpointState
        let completion: Completion
    }

    /// The queue of requests waiting for a connection of one cluster.
    final class Queue {
        let cluster: ClusterRuntime
        var waiters: [Waiter] = []
        init(_ cluster: ClusterRuntime) { self.cluster = cluster }
    }

    /// The idle connections to one endpoint, most recently released last.
    final class IdleList {
        var connections: [UpstreamConnection] = []
    }

    let eventLoop: any EventLoop
    /// The proxy's mesh certificate, for clusters whose policy says `ISTIO_MUTUAL`.
    let meshTLS: MeshCredentialsStore?
    /// By the endpoints' pool keys, so that a reloaded configuration's endpoints find the same connections.
    private var idle: [String: IdleList] = [:]
    /// The idle lists of the endpoints used last, found by identity: most requests go to an endpoint used a
    /// moment before, and comparing references costs less than hashing its key.
    private var recentIdle: [(endpoint: EndpointState, list: IdleList)] = []
    private var queues: [ObjectIdentifier: Queue] = [:]
    private var nextWaiterID = 0
    private var recheckScheduled = false

    init(eventLoop: any EventLoop, meshTLS: MeshCredentialsStore? = nil) {
        self.eventLoop = eventLoop
        self.meshTLS = meshTLS
    }

    /// Gets a connection to `endpoint` of `cluster`: an idle one now, or later (a new connection within
    /// `maxConnections`, or a place in the pending queue), or overflow.
    func acquire(cluster: ClusterRuntime, endpoint: EndpointState, http2: Bool = false, completion: @escaping Completion) -> Acquired {
        eventLoop.preconditionInEventLoop()
        if http2 { return acquireStream(cluster: cluster, endpoint: endpoint, completion: completion) }
        if let c = popIdle(endpoint) { return .ready(c) }
        if ClusterRuntime.tryIncrement(cluster.connections, limit: cluster.maxConnections) {
            connect(cluster: cluster, endpoint: endpoint, completion: completion)
            return .pending(waiterID: nil)
        }
        guard ClusterRuntime.tryIncrement(cluster.pending, limit: cluster.maxPending) else { return .overflow }
        nextWaiterID += 1
        let q = queue(cluster)
        q.waiters.append(Waiter(id: nextWaiterID, endpoint: endpoint, completion: completion))
        scheduleRecheck()
        return .pending(waiterID: nextWaiterID)
    }

    /// An idle HTTP/1.1 connection to `endpoint`, if one is ready (the common case; no callback needed).
    func takeIdle(_ endpoint: EndpointState) -> UpstreamConnection? {
        popIdle(endpoint)
    }

    /// Removes a queued request (its downstream went away or timed out).
    func cancelWaiter(_ id: Int, cluster: ClusterRuntime) {
        guard let q = queues[ObjectIdentifier(cluster)], let i = q.waiters.firstIndex(where: { $0.id == id }) else { return }
        q.waiters.remove(at: i)
        cluster.pending.subtract(1, ordering: .relaxed)
    }

    /// Returns a connection after a complete exchange; it is reused, given to a waiter, or closed.
    func release(_ c: UpstreamConnection, reusable: Bool) {
        c.delegate = nil
        if c.isStream {
            // The stream ends with the response; only its connection is shared.
            if !reusable { c.channel.close(promise: nil) }
            return
        }
        c.pauseReading(false)
        c.requestsServed += 1
        if let max = c.cluster.maxRequestsPerConnection, c.requestsServed >= max {
            c.channel.close(promise: nil)
            return
        }
        guard reusable, !c.isClosed, c.channel.isActive else {
            c.channel.close(promise: nil)
            return
        }
        if !queues.isEmpty, let q = queues[ObjectIdentifier(c.cluster)],
            let i = q.waiters.firstIndex(where: { $0.endpoint.poolKey == c.endpointKey })
        {
            let w = q.waiters.remove(at: i)
            c.cluster.pending.subtract(1, ordering: .relaxed)
            w.completion(.success(c))
            return
        }
        c.idleSince = CoarseClock.now()
        (c.idleList ?? idleList(key: c.endpointKey)).connections.append(c)
    }

    /// Called once when an upstream connection closes: frees its circuit-breaker slot and lets a
    /// waiting request of the same cluster open a new connection.
    func closed(_ c: UpstreamConnection) {
        guard !c.isClosed else { return }
        c.isClosed = true
        if c.isStream { return }
        c.cluster.connections.subtract(1, ordering: .relaxed)
        if let list = c.idleList, let i = list.connections.firstIndex(where: { $0 === c }) {
            list.connections.remove(at: i)
        }
        if let q = queues[ObjectIdentifier(c.cluster)] { serve(q) }
    }

    private func queue(_ cluster: ClusterRuntime) -> Queue {
        if let q = queues[ObjectIdentifier(cluster)] { return q }
        let q = Queue(cluster)
        queues[ObjectIdentifier(cluster)] = q
        return q
    }

    private func idleList(key: String) -> IdleList {
        if let list = idle[key] { return list }
        let list = IdleList()
        idle[key] = list
        return list
    }

    private func idleList(_ endpoint: EndpointState) -> IdleList {
        for i in recentIdle.indices where recentIdle[i].endpoint === endpoint { return recentIdle[i].list }
        let list = idleList(key: endpoint.poolKey)
        if recentIdle.count == 8 { recentIdle.removeFirst() }
        recentIdle.append((endpoint, list))
        return list
    }

    private func popIdle(_ endpoint: EndpointState) -> UpstreamConnection? {
        let list = idleList(endpoint)
        guard !list.connections.isEmpty else { return nil }
        let now = CoarseClock.now()
        while let c = list.connections.popLast() {
            guard !c.isClosed && c.channel.isActive else { continue }
            // `connectionPool.http.idleTimeout`: a connection idle for longer is closed, not reused.
            if now - c.idleSince > c.cluster.idleTimeout {
                c.channel.close(promise: nil)
                continue
            }
            return c
        }
        return nil
    }

    private func serve(_ q: Queue) {
        while let w = q.waiters.first {
            if let c = popIdle(w.endpoint) {
                q.waiters.removeFirst()
                q.cluster.pending.subtract(1, ordering: .relaxed)
                w.completion(.success(c))
                continue
            }
            guard ClusterRuntime.tryIncrement(q.cluster.connections, limit: q.cluster.maxConnections) else { return }
            q.waiters.removeFirst()
            q.cluster.pending.subtract(1, ordering: .relaxed)
            connect(cluster: q.cluster, endpoint: w.endpoint, completion: w.completion)
        }
    }

    /// Connections freed on other event loops cannot call into this one; queues are rechecked on a
    /// short timer while any request waits.
    private func scheduleRecheck() {
        guard !recheckScheduled else { return }
        recheckScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(5)) { [self] in
            recheckScheduled = false
            for q in queues.values where !q.waiters.isEmpty { serve(q) }
            queues = queues.filter { !$0.value.waiters.isEmpty }
            if !queues.isEmpty { scheduleRecheck() }
        }
    }

    // MARK: HTTP/2

    /// One multiplexed HTTP/2 connection to an endpoint (gRPC and `HTTP2` ports), shared by all requests
    /// of this event loop; requests wait for it while it connects.
    final class H2Connection {
        var multiplexer: NIOHTTP2Handler.StreamMultiplexer?
        var channel: (any Channel)?
        var waiting: [(UpstreamConnection?, (any Error)?) -> Void] = []
        var failed = false
        var peerPrincipal: String?
    }

    private var h2: [String: H2Connection] = [:]

    private func acquireStream(cluster: ClusterRuntime, endpoint: EndpointState, completion: @escaping Completion) -> Acquired {
        let key = "\(endpoint.key)|\(ObjectIdentifier(cluster).hashValue)"
        let open: (H2Connection) -> Void = { [self] conn in
            guard let mux = conn.multiplexer else { return }
            openStream(mux, cluster: cluster, endpoint: endpoint, principal: conn.peerPrincipal, completion: completion)
        }
        if let conn = h2[key], !conn.failed {
            if conn.multiplexer != nil {
                open(conn)
            } else {
                conn.waiting.append { _, error in
                    if let error { completion(.failure(error)) } else { open(conn) }
                }
            }
            return .pending(waiterID: nil)
        }
        guard ClusterRuntime.tryIncrement(cluster.connections, limit: cluster.maxConnections) else { return .overflow }
        let conn = H2Connection()
        h2[key] = conn
        conn.waiting.append { _, error in
            if let error { completion(.failure(error)) } else { open(conn) }
        }
        let box = NIOLoopBound(conn, eventLoop: eventLoop)
        let tls: (NIOSSLClientHandler, MeshPeerIdentityHandler)?
        do {
            tls = try upstreamTLSHandlers(cluster, endpoint, .http2)
        } catch {
            cluster.connections.subtract(1, ordering: .relaxed)
            h2[key] = nil
            conn.failed = true
            completion(.failure(error))
            return .pending(waiterID: nil)
        }
        let tlsBound = tls.map { NIOLoopBound($0, eventLoop: eventLoop) }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(cluster.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsBound {
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.0)
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.1)
                    }
                    let mux = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: .init(), streamConfiguration: .init()
                    ) { stream in stream.close() }
                    // The HTTP/2 handler reports connection errors after its GOAWAY; closing is ours to do.
                    try channel.pipeline.syncOperations.addHandler(NIOCloseOnErrorHandler())
                    box.value.multiplexer = mux
                }
            }
            .connect(host: endpoint.endpoint.address, port: endpoint.endpoint.port)
            .flatMap { channel in
                Self.handshake(channel, tlsBound?.value.1, timeout: cluster.connectTimeout.timeAmount).map { (channel, $0) }
            }
            .assumeIsolated()
            .whenComplete { [self] result in
                let waiting = conn.waiting
                conn.waiting = []
                switch result {
                case .success(let (channel, principal)):
                    conn.channel = channel
                    conn.peerPrincipal = principal
                    channel.closeFuture.assumeIsolated().whenComplete { [self] _ in
                        conn.failed = true
                        if h2[key] === conn { h2[key] = nil }
                        cluster.connections.subtract(1, ordering: .relaxed)
                    }
                    for w in waiting { w(nil, nil) }
                case .failure(let error):
                    conn.failed = true
                    if h2[key] === conn { h2[key] = nil }
                    cluster.connections.subtract(1, ordering: .relaxed)
                    for w in waiting { w(nil, error) }
                }
            }
        return .pending(waiterID: nil)
    }

    private func openStream(
        _ mux: NIOHTTP2Handler.StreamMultiplexer, cluster: ClusterRuntime, endpoint: EndpointState, principal: String?,
        completion: @escaping Completion
    ) {
        let handler = UpstreamHandler(pool: self)
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        mux.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                try stream.pipeline.syncOperations.addHandler(bound.value)
            }
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let stream):
                let c = UpstreamConnection(channel: stream, endpointKey: endpoint.poolKey, cluster: cluster, isStream: true)
                c.peerPrincipal = principal
                handler.connection = c
                completion(.success(c))
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// The TLS client handlers for a connection to `endpoint` of `cluster`: TLS origination (`SIMPLE`,
    /// `MUTUAL`), or mesh mTLS (`ISTIO_MUTUAL`, or auto mTLS when this proxy has a certificate); nil for
    /// plain text. Throws when the policy asks for `ISTIO_MUTUAL` and this proxy has no mesh certificate,
    /// or when the origination files cannot be loaded (`UpstreamTLSError`, a connect failure).
    func upstreamTLSHandlers(_ cluster: ClusterRuntime, _ endpoint: EndpointState, _ p: UpstreamTLSProtocol) throws -> (NIOSSLClientHandler, MeshPeerIdentityHandler)? {
        if let origination = endpoint.origination {
            do {
                return try origination.clientHandlers(protocol: p)
            } catch {
                throw UpstreamTLSError(error)
            }
        }
        guard let tls = endpoint.meshTLS else { return nil }
        guard let meshTLS else {
            if endpoint.isAutoMTLS { return nil }
            throw MeshTLSError("\(cluster.name) requires ISTIO_MUTUAL but the proxy has no mesh certificate (--cert, --key, --ca)")
        }
        return try meshTLS.current.clientHandlers(for: cluster.cluster, tls: tls, protocol: p)
    }

    /// Waits for a TLS connection's handshake and peer check; plain connections pass at once. The
    /// handshake counts against the connect timeout, as in Envoy (a server that never answers the
    /// ClientHello is a connect failure, not a hung request). Failures become `UpstreamTLSError`s.
    static func handshake(_ channel: any Channel, _ identity: MeshPeerIdentityHandler?, timeout: TimeAmount) -> EventLoopFuture<String?> {
        guard let identity else { return channel.eventLoop.makeSucceededFuture(nil) }
        let bound = NIOLoopBound(identity, eventLoop: channel.eventLoop)
        let timer = channel.eventLoop.scheduleTask(in: timeout) { bound.value.timedOut() }
        return identity.handshake(on: channel.eventLoop)
            .flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw UpstreamTLSError(error)
            }
            .always { _ in timer.cancel() }
    }

    private func connect(cluster: ClusterRuntime, endpoint: EndpointState, completion: @escaping Completion) {
        let handler = UpstreamHandler(pool: self)
        let bound = NIOLoopBound(handler, eventLoop: eventLoop)
        let e = endpoint.endpoint
        let tls: (NIOSSLClientHandler, MeshPeerIdentityHandler)?
        do {
            tls = try upstreamTLSHandlers(cluster, endpoint, .http1)
        } catch {
            cluster.connections.subtract(1, ordering: .relaxed)
            completion(.failure(error))
            return
        }
        let tlsBound = tls.map { NIOLoopBound($0, eventLoop: eventLoop) }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(cluster.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsBound {
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.0)
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.1)
                    }
                    // The proxy's own HTTP/1 client codec (`HTTP1Encoders.swift`, `HTTP1Decoders.swift`).
                    let decoder = HTTP1ResponseDecoder(sink: bound.value)
                    let encoder = HTTP1RequestEncoder(responseDecoder: decoder)
                    bound.value.encoder = encoder
                    try channel.pipeline.syncOperations.addHandler(encoder)
                    try channel.pipeline.syncOperations.addHandler(decoder)
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: e.address, port: e.port)
            .flatMap { channel in
                Self.handshake(channel, tlsBound?.value.1, timeout: cluster.connectTimeout.timeAmount).map { (channel, $0) }
            }
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let (channel, principal)):
                    let c = UpstreamConnection(channel: channel, endpointKey: endpoint.poolKey, cluster: cluster)
                    c.idleList = self.idleList(endpoint)
                    c.peerPrincipal = principal
                    c.encoder = handler.encoder
                    handler.connection = c
                    if !channel.isActive {
                        handler.connection = nil
                        c.isClosed = true
                        cluster.connections.subtract(1, ordering: .relaxed)
                        completion(.failure(ChannelError.ioOnClosedChannel))
                    } else {
                        completion(.success(c))
                    }
                case .failure(let error):
                    cluster.connections.subtract(1, ordering: .relaxed)
                    completion(.failure(error))
                }
            }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}
