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

    /// The incoming context, if any: `traceparent` first, then single `b3`, then `x-b3-*`. A sampling
    /// decision that came with it is kept (nil when the caller left it to us). The fields are found by the
    /// indexes `at` noted (the first of each name), so the request's fields are not searched once per name.
    static func extract(_ fields: [(String, String)], at i: Fields) -> (TraceID, SpanID, Bool?, String?)? {
        if let k = i.traceparent, let c = TraceContextHeaders.traceparentContext(fields[k].1) {
            return (c.traceID, c.spanID, c.sampled, i.tracestate.map { fields[$0].1 })
        }
        if let k = i.b3, let c = TraceContextHeaders.b3SingleContext(fields[k].1) {
            return (c.traceID, c.spanID, c.sampled, nil)
        }
        if let tk = i.traceID, let sk = i.spanID, let t = TraceContextHeaders.b3TraceID(fields[tk].1),
            let s = TraceContextHeaders.b3SpanID(fields[sk].1)
        {
            var sampled: Bool?
            if let k = i.sampled {
                let v = fields[k].1
                sampled = v == "1" || v.lowercased() == "true"
            }
            if let k = i.flags, fields[k].1 == "1" { sampled = true }
            return (t, s, sampled, nil)
        }
        return nil
    }

    /// Where the trace fields are in a request's field list: the first field of each name, in any case.
    struct Fields {
        var traceparent: Int?
        var tracestate: Int?
        var b3: Int?
        var traceID: Int?
        var spanID: Int?
        var sampled: Int?
        var flags: Int?

        init() {}

        /// The indexes of `fields`' trace fields.
        init(_ fields: [(String, String)]) {
            for k in fields.indices { note(fields[k].0, at: k) }
        }

        /// Notes field `k` if `name` is a trace field's not seen before; most names are passed over by length.
        @inline(__always)
        mutating func note(_ name: String, at k: Int) {
            func first(_ slot: inout Int?, _ lowercased: String) -> Bool {
                guard slot == nil, HostName.equalsIgnoringASCIICase(name, lowercased: lowercased) else { return false }
                slot = k
                return true
            }
            switch name.utf8.count {
            case 2: _ = first(&b3, "b3")
            case 10: _ = first(&tracestate, "tracestate") || first(&flags, "x-b3-flags")
            case 11: _ = first(&traceparent, "traceparent") || first(&spanID, "x-b3-spanid")
            case 12: _ = first(&traceID, "x-b3-traceid") || first(&sampled, "x-b3-sampled")
            default: break
            }
        }
    }

    /// Whether `inject` sets or removes the field `name` (any case): the proxy leaves such fields out of the
    /// list it forwards and appends what `inject(into:b3:)` writes (`x-b3-flags` and a stale
    /// `x-b3-parentspanid` are thereby removed). `tracestate` is replaced only when this hop has one.
    static func isInjected(_ name: String, replacingTraceState: Bool) -> Bool {
        switch name.utf8.count {
        case 2, 10, 11, 12, 17: break
        default: return false
        }
        // The name's bytes are read once for all the candidates of its length (`x-request-id` has two).
        return name.withUTF8Buffer { isInjected(bytes: UnsafeRawBufferPointer($0), replacingTraceState: replacingTraceState) }
    }

    private static func isInjected(bytes name: UnsafeRawBufferPointer, replacingTraceState: Bool) -> Bool {
        switch name.count {
        case 2: return Token.equalsFoldingCase(name, "b3")
        case 10: return Token.equalsFoldingCase(name, "x-b3-flags") || (replacingTraceState && Token.equalsFoldingCase(name, "tracestate"))
        case 11: return Token.equalsFoldingCase(name, "traceparent") || Token.equalsFoldingCase(name, "x-b3-spanid")
        case 12: return Token.equalsFoldingCase(name, "x-b3-traceid") || Token.equalsFoldingCase(name, "x-b3-sampled")
        case 17: return Token.equalsFoldingCase(name, "x-b3-parentspanid")
        default: return false
        }
    }

    /// Writes this hop's context for the next one, in every format Istio's proxies read, into a field list from
    /// which the fields it sets were left out (`isInjected`). `b3` says whether the request carried a single
    /// `b3` header (it is replaced only then).
    func inject(into fields: inout [(String, String)], b3: Bool) {
        let trace = traceID.hex
        let span = spanID.hex
        // `00-<trace>-<span>-<flags>` (W3C Trace Context §3.2) written in one buffer.
        let flags: UInt8 = sampled ? UInt8(ascii: "1") : UInt8(ascii: "0")
        let traceparent = String(unsafeUninitializedCapacity: 55) { out in
            out[0] = UInt8(ascii: "0")
            out[1] = UInt8(ascii: "0")
            out[2] = UInt8(ascii: "-")
            Hex.write(traceID.high, into: out, at: 3)
            Hex.write(traceID.low, into: out, at: 19)
            out[35] = UInt8(ascii: "-")
            Hex.write(spanID.value, into: out, at: 36)
            out[52] = UInt8(ascii: "-")
            out[53] = UInt8(ascii: "0")
            out[54] = flags
            return 55
        }
        fields.append(("traceparent", traceparent))
        if let traceState { fields.append(("tracestate", traceState)) }
        fields.append(("x-b3-traceid", trace))
        fields.append(("x-b3-spanid", span))
        if let p = parentSpanID { fields.append(("x-b3-parentspanid", p.hex)) }
        fields.append(("x-b3-sampled", sampled ? "1" : "0"))
        if b3 { fields.append(("b3", "\(trace)-\(span)-\(sampled ? "1" : "0")" + (parentSpanID.map { "-\($0.hex)" } ?? ""))) }
    }
}

