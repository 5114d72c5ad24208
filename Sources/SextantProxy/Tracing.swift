import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantIstio
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantZipkin

/// The trace context of one hop: extracted from W3C `traceparent`/`tracestate` or B3 (single `b3` or
/// `x-b3-*`), else started here; this proxy's span is a child of the incoming one.
struct TraceContext: Sendable {
    var traceID: TraceID
    var spanID: SpanID
    var parentSpanID: SpanID?
    var sampled: Bool
    var traceState: String?

    /// W3C Trace Context §3.2: `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`.
    static func parseTraceparent(_ v: String) -> (TraceID, SpanID, Bool)? {
        let parts = v.split(separator: "-")
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[3].count == 2,
            let trace = TraceID(hex: parts[1]), let span = SpanID(hex: parts[2]), let f = UInt8(parts[3], radix: 16),
            trace.isValid, span.isValid
        else { return nil }
        return (trace, span, f & 1 == 1)
    }

    /// B3 ids: 16 or 32 hex digits for trace ids (64-bit ids are left-padded), 16 for span ids.
    static func b3TraceID(_ v: String) -> TraceID? {
        let padded = v.count == 16 ? String(repeating: "0", count: 16) + v : v
        guard let id = TraceID(hex: padded), id.isValid else { return nil }
        return id
    }

    static func b3SpanID(_ v: String) -> SpanID? {
        guard let id = SpanID(hex: v), id.isValid else { return nil }
        return id
    }

    /// The incoming context, if any: `traceparent` first, then single `b3`, then `x-b3-*`. A sampling
    /// decision that came with it is kept (nil when the caller left it to us).
    static func extract(_ h: HTTPHeaders) -> (TraceID, SpanID, Bool?, String?)? {
        if let tp = h.first(name: "traceparent"), let (t, s, sampled) = parseTraceparent(tp) {
            return (t, s, sampled, h.first(name: "tracestate"))
        }
        if let b3 = h.first(name: "b3") {
            let parts = b3.split(separator: "-").map(String.init)
            if parts.count >= 2, let t = b3TraceID(parts[0]), let s = b3SpanID(parts[1]) {
                let sampled: Bool? = parts.count >= 3 ? (parts[2] == "1" || parts[2] == "d") : nil
                return (t, s, sampled, nil)
            }
        }
        if let tv = h.first(name: "x-b3-traceid"), let sv = h.first(name: "x-b3-spanid"), let t = b3TraceID(tv), let s = b3SpanID(sv) {
            var sampled: Bool?
            if let v = h.first(name: "x-b3-sampled") { sampled = v == "1" || v.lowercased() == "true" }
            if h.first(name: "x-b3-flags") == "1" { sampled = true }
            return (t, s, sampled, nil)
        }
        return nil
    }

    /// Writes this hop's context for the next one, in every format Istio's proxies read.
    func inject(into h: inout HTTPHeaders) {
        let flags = sampled ? "01" : "00"
        h.replaceOrAdd(name: "traceparent", value: "00-\(traceID.hex)-\(spanID.hex)-\(flags)")
        if let traceState { h.replaceOrAdd(name: "tracestate", value: traceState)}
        h.replaceOrAdd(name: "x-b3-traceid", value: traceID.hex)
        h.replaceOrAdd(name: "x-b3-spanid", value: spanID.hex)
        if let p = parentSpanID { h.replaceOrAdd(name: "x-b3-parentspanid", value: p.hex) } else { h.remove(name: "x-b3-parentspanid") }
        h.replaceOrAdd(name: "x-b3-sampled", value: sampled ? "1" : "0")
        h.remove(name: "x-b3-flags")
        if h.contains(name: "b3") {
            h.replaceOrAdd(name: "b3", value: "\(traceID.hex)-\(spanID.hex)-\(sampled ? "1" : "0")" + (parentSpanID.map { "-\($0.hex)" } ?? ""))
        }
    }
}

/// Where spans go: `meshConfig.extensionProviders` (`zipkin` → Zipkin v2 JSON to `/api/v2/spans`;
/// `opentelemetry` with `http` → OTLP/HTTP protobuf) or the legacy `defaultConfig.tracing.zipkin.address`.
public struct TracingSettings: Sendable {
    public enum Sink: Sendable {
        case zipkin(host: String, port: Int)
        case otlpHTTP(host: String, port: Int, path: String)
    }
    public var sink: Sink
    /// Percent of requests without an incoming decision that are sampled.
    public var samplingPercent: Double

