import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantHTTP
import SextantIstio
import SextantOTLP
import SextantPipeline
import SextantPrometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// How `sextant proxy` was started.
public struct ProxyOptions: Sendable {
    public var configPaths: [String]
    public var identity: ProxyIdentity
    /// Outbound listener (`--listen`): the workload's calls, routed by Istio config.
    public var listen: (host: String, port: Int)?
    /// Inbound listener and the local app it fronts (`--inbound`, `--app`), sidecar mode.
    public var inbound: (host: String, port: Int)?
    public var app: (host: String, port: Int)?
    /// Admin endpoint (`--admin`): `/ready`, `/config_dump`.
    public var admin: (host: String, port: Int)?
    public var limits = ProxyLimits()
    /// How often config files are checked for changes (SIGHUP reloads at once).
    public var reloadPollInterval: Duration = .seconds(1)
    /// Event-loop threads (Envoy's `--concurrency`).
    public var threads = 1
    /// `tag` of `istio_build`.
    public var version = "dev"
    /// Metric series not updated for this long are dropped.
    public var metricExpiry: Duration = .seconds(600)
    /// Replaces `meshConfig.accessLogFile`'s path for this proxy (each workload's own "stdout").
    public var accessLogFile: String?
    /// Mesh mTLS (`--cert`, `--key`, `--ca`): this proxy's SPIFFE certificate chain and private key and the
    /// mesh root CA, PEM files. Without them the proxy speaks plain text only (a `STRICT` inbound side
    /// then refuses every connection, and `ISTIO_MUTUAL` clusters fail to connect).
    public var certificatePath: String?
    public var keyPath: String?
    public var caPath: String?
    /// `--service-account`: the identity the certificate should carry,
    /// `spiffe://cluster.local/ns/<namespace>/sa/<serviceAccount>` (default: the workload name).
    public var serviceAccount: String?

    /// The SPIFFE ID this proxy expects its certificate to carry.
    public var expectedPrincipal: String {
        SPIFFEIdentity(namespace: identity.namespace, serviceAccount: serviceAccount ?? identity.workload).description
    }

    public init(configPaths: [String], identity: ProxyIdentity) {
        self.configPaths = configPaths
        self.identity = identity
    }
}

/// The routing proxy as a `Service`: loads Istio config, binds its listeners, reloads on SIGHUP or file
/// change (a bad new config is logged and the old one kept), and drains on graceful shutdown.
public final class ProxyServer: Service, Sendable {
    public let options: ProxyOptions
    let shared: ProxyShared
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    private let channels: NIOLockedValueBox<[any Channel]> = .init([])
    private let admin: NIOLockedValueBox<HTTPServer?> = .init(nil)
    private let ready: NIOLockedValueBox<Bool> = .init(false)
    private let inboundCluster: ClusterRuntime?
    private let reloads = NIOLockedValueBox<(ok: Int, rejected: Int)>((0, 0))
    /// Istio's standard metrics, served at the admin endpoint's `/stats/prometheus`.
    public let metrics: IstioMetrics
    /// Access-log files (`meshConfig.accessLogFile`, `envoyFileAccessLog` providers) in force.
    let accessLogs: [AccessLogObserver]
    /// Access logs sent to a collector (`envoyOtelAls`) or a forward input (`envoyFluentdAccessLog`), each by a
    /// task of its own.
    let exportedAccessLogs: [any ExportingObserver]
    /// Keys fetched from `RequestAuthentication` `jwksUri`s, kept across reloads.
    let remoteJWKS: RemoteJWKS
    /// Mesh mTLS credentials (`--cert`, `--key`, `--ca`), nil when not given.
    let credentials: MeshCredentialsStore?