/// This hop's trace context as the header lines `TraceContext.inject(into:b3:)` adds, written by the HTTP/1
/// head writer straight from the IDs (no `String` made per field): for the usual upstream request, whose
/// fields nothing edits after they are built. `HTTP1EncodersTests` holds the two forms byte for byte equal.
struct InjectedTrace: Sendable {
    let context: TraceContext
    /// The request carried a single `b3` header (replaced only then).
    let b3: Bool

    private static let traceparent: StaticString = "traceparent: 00-"
    private static let tracestate: StaticString = "tracestate: "
    private static let traceID: StaticString = "x-b3-traceid: "
    private static let spanID: StaticString = "x-b3-spanid: "
    private static let parentSpanID: StaticString = "x-b3-parentspanid: "
    private static let sampled: StaticString = "x-b3-sampled: "
    private static let single: StaticString = "b3: "

    /// The lines' size in bytes.
    var byteCount: Int {
        let parent = context.parentSpanID != nil
        var n = Self.traceparent.utf8CodeUnitCount + 32 + 1 + 16 + 3 + 2
        if let ts = context.traceState { n += Self.tracestate.utf8CodeUnitCount + ts.utf8.count + 2 }
        n += Self.traceID.utf8CodeUnitCount + 32 + 2
        n += Self.spanID.utf8CodeUnitCount + 16 + 2
        if parent { n += Self.parentSpanID.utf8CodeUnitCount + 16 + 2 }
        n += Self.sampled.utf8CodeUnitCount + 1 + 2
        if b3 { n += Self.single.utf8CodeUnitCount + 32 + 1 + 16 + 2 + (parent ? 17 : 0) + 2 }
        return n
    }

    func write(into out: inout HTTP1HeadWriter.Out) {
        let c = context
        let flag = c.sampled ? UInt8(ascii: "1") : UInt8(ascii: "0")
        // `00-<trace>-<span>-<flags>` (W3C Trace Context §3.2).
        out.put(Self.traceparent)
        Self.ids(c, &out)
        out.byte(UInt8(ascii: "0"))
        out.byte(flag)
        out.crlf()
        if let ts = c.traceState {
            out.put(Self.tracestate)
            out.put(ts)
            out.crlf()
        }
        out.put(Self.traceID)
        out.hex16(c.traceID.high)
        out.hex16(c.traceID.low)
        out.crlf()
        out.put(Self.spanID)
        out.hex16(c.spanID.value)
        out.crlf()
        if let p = c.parentSpanID {
            out.put(Self.parentSpanID)
            out.hex16(p.value)
            out.crlf()
        }
        out.put(Self.sampled)
        out.byte(flag)
        out.crlf()
        if b3 {
            // `<trace>-<span>-<sampled>[-<parent>]` (B3 single header).
            out.put(Self.single)
            Self.ids(c, &out)
            out.byte(flag)
            if let p = c.parentSpanID {
                out.byte(UInt8(ascii: "-"))
                out.hex16(p.value)
            }
            out.crlf()
        }
    }