    /// The settings Istio would apply to this proxy, or nil when tracing is off / has nowhere to go.
    /// Returns a warning for providers that cannot be served yet.
    public static func resolve(_ mesh: MeshConfig, telemetry: [TelemetryResource], identity: ProxyIdentity) -> (TracingSettings?, String?) {
        guard mesh.enableTracing else { return (nil, nil) }
        // Telemetry resources: the workload's namespace (selector matching), then the root namespace.
        let applicable = telemetry.filter { t in
            (t.meta.namespace == identity.namespace && t.selector.allSatisfy { identity.labels[$0.key] == $0.value })
                || t.meta.namespace == "istio-system"
        }.sorted { a, _ in a.meta.namespace == identity.namespace }
        let providers = applicable.first(where: { !$0.tracingProviders.isEmpty })?.tracingProviders ?? mesh.defaultTracingProviders
        let sampling = applicable.compactMap(\.randomSamplingPercentage).first ?? mesh.tracingSampling
        if applicable.contains(where: { $0.disableSpanReporting == true }) { return (nil, nil) }
        for name in providers {
            guard let p = mesh.extensionProviders.first(where: { $0.name == name }) else { continue }
            switch p.kind {
            case .zipkin(let service, let port, _):
                return (TracingSettings(sink: .zipkin(host: service, port: port), samplingPercent: sampling), nil)
            case .opentelemetry(let service, let port, let path?):
                return (TracingSettings(sink: .otlpHTTP(host: service, port: port, path: path), samplingPercent: sampling), nil)
            case .opentelemetry:
                return (nil, "tracing provider '\(name)' uses OTLP/gRPC, which sextant proxy cannot send yet; set opentelemetry.http or use a zipkin provider")
            default:
                continue
            }
        }
        if let address = mesh.zipkinAddress, let (host, port) = HostPort.parse(address) {
            return (TracingSettings(sink: .zipkin(host: host, port: port), samplingPercent: sampling), nil)
        }
        return (nil, nil)
    }
}

/// Collects finished spans and sends them in batches (every second, or at 512 spans) without ever
/// blocking or failing a request: when the collector is slow or down, spans beyond `maxQueued` are
/// dropped and counted.
public final class SpanExporter: @unchecked Sendable {
    let settings: TracingSettings
    let resource: Resource
    let group: any EventLoopGroup
    let logger: Logger
    let maxQueued = 10_000
    private let lock = NIOLock()
    private var queue: [Span] = []
    /// Spans sent, and dropped (queue full or export failed).
    public private(set) var sent = 0
    public private(set) var dropped = 0

    init(settings: TracingSettings, identity: ProxyIdentity, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        let me = PeerMetadata(identity: identity)
        // Istio's Zipkin service name: `<canonical service>.<namespace>`.
        resource = Resource(attributes: [KeyValue("service.name", .string("\(me.canonicalService).\(identity.namespace)"))])
        self.group = group
        self.logger = logger
    }

    func add(_ span: Span) {
        lock.withLock {
            if queue.count >= maxQueued {
                dropped += 1
            } else {
                queue.append(span)
            }
        }
    }

    /// Runs until cancelled, then sends what is left once.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            await flush()
        }
        await flush()
    }

    func flush() async {
        while true {
            let batch = lock.withLock { () -> [Span] in
                let n = min(queue.count, 512)
                let b = Array(queue.prefix(n))
                queue.removeFirst(n)
                return b
            }
            if batch.isEmpty { return }
            let traces = TracesData(resourceSpans: [ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(spans: batch)])])
            let ok: Bool
            switch settings.sink {
            case .zipkin(let host, let port):
                ok = await post(host: host, port: port, path: "/api/v2/spans", contentType: "application/json", body: ZipkinV2.encodeJSON(traces))
            case .otlpHTTP(let host, let port, let path):
                ok = await post(host: host, port: port, path: path, contentType: "application/x-protobuf", body: OTLPProtobuf.encode(traces))
            }
            lock.withLock {
                if ok { sent += batch.count } else { dropped += batch.count }
            }
            if !ok { return }
        }
    }

    /// One HTTP/1.1 POST on a fresh connection; true on a 2xx answer.
    private func post(host: String, port: Int, path: String, contentType: String, body: [UInt8]) async -> Bool {
        do {
            let loop = group.next()
            let done = loop.makePromise(of: Int.self)
            let channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCatcher(promise: done))
                    }
                }
                .connect(host: host, port: port).get()
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
            head.headers.add(name: "host", value: "\(host):\(port)")
            head.headers.add(name: "content-type", value: contentType)
            head.headers.add(name: "content-length", value: "\(body.count)")
            head.headers.add(name: "connection", value: "close")
            var buffer = channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let timeout = loop.scheduleTask(in: .seconds(5)) { done.fail(ChannelError.connectTimeout(.seconds(5))) }
            let status = try await done.futureResult.get()
            timeout.cancel()
            channel.close(promise: nil)
            return (200..<300).contains(status)
        } catch {
            logger.debug("span export failed", metadata: ["error": "\(error)"])
            return false
        }
    }
}