    /// Loads and validates the configuration; throws `ConfigError` with every problem found.
    public init(options: ProxyOptions, observer: any ProxyObserver = NoProxyObserver(), logger: Logger) throws(ConfigError) {
        self.options = options
        self.logger = logger
        let (resources, warnings) = try IstioConfigLoader.load(paths: options.configPaths)
        for w in warnings { logger.warning("\(w)") }
        let table = RouteTable(resources: resources, identity: options.identity)
        for w in table.warnings { logger.warning("\(w)") }
        var credentials: MeshCredentialsStore?
        if let cert = options.certificatePath, let key = options.keyPath, let ca = options.caPath {
            do {
                credentials = try MeshCredentialsStore(certificatePath: cert, keyPath: key, caPath: ca)
            } catch {
                throw ConfigError([ConfigDiagnostic(.error, at: nil, "mesh TLS credentials: \(error)")])
            }
            if credentials?.current.principal != options.expectedPrincipal {
                logger.warning(
                    "the certificate's identity is not the workload's service account",
                    metadata: ["certificate": "\(credentials?.current.principal ?? "")", "expected": "\(options.expectedPrincipal)"])
            }
        } else if options.certificatePath != nil || options.keyPath != nil || options.caPath != nil {
            throw ConfigError([ConfigDiagnostic(.error, at: nil, "--cert, --key and --ca go together")])
        }
        if credentials == nil {
            if let app = options.app, options.inbound != nil, table.peerAuthenticationMode(port: app.port) == .strict {
                logger.warning("PeerAuthentication is STRICT for this workload but no --cert/--key/--ca were given: inbound connections will be refused")
            }
            let mutual = table.clusters.values.filter { $0.policy.tls?.mode == .istioMutual }.map(\.key.description).sorted()
            if !mutual.isEmpty {
                logger.warning(
                    "clusters require ISTIO_MUTUAL but no --cert/--key/--ca were given: their connections will fail (UF)",
                    metadata: ["clusters": "\(mutual.joined(separator: ", "))"])
            }
        }
        self.credentials = credentials
        let metrics = IstioMetrics(
            identity: options.identity, version: options.version, expiry: options.metricExpiry, principal: credentials?.current.principal)
        self.metrics = metrics
        let remoteJWKS = RemoteJWKS()
        self.remoteJWKS = remoteJWKS
        let jwt = table.requestAuthentications.isEmpty ? nil : try JWTAuthenticator(table: table, remote: remoteJWKS)
        var fileLogs: [AccessLogObserver] = []
        var exportedLogs: [any ExportingObserver] = []
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        self.group = group
        do {
            for sink in try AccessLogSink.resolve(table, fileOverride: options.accessLogFile) {
                switch sink {
                case .file(let path, let encoding):
                    fileLogs.append(try AccessLogObserver(path: path, encoding: encoding))
                case .openTelemetry(let provider, let destination, let body, let labels):
                    exportedLogs.append(
                        OTelAccessLogObserver(
                            provider: provider, destination: destination, body: body, labels: labels, identity: options.identity,
                            group: group, logger: logger))
                case .fluentd(let provider, let host, let port, let tag, let record, let interval, let size, let retry):
                    exportedLogs.append(
                        FluentdAccessLogObserver(
                            provider: provider, host: host, port: port, tag: tag, record: record, flushInterval: interval,
                            bufferSizeBytes: size, retry: retry, group: group, logger: logger))
                }
            }
        } catch {
            for f in fileLogs { f.shutdown() }
            try? group.syncShutdownGracefully()
            throw ConfigError([ConfigDiagnostic(.error, at: nil, "meshConfig: \(error)")])
        }
        self.accessLogs = fileLogs
        self.exportedAccessLogs = exportedLogs
        var tracer: ProxyTracer?
        if let tracing = TracingSettings.resolve(table) {
            tracer = ProxyTracer(
                settings: tracing, exporter: SpanExporter(settings: tracing, identity: options.identity, group: group, logger: logger),
                builder: SpanBuilder(identity: options.identity))
        }
        shared = ProxyShared(
            state: ProxyState(ProxySnapshot(table: table, version: 1, jwt: jwt)),
            observer: CombinedObserver(observers: [metrics, observer] + fileLogs + exportedLogs), limits: options.limits,
            me: PeerMetadata(identity: options.identity), tracer: tracer, meshTLS: credentials,
            notesRequestFields: tracer != nil || !fileLogs.isEmpty || !exportedLogs.isEmpty || !(observer is NoProxyObserver))
        if let app = options.app, let inbound = options.inbound {
            let key = ClusterKey(host: "inbound", port: inbound.port)
            let endpoint = Endpoint(address: app.host, port: app.port, labels: options.identity.labels, weight: 1, serviceAccount: nil)
            inboundCluster = ClusterRuntime(
                Cluster(
                    key: key, endpoints: [endpoint], policy: TrafficPolicy(), protocolName: .unknown,
                    serviceNamespace: options.identity.namespace, serviceName: options.identity.workload),
                name: "inbound|\(inbound.port)||")
        } else {
            inboundCluster = nil
        }
    }