    /// `<trace>-<span>-`, as both `traceparent` and `b3` begin (after `traceparent`'s version).
    private static func ids(_ c: TraceContext, _ out: inout HTTP1HeadWriter.Out) {
        out.hex16(c.traceID.high)
        out.hex16(c.traceID.low)
        out.byte(UInt8(ascii: "-"))
        out.hex16(c.spanID.value)
        out.byte(UInt8(ascii: "-"))
    }

    /// `head` with the fields added as strings (`inject`): for an HTTP/2 upstream and a mirrored copy, which
    /// carry `HTTPHeaders`.
    func adding(to head: HTTPRequestHead) -> HTTPRequestHead {
        var fields = head.headers.map { ($0.name, $0.value) }
        context.inject(into: &fields, b3: b3)
        var h = head
        h.headers = HTTPHeaders(fields)
        return h
    }
}

/// Where spans go: `meshConfig.extensionProviders` (`zipkin` → Zipkin v2 JSON to `/api/v2/spans`;
/// `opentelemetry` → OTLP/gRPC, or OTLP/HTTP protobuf when `http` is set) or the legacy
/// `defaultConfig.tracing.zipkin.address`.
public struct TracingSettings: Sendable {
    /// The extension provider's name (`zipkin` for the legacy `defaultConfig.tracing.zipkin.address`).
    public var provider: String
    public var destination: TelemetryDestination
    /// Percent of requests without an incoming decision that are sampled.
    public var samplingPercent: Double

    /// The settings Istio would apply to this proxy, or nil when tracing is off or has nowhere to go.
    /// Provider services are resolved through `ServiceEntry`s as Istio resolves them through clusters.
    public static func resolve(_ table: RouteTable) -> TracingSettings? {
        let mesh = table.mesh
        guard mesh.enableTracing else { return nil }
        let applicable = table.applicableTelemetry
        if applicable.contains(where: { $0.disableSpanReporting == true }) { return nil }
        let providers = applicable.first(where: { !$0.tracingProviders.isEmpty })?.tracingProviders ?? mesh.defaultTracingProviders
        let sampling = applicable.compactMap(\.randomSamplingPercentage).first ?? mesh.tracingSampling
        for name in providers {
            guard let p = mesh.extensionProviders.first(where: { $0.name == name }) else { continue }
            switch p.kind {
            case .zipkin(let service, let port, _):
                let (host, port) = table.providerAddress(service: service, port: port)
                return TracingSettings(provider: name, destination: .zipkin(host: host, port: port), samplingPercent: sampling)
            case .opentelemetry(let service, let port, let path):
                let (host, port) = table.providerAddress(service: service, port: port)
                let destination: TelemetryDestination =
                    path.map { .otlpHTTP(host: host, port: port, path: $0) } ?? .otlpGRPC(host: host, port: port)
                return TracingSettings(provider: name, destination: destination, samplingPercent: sampling)
            default:
                continue
            }
        }
        if let address = mesh.zipkinAddress, let (host, port) = HostPort.parse(address) {
            return TracingSettings(provider: "zipkin", destination: .zipkin(host: host, port: port), samplingPercent: sampling)
        }
        return nil
    }
}

/// Sends finished spans in batches under this proxy's resource (Istio's Zipkin service name
/// `<canonical service>.<namespace>`).
///
/// For OTLP (gRPC or HTTP) each span is written in wire form when its request ends (`SpanBuilder.encodedSpan`)
/// and queued back to back with the others (`TelemetryRecords`); a batch is a request's prefix followed by those
/// bytes, copied once into the export's buffer. Zipkin's JSON is encoded from `Span` values.
final class SpanExporter: Sendable {
    private enum Queue {
        case spans(TelemetryBatcher<TelemetryItems<Span>>)
        case encoded(TelemetryBatcher<TelemetryRecords>)
    }
    private let queue: Queue