/// Completes a promise with the response status once the response has been read.
private final class StatusCatcher: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Int>
    var status = 0

    init(promise: EventLoopPromise<Int>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = Int(h.status.code)
        case .body: break
        case .end: promise.succeed(status)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.fail(ChannelError.eof) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { promise.fail(error) }
}

@available(*, unavailable)
extension StatusCatcher: Sendable {}

/// Tracing as configured for this proxy: where spans go, how they are named.
final class ProxyTracer: Sendable {
    let settings: TracingSettings
    let exporter: SpanExporter
    let builder: SpanBuilder

    init(settings: TracingSettings, exporter: SpanExporter, builder: SpanBuilder) {
        self.settings = settings
        self.exporter = exporter
        self.builder = builder
    }
}

/// Builds Envoy-style spans from request records: one per hop, named `<host>:<port>/*` as Istio names
/// them, with Envoy's tags.
struct SpanBuilder: Sendable {
    let identity: ProxyIdentity
    let me: PeerMetadata
    let nodeID: String

    init(identity: ProxyIdentity) {
        self.identity = identity
        me = PeerMetadata(identity: identity)
        nodeID = "sidecar~127.0.0.1~\(identity.workload).\(identity.namespace)~\(identity.namespace).svc.cluster.local"
    }

    func span(_ r: ProxyRecord, _ t: TraceContext) -> Span {
        let (host, port) = HostName.splitAuthority(r.authority)
        let service = r.destinationService ?? host
        let name = "\(service):\(port ?? (r.direction == .inbound ? 80 : 80))/*"
        let end = r.startUnixNanos + UInt64(max(0, r.duration.timeAmount.nanoseconds))
        var attrs: [KeyValue] = [
            KeyValue("node_id", .string(nodeID)), KeyValue("zone", .string("")), KeyValue("component", .string("proxy")),
            KeyValue("guid:x-request-id", .string(r.requestID)), KeyValue("http.url", .string("http://\(r.authority)\(r.path)")),
            KeyValue("http.method", .string(r.method)), KeyValue("http.protocol", .string(r.protocolName)),
            KeyValue("http.status_code", .string(String(r.responseCode))), KeyValue("response_flags", .string(r.responseFlags.description)),
            KeyValue("request_size", .string(String(r.bytesReceived))), KeyValue("response_size", .string(String(r.bytesSent))),
            KeyValue("istio.canonical_service", .string(me.canonicalService)), KeyValue("istio.namespace", .string(identity.namespace)),
            KeyValue("istio.canonical_revision", .string(me.canonicalRevision)),
        ]
        if let ua = r.requestHeaders.first(name: "user-agent") { attrs.append(KeyValue("user_agent", .string(ua))) }
        if let c = r.upstreamCluster {
            attrs.append(KeyValue("upstream_cluster", .string(c)))
            attrs.append(KeyValue("upstream_cluster.name", .string(c)))
        }
        if let u = r.upstreamHost { attrs.append(KeyValue("upstream_address", .string(u))) }
        if let p = r.downstreamRemoteAddress { attrs.append(KeyValue("peer.address", .string(p))) }
        let isError = r.responseCode >= 500 || r.responseCode == 0
        if isError { attrs.append(KeyValue("error", .string("true"))) }
        return Span(
            traceID: t.traceID, spanID: t.spanID, traceState: t.traceState ?? "", parentSpanID: t.parentSpanID, flags: 0, name: name,
            kind: r.direction == .outbound ? .client : .server, startTimeUnixNano: r.startUnixNanos, endTimeUnixNano: end,
            attributes: attrs, status: SpanStatus(code: isError ? .error : .unset))
    }
}