    /// The configuration in force.
    public var state: ProxyState { shared.state }

    /// Ports actually bound, by listener (`outbound`, `inbound`, `admin`), useful with port 0.
    public func boundPorts() -> [String: Int] {
        var out = listenerPorts.withLockedValue { $0 }
        if let a = admin.withLockedValue({ $0 }) { out["admin"] = a.port }
        return out
    }
    private let listenerPorts = NIOLockedValueBox<[String: Int]>([:])

    public func run() async throws {
        try await bindListeners()
        if let a = options.admin {
            let server = try await HTTPServer.start(
                HTTPServerConfiguration(host: a.host, port: a.port, maxRequestBodySize: 1 << 16), group: group, logger: logger
            ) { [self] request in await self.adminResponse(request) }
            admin.withLockedValue { $0 = server }
        }
        ready.withLockedValue { $0 = true }
        logger.info("sextant proxy ready", metadata: ["ports": "\(boundPorts())", "config_version": "\(state.version)"])

        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { [self] in await watchForReload() }
            if let tracer = shared.tracer { tasks.addTask { await tracer.exporter.run() } }
            for log in exportedAccessLogs { tasks.addTask { await log.run() } }
            tasks.addTask { [self] in await refreshJWKS() }
            tasks.addTask { [self] in
                let signals = await UnixSignalsSequence(trapping: .sighup)
                for await _ in signals.cancelOnGracefulShutdown() { _ = reload(reason: "SIGHUP") }
            }
            tasks.addTask {
                try? await gracefulShutdown()
            }
            await tasks.next()
            tasks.cancelAll()
        }
        await shutdown()
    }

    private func bindListeners() async throws {
        var bound: [(String, any Channel)] = []
        if let l = options.listen { bound.append(("outbound", try await bind(l, kind: .outbound))) }
        if let l = options.inbound, let app = options.app {
            bound.append(("inbound", try await bind(l, kind: .inbound(appHost: app.host, appPort: app.port))))
        }
        channels.withLockedValue { $0 = bound.map(\.1) }
        listenerPorts.withLockedValue { ports in
            for (name, c) in bound { ports[name] = c.localAddress?.port ?? 0 }
        }
        await reconcileTCPListeners()
    }

    /// One listener per TCP service port on the `--listen` host (sidecar outbound), opened and closed to
    /// follow the configuration on every reload. A port that cannot be bound is logged and skipped.
    private func reconcileTCPListeners() async {
        guard let l = options.listen, options.identity.mode == .sidecar else { return }
        let wanted = Set(shared.state.table.tcpPorts)
        let current = tcpListeners.withLockedValue { $0 }
        for (port, channel) in current where !wanted.contains(port) {
            try? await channel.close()
            tcpListeners.withLockedValue { _ = $0.removeValue(forKey: port) }
        }
        for port in wanted.sorted() where current[port] == nil {
            do {
                let shared = self.shared
                let channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 256)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.autoRead, value: false)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TCPProxyHandler(shared: shared, port: port))
                        }
                    }
                    .bind(host: l.host, port: port).get()
                tcpListeners.withLockedValue { $0[port] = channel }
                logger.info("tcp listener", metadata: ["port": "\(port)"])
            } catch {
                logger.error("cannot listen for TCP service port", metadata: ["port": "\(port)", "error": "\(error)"])
            }
        }
    }
    private let tcpListeners = NIOLockedValueBox<[Int: any Channel]>([:])

    private func bind(_ address: (host: String, port: Int), kind: ListenerKind) async throws -> any Channel {
        let shared = self.shared
        let inbound = kind == .outbound ? nil : inboundCluster
        let inboundTLS: InboundTLS?
        if case .inbound(_, let appPort) = kind {
            inboundTLS = InboundTLS(credentials: credentials, state: shared.state, port: appPort)
        } else {
            inboundTLS = nil
        }
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var makeTCP: (@Sendable () -> TCPProxyHandler)?
                    if let inbound { makeTCP = { TCPProxyHandler(shared: shared, inbound: inbound) } }
                    let sniffer = ProtocolSniffer(
                        makeHandler: { DownstreamHandler(shared: shared, kind: kind, inboundCluster: inbound) }, makeTCP: makeTCP,
                        inboundTLS: inboundTLS)
                    try channel.pipeline.syncOperations.addHandler(sniffer)
                }
            }
            .bind(host: address.host, port: address.port).get()
    }

    /// Re-reads the config files; on success the new table serves every request that starts from now
    /// on, while requests in flight finish on the old one. Returns whether the new config was taken.
    @discardableResult
    public func reload(reason: String) -> Bool {
        if let credentials {
            // Rotated workload certificates: new connections use them; a bad set is logged and the old kept.
            do {
                try credentials.reload()
            } catch {
                logger.error("mesh TLS credentials rejected; keeping the ones in force", metadata: ["reason": "\(reason)", "error": "\(error)"])
            }
        }
        do {
            let (resources, warnings) = try IstioConfigLoader.load(paths: options.configPaths)
            for w in warnings { logger.warning("\(w)") }
            let table = RouteTable(resources: resources, identity: options.identity)
            let version = shared.state.version + 1
            let jwt = table.requestAuthentications.isEmpty ? nil : try JWTAuthenticator(table: table, remote: remoteJWKS)
            shared.state.replace(ProxySnapshot(table: table, version: version, jwt: jwt))
            reloads.withLockedValue { $0.ok += 1 }
            logger.info("configuration reloaded", metadata: ["reason": "\(reason)", "version": "\(version)"])
            if ready.withLockedValue({ $0 }) { Task { await reconcileTCPListeners() } }
            return true
        } catch {
            reloads.withLockedValue { $0.rejected += 1 }
            logger.error("configuration rejected; keeping version \(shared.state.version)", metadata: ["reason": "\(reason)", "errors": "\(error)"])
            return false
        }
    }

    /// Fetches the JWK sets of `RequestAuthentication` `jwksUri`s: every 5 s until a first fetch of a URL
    /// succeeds (tokens checked against it get 401 "Jwks remote fetch is failed" until then), then every
    /// 20 minutes; a failed refresh keeps the keys already fetched.
    private func refreshJWKS() async {
        var fetchedAt: [String: ContinuousClock.Instant] = [:]
        let clock = ContinuousClock()
        while !Task.isCancelled {
            for uri in shared.state.snapshot.jwt?.remoteURIs ?? [] {
                if let at = fetchedAt[uri], clock.now - at < .seconds(20 * 60) { continue }
                do {
                    var request = HTTPClientRequest(url: uri)
                    request.headers.add(name: "accept", value: "application/json")
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    guard response.status == .ok else { throw JWTError("HTTP \(response.status.code)") }
                    remoteJWKS.store(uri, try JWK.parseSet(String(buffer: body)))
                    fetchedAt[uri] = clock.now
                    logger.info("fetched JWKS", metadata: ["uri": "\(uri)"])
                } catch {
                    logger.warning("cannot fetch JWKS", metadata: ["uri": "\(uri)", "error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .seconds(5))
        }
    }

    private func watchForReload() async {
        // Config files, and the mesh certificate files (rotated in place, as Istio's agent writes them).
        let paths = options.configPaths + [options.certificatePath, options.keyPath, options.caPath].compactMap { $0 }
        var last = paths.map(Self.modificationStamp)
        while !Task.isCancelled {
            try? await Task.sleep(for: options.reloadPollInterval)
            let now = paths.map(Self.modificationStamp)
            if now != last {
                last = now
                reload(reason: "file change")
            }
        }
    }

    static func modificationStamp(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "missing" }
        return "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec).\(st.st_size).\(st.st_ino)"
    }

    private func shutdown() async {
        ready.withLockedValue { $0 = false }
        for c in channels.withLockedValue({ $0 }) { try? await c.close() }
        for c in tcpListeners.withLockedValue({ Array($0.values) }) { try? await c.close() }
        if let a = admin.withLockedValue({ $0 }) { await a.shutdown() }
        try? await group.shutdownGracefully()
        for log in accessLogs { log.shutdown() }
    }

    // MARK: Admin

    func adminResponse(_ request: HTTPRequest) async -> HTTPResponse {
        switch request.path {
        case "/ready":
            return ready.withLockedValue { $0 } ? .text(.ok, "LIVE\n") : .text(.serviceUnavailable, "PRE_INITIALIZING\n")
        case "/stats/prometheus":
            var body = ByteBuffer()
            body.writeString(metrics.render())
            body.writeString(exporterStats())
            var r = HTTPResponse(status: .ok, body: body)
            r.headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
            return r
        case "/config_dump":
            var body = ByteBuffer()
            body.writeString(configDump())
            var r = HTTPResponse(status: .ok, body: body)
            r.headers.add(name: "content-type", value: "application/json")
            return r
        default:
            return .text(.notFound, "unknown admin path; try /ready, /stats/prometheus or /config_dump\n")
        }
    }

    /// What the proxy's own exporters did, by extension provider and signal, in the collector's
    /// `sextant_exporter_*` style: items delivered, and items dropped (queue full or export failed; a slow or
    /// absent collector never delays a request, so this is where it shows).
    func exporterStats() -> String {
        var rows: [(provider: String, signal: String, sent: Int, dropped: Int)] = []
        if let t = shared.tracer { rows.append((t.settings.provider, "traces", t.exporter.sent, t.exporter.dropped)) }
        for log in exportedAccessLogs { rows.append((log.provider, "logs", log.sent, log.dropped)) }
        if rows.isEmpty { return "" }
        var out = ""
        func family(_ name: String, _ help: String, _ value: (Int, Int) -> Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for r in rows {
                out += name
                PrometheusText.appendLabels([("provider", r.provider), ("signal", r.signal)], nil, to: &out)
                out += " \(value(r.sent, r.dropped))\n"
            }
        }
        family("sextant_proxy_exporter_dropped_items_total", "Spans and access-log records dropped: queue full, or the export failed.") { $1 }
        family("sextant_proxy_exporter_sent_items_total", "Spans and access-log records delivered to an extension provider.") { s, _ in s }
        return out
    }

    /// A JSON view of the configuration in force: version, identity, clusters with endpoints and
    /// circuit-breaker state, virtual hosts. (Not Envoy's protobuf-shaped dump: ours is for people.)
    func configDump() -> String {
        let snapshot = shared.state.snapshot
        let t = snapshot.table
        let r = reloads.withLockedValue { $0 }
        let bytes = JSONWriter.document(estimatedSize: 4096) { w in
            w.beginObject()
            w.key("version")
            w.number(snapshot.version)
            w.key("reloads_ok")
            w.number(r.ok)
            w.key("reloads_rejected")
            w.number(r.rejected)
            w.key("identity")
            w.beginObject()
            w.key("workload")
            w.string(t.identity.workload)
            w.key("namespace")
            w.string(t.identity.namespace)
            w.key("mode")
            w.string(t.identity.mode.rawValue)
            w.key("principal")
            w.string(credentials?.current.principal ?? "")
            if let app = options.app, options.inbound != nil {
                w.key("inbound_peer_authentication")
                w.string(t.peerAuthenticationMode(port: app.port).rawValue)
            }
            w.endObject()
            w.key("clusters")
            w.beginArray()
            for c in snapshot.clusters.values.sorted(by: { $0.name < $1.name }) {
                w.element()
                w.beginObject()
                w.key("name")
                w.string(c.name)
                w.key("protocol")
                w.string(c.cluster.protocolName.rawValue)
                w.key("tls_mode")
                w.string(c.cluster.policy.tls?.mode.rawValue ?? "DISABLE")
                w.key("active_requests")
                w.number(c.activeRequests.load(ordering: .relaxed))
                w.key("connections")
                w.number(c.connections.load(ordering: .relaxed))
                w.key("pending")
                w.number(c.pending.load(ordering: .relaxed))
                w.key("ejections")
                w.number(c.ejections)
                w.key("endpoints")
                w.beginArray()
                for e in c.endpoints {
                    w.element()
                    w.string(e.key)
                }
                w.endArray()
                w.endObject()
            }
            w.endArray()
            w.key("virtual_hosts")
            w.beginArray()
            for h in t.hostNames {
                w.element()
                w.string(h)
            }
            w.endArray()
            w.endObject()
        }
        return String(decoding: bytes, as: UTF8.self) + "\n"
    }
}