    init(settings: TracingSettings, identity: ProxyIdentity, group: any EventLoopGroup, logger: Logger) {
        let me = PeerMetadata(identity: identity)
        let resource = Resource(attributes: [KeyValue("service.name", .string("\(me.canonicalService).\(identity.namespace)"))])
        let transport = TelemetryTransport(destination: settings.destination, group: group, logger: logger)
        switch settings.destination {
        case .zipkin, .fluentForward:  // tracing providers never resolve to Fluentd
            queue = .spans(TelemetryBatcher(TelemetryItems(), transport: transport) { [transport] spans in
                await transport.send(TracesData(resourceSpans: [ResourceSpans(resource: resource, scopeSpans: [ScopeSpans(spans: spans)])]))
            })
        case .otlpGRPC, .otlpHTTP:
            queue = .encoded(TelemetryBatcher(TelemetryRecords(), transport: transport) { [transport] spans in
                await transport.send(framed: spans.bytes, resource: resource, .traces)
            })
        }
    }

    /// Queues the span of a finished request.
    func add(_ record: ProxyRecord, _ trace: TraceContext, builder: SpanBuilder) {
        switch queue {
        case .spans(let b): b.add(builder.span(record, trace))
        case .encoded(let b): builder.withEncodedSpan(record, trace) { b.add($0) }
        }
    }

    func run() async {
        switch queue {
        case .spans(let b): await b.run()
        case .encoded(let b): await b.run()
        }
    }

