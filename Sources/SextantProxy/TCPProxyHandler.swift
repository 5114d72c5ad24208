import NIOCore
import NIOPosix
import NIOSSL
import SextantIstio

/// A plain TCP connection relayed byte for byte (Envoy's `tcp_proxy`). Outbound, it was accepted on a
/// service's TCP port (Istio's per-port outbound listener) and is routed by the port (and
/// `VirtualService.tcp` rules) to an endpoint of the chosen cluster. Inbound, the sniffer found no HTTP in
/// its first bytes and it goes to the local app; those bytes, and any read before the app answered the
/// connect, are replayed. Outbound listeners read nothing before the upstream is connected. Connect failure
/// or circuit-breaker overflow closes the connection (`UF`/`UO`).
final class TCPProxyHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    enum Target {
        /// A service port of the outbound side, routed by the route table.
        case servicePort(Int)
        /// The inbound listener's local app.
        case inbound(ClusterRuntime)
    }

    let shared: ProxyShared
    let target: Target
    var random = FastRandom()
    private var record: ProxyRecord?
    private var started = NIODeadline.now()
    private var cluster: ClusterRuntime?
    private var relays: (down: RawRelay, up: RawRelay)?
    /// Bytes read before the upstream connection is up (inbound: the sniffed ones and any after them).
    private var pending: ByteBuffer?
    private var pendingBytes = 0
    private var isStarted = false

    init(shared: ProxyShared, port: Int) {
        self.shared = shared
        self.target = .servicePort(port)
    }

    init(shared: ProxyShared, inbound: ClusterRuntime) {
        self.shared = shared
        self.target = .inbound(inbound)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added by the sniffer to a connection that is already active.
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pendingBytes += buffer.readableBytes
        if pending == nil { pending = buffer } else { pending!.writeBuffer(&buffer) }
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !isStarted else { return }
        isStarted = true
        let snapshot = shared.state.snapshot
        var record = ProxyRecord(
            direction: .outbound, startUnixNanos: WallClock.nowNanos(), method: "", path: "", protocolName: "TCP",
            authority: "", requestHeaders: [:])
        var principal: String?
        if case .inbound = target, shared.meshTLS != nil { principal = MeshPeerIdentityHandler.principal(of: context) }
        record.downstream = ProxyRecord.Downstream(
            remoteAddress: context.channel.remoteAddress.map(DownstreamHandler.format),
            localAddress: context.channel.localAddress.map(DownstreamHandler.format), peerPrincipal: principal)
        self.record = record
        let cluster: ClusterRuntime
        switch target {
        case .inbound(let c):
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            self.record?.direction = .inbound
            cluster = c
            self.record?.destination = cluster.inboundDestination
        case .servicePort(let port):
            guard let route = snapshot.table.tcpRoute(port: port, sourceLabels: snapshot.table.identity.labels) else {
                return fail(context, .noRouteFound)
            }
            let total = max(1, route.destinations.reduce(0) { $0 + $1.weight })
            var r = Int.random(in: 0..<total, using: &random)
            var chosen = route.destinations.first?.cluster
            for d in route.destinations {
                if r < d.weight {
                    chosen = d.cluster
                    break
                }
                r -= d.weight
            }
            guard let key = chosen, let c = snapshot.cluster(key, requestPort: port) else {
                return fail(context, .noClusterFound)
            }
            cluster = c
            self.record?.destination = cluster.outboundDestination
        }
        self.cluster = cluster
        guard let index = cluster.pick(hash: nil, tried: [], now: .now, random: &random) else {
            return fail(context, .noHealthyUpstream)
        }
        guard ClusterRuntime.tryIncrement(cluster.connections, limit: cluster.maxConnections) else {
            return fail(context, .upstreamOverflow)
        }
        let endpoint = cluster.endpoints[index]
        self.record?.upstreamHost = endpoint.key
        self.record?.upstreamLabels = endpoint.endpoint.labels
        let (down, up) = RawRelay.pair()
        relays = (down, up)
        let upBound = NIOLoopBound(up, eventLoop: context.eventLoop)
        let tls: (NIOSSLClientHandler, MeshPeerIdentityHandler)?
        do {
            tls = try shared.pools.pool(for: context.eventLoop).upstreamTLSHandlers(cluster, endpoint, .tcp)
        } catch {
            cluster.connections.subtract(1, ordering: .relaxed)
            self.record?.upstreamTransportFailureReason = "\(error)"
            return fail(context, .upstreamConnectionFailure)
        }
        let tlsBound = tls.map { NIOLoopBound($0, eventLoop: context.eventLoop) }
        ClientBootstrap(group: context.eventLoop)
            .connectTimeout(cluster.connectTimeout.timeAmount)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsBound {
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.0)
                        try channel.pipeline.syncOperations.addHandler(tlsBound.value.1)
                    }
                    try channel.pipeline.syncOperations.addHandler(upBound.value)
                }
            }
            .connect(host: endpoint.endpoint.address, port: endpoint.endpoint.port)
            .flatMap { channel in
                UpstreamPool.handshake(channel, tlsBound?.value.1, timeout: cluster.connectTimeout.timeAmount).map { (channel, $0) }
            }
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let (upstream, principal)):
                    self.record?.upstreamPeerPrincipal = principal
                    upstream.closeFuture.whenComplete { _ in cluster.connections.subtract(1, ordering: .relaxed) }
                    cluster.record(endpoint: index, status: 200, now: .now)
                    if let pending = self.pending {
                        upstream.writeAndFlush(pending, promise: nil)
                        self.pending = nil
                    }
                    do {
                        try context.pipeline.syncOperations.addHandler(down, position: .before(self))
                    } catch {
                        upstream.close(promise: nil)
                        return fail(context, .localReset)
                    }
                    context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                case .failure(let error):
                    cluster.connections.subtract(1, ordering: .relaxed)
                    cluster.record(endpoint: index, status: nil, now: .now)
                    self.record?.upstreamTransportFailureReason = "\(error)"
                    fail(context, .upstreamConnectionFailure)
                }
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
    }

    private func fail(_ context: ChannelHandlerContext, _ flags: ResponseFlags) {
        record?.responseFlags.formUnion(flags)
        context.close(promise: nil)
    }

    private func finish() {
        guard var r = record else { return }
        record = nil
        r.bytesReceived = pendingBytes + (relays?.down.bytesRead ?? 0)
        r.bytesSent = relays?.up.bytesRead ?? 0
        r.durationNanoseconds = (NIODeadline.now() - started).nanoseconds
        shared.observer.requestFinished(r)
    }
}

@available(*, unavailable)
extension TCPProxyHandler: Sendable {}