    /// Spans delivered, and dropped (queue full or export failed).
    var sent: Int {
        switch queue {
        case .spans(let b): b.sent
        case .encoded(let b): b.sent
        }
    }
    var dropped: Int {
        switch queue {
        case .spans(let b): b.dropped
        case .encoded(let b): b.dropped
        }
    }
}

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
    /// The tags that are the same on every span, in wire form: the run before `requestID` (node, zone,
    /// component) and the run before `userAgent` (canonical service, namespace, revision).
    private let identityWire: [UInt8]
    private let workloadWire: [UInt8]

    init(identity: ProxyIdentity) {
        self.identity = identity
        me = PeerMetadata(identity: identity)
        nodeID = Self.nodeID(identity)
        identityWire = SpanWireWriter.encodedAttributes([
            (Tag.nodeID.key, nodeID), (Tag.zone.key, ""), (Tag.component.key, "proxy"),
        ])
        workloadWire = SpanWireWriter.encodedAttributes([
            (Tag.canonicalService.key, me.canonicalService), (Tag.namespace.key, identity.namespace),
            (Tag.canonicalRevision.key, me.canonicalRevision),
        ])
    }

    /// Envoy's node ID as Istio sets it: `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`.
    static func nodeID(_ identity: ProxyIdentity) -> String {
        "\(identity.mode == .gateway ? "router" : "sidecar")~127.0.0.1~\(identity.workload).\(identity.namespace)~\(identity.namespace).svc.cluster.local"
    }

    /// The port of an Envoy cluster name `outbound|<port>|<subset>|<host>`, read on UTF-8 (this runs for
    /// every traced request; splitting by `Character` cost more than building the rest of the span).
    static func clusterPort(_ cluster: String) -> Int? {
        var c = cluster
        return c.withUTF8 { u -> Int? in
            let prefix = "outbound|".utf8
            guard u.count > prefix.count, u.starts(with: prefix) else { return nil }
            var i = prefix.count
            var port = 0
            var digits = 0
            while i < u.count, u[i] != UInt8(ascii: "|") {
                let d = u[i] &- UInt8(ascii: "0")
                guard d < 10, digits < 6 else { return nil }
                port = port * 10 + Int(d)
                digits += 1
                i += 1
            }
            // Then `|<subset>|<host>`: exactly two more bars.
            guard digits > 0, i < u.count else { return nil }
            var bars = 1
            i += 1
            while i < u.count {
                if u[i] == UInt8(ascii: "|") { bars += 1 }
                i += 1
            }
            return bars == 2 ? port : nil
        }
    }

    /// Istio's span name for a record, `<service>:<port>/*`.
    private func name(_ r: ProxyRecord) -> String {
        // Istio's decorator names the destination's service port: the cluster's (`outbound|9080|v1|host`)
        // on the client side, not the port the caller happened to address (a gateway's listener). An
        // outbound request routed to a cluster needs nothing else (its service is the cluster's host).
        if r.direction == .outbound, let name = r.spanName { return name }
        if r.direction == .outbound, let service = r.destinationService, let c = r.upstreamCluster, let port = Self.clusterPort(c) {
            return Self.name(service, port)
        }
        let (host, authorityPort) = HostName.splitAuthority(r.authority)
        // Inbound: the service the caller's proxy chose (peer metadata), else the Host qualified in this
        // workload's namespace, as Istio names its inbound routes by service.
        let service = r.destinationService ?? r.peer?.service ?? HostName.qualify(host, namespace: identity.namespace)
        var port = r.direction == .inbound ? (r.peer?.servicePort ?? authorityPort ?? 80) : (authorityPort ?? 80)
        if r.direction == .outbound, let c = r.upstreamCluster, let p = Self.clusterPort(c) { port = p }
        return Self.name(service, port)
    }

    static func name(_ service: String, _ port: Int) -> String {
        var name = service
        name.reserveCapacity(service.utf8.count + 8)
        name += ":"
        name += String(port)
        name += "/*"
        return name
    }

    /// Envoy's span tags, in the order they are written (`allCases`, which `span` follows; `encodedSpan` writes
    /// the same list spelled out, and `SpanWireTests` holds the two forms equal).
    enum Tag: CaseIterable {
        case nodeID, zone, component, requestID, url, method, httpProtocol, statusCode, responseFlags, requestSize
        case responseSize, canonicalService, namespace, canonicalRevision, userAgent, upstreamCluster
        case upstreamClusterName, upstreamAddress, peerAddress, error

        var key: String {
            switch self {
            case .nodeID: "node_id"
            case .zone: "zone"
            case .component: "component"
            case .requestID: "guid:x-request-id"
            case .url: "http.url"
            case .method: "http.method"
            case .httpProtocol: "http.protocol"
            case .statusCode: "http.status_code"
            case .responseFlags: "response_flags"
            case .requestSize: "request_size"
            case .responseSize: "response_size"
            case .canonicalService: "istio.canonical_service"
            case .namespace: "istio.namespace"
            case .canonicalRevision: "istio.canonical_revision"
            case .userAgent: "user_agent"
            case .upstreamCluster: "upstream_cluster"
            case .upstreamClusterName: "upstream_cluster.name"
            case .upstreamAddress: "upstream_address"
            case .peerAddress: "peer.address"
            case .error: "error"
            }
        }
    }

    /// A tag's value for a record; nil leaves the tag out.
    private func value(_ tag: Tag, _ r: ProxyRecord) -> String? {
        switch tag {
        case .nodeID: nodeID
        case .zone: ""
        case .component: "proxy"
        case .requestID: r.requestID
        case .url: "http://\(r.authority)\(r.path)"
        case .method: r.method
        case .httpProtocol: r.protocolName
        case .statusCode: String(r.responseCode)
        case .responseFlags: r.responseFlags.description
        case .requestSize: String(r.bytesReceived)
        case .responseSize: String(r.bytesSent)
        case .canonicalService: me.canonicalService
        case .namespace: identity.namespace
        case .canonicalRevision: me.canonicalRevision
        case .userAgent: r.requestHeader(.userAgent)
        case .upstreamCluster, .upstreamClusterName: r.upstreamCluster
        case .upstreamAddress: r.upstreamHost
        case .peerAddress: r.downstreamRemoteAddress
        case .error: Self.isError(r) ? "true" : nil
        }
    }

    private static func isError(_ r: ProxyRecord) -> Bool { r.responseCode >= 500 || r.responseCode == 0 }

    /// The tags' keys in wire form (`SpanWireWriter.AttributeKey`), made once. One object read once per span:
    /// a static per key cost a `swift_once` check per attribute.
    private final class WireKeys: Sendable {
        static let shared = WireKeys()
        let requestID = SpanWireWriter.AttributeKey(Tag.requestID.key)
        let url = SpanWireWriter.AttributeKey(Tag.url.key)
        let method = SpanWireWriter.AttributeKey(Tag.method.key)
        let httpProtocol = SpanWireWriter.AttributeKey(Tag.httpProtocol.key)
        let statusCode = SpanWireWriter.AttributeKey(Tag.statusCode.key)
        let responseFlags = SpanWireWriter.AttributeKey(Tag.responseFlags.key)
        let requestSize = SpanWireWriter.AttributeKey(Tag.requestSize.key)
        let responseSize = SpanWireWriter.AttributeKey(Tag.responseSize.key)
        let userAgent = SpanWireWriter.AttributeKey(Tag.userAgent.key)
        let upstreamCluster = SpanWireWriter.AttributeKey(Tag.upstreamCluster.key)
        let upstreamClusterName = SpanWireWriter.AttributeKey(Tag.upstreamClusterName.key)
        let upstreamAddress = SpanWireWriter.AttributeKey(Tag.upstreamAddress.key)
        let peerAddress = SpanWireWriter.AttributeKey(Tag.peerAddress.key)
        let error = SpanWireWriter.AttributeKey(Tag.error.key)
    }

    /// `span(r, t)` in OTLP wire form (a `Span` message's bytes, `SpanWireWriter`), written directly: the
    /// same attributes with the same values in the same order (`Tag.allCases`; `SpanWireTests` compares the
    /// two forms), with no `Span` value made and destroyed on the request path. The tags that never change
    /// are copied in two runs made once; numbers and the URL are written in place, not made into strings.
    func encodedSpan(_ r: ProxyRecord, _ t: TraceContext) -> [UInt8] {
        withEncodedSpan(r, t) { Array($0) }
    }

    /// `encodedSpan`'s bytes lent to `body`, without an array made for them.
    func withEncodedSpan<R>(_ r: ProxyRecord, _ t: TraceContext, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var w = SpanWireWriter(isError: Self.isError(r))
        let keys = WireKeys.shared
        // Last attribute first (the writer prepends).
        if Self.isError(r) { w.attribute(keys.error, "true") }
        if let v = r.downstreamRemoteAddress { w.attribute(keys.peerAddress, v) }
        if let v = r.upstreamHost { w.attribute(keys.upstreamAddress, v) }
        if let v = r.upstreamCluster {
            w.attribute(keys.upstreamClusterName, v)
            w.attribute(keys.upstreamCluster, v)
        }
        if let v = r.requestHeader(.userAgent) { w.attribute(keys.userAgent, v) }
        w.prepend(attributes: workloadWire)
        Self.number(&w, keys.responseSize, r.bytesSent)
        Self.number(&w, keys.requestSize, r.bytesReceived)
        w.attribute(keys.responseFlags, r.responseFlags.description)
        Self.number(&w, keys.statusCode, r.responseCode)
        w.attribute(keys.httpProtocol, r.protocolName)
        w.attribute(keys.method, r.method)
        w.attribute(keys.url, joining: "http://", r.authority, r.path)
        w.attribute(keys.requestID, r.requestID)
        w.prepend(attributes: identityWire)
        return w.finish(
            traceID: t.traceID, spanID: t.spanID, traceState: t.traceState ?? "", parentSpanID: t.parentSpanID, name: name(r),
            kind: r.direction == .outbound ? .client : .server, startTimeUnixNano: r.startUnixNanos,
            endTimeUnixNano: r.startUnixNanos + UInt64(max(0, r.durationNanoseconds)), body)
    }

    /// A numeric tag: its digits in place, as `String(n)` writes them.
    @inline(__always)
    private static func number(_ w: inout SpanWireWriter, _ key: SpanWireWriter.AttributeKey, _ n: Int) {
        if n >= 0 { w.attribute(key, decimal: UInt64(n)) } else { w.attribute(key, String(n)) }
    }

    func span(_ r: ProxyRecord, _ t: TraceContext) -> Span {
        Span(
            traceID: t.traceID, spanID: t.spanID, traceState: t.traceState ?? "", parentSpanID: t.parentSpanID, flags: 0, name: name(r),
            kind: r.direction == .outbound ? .client : .server, startTimeUnixNano: r.startUnixNanos,
            endTimeUnixNano: r.startUnixNanos + UInt64(max(0, r.durationNanoseconds)),
            attributes: Tag.allCases.compactMap { tag in value(tag, r).map { KeyValue(tag.key, .string($0)) } },
            status: SpanStatus(code: Self.isError(r) ? .error : .unset))
    }
}
