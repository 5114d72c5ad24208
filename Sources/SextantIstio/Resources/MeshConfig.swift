import SextantPipeline

/// Mesh-wide settings: `spec.meshConfig` of an `IstioOperator` (`install.istio.io/v1alpha1`), with
/// Istio's defaults for what is absent.
public struct MeshConfig: Sendable {
    public enum AccessLogEncoding: String, Sendable {
        case text = "TEXT"
        case json = "JSON"
    }

    /// Empty: access logging off (Istio's default profile). A path or `/dev/stdout`.
    public var accessLogFile = ""
    public var accessLogEncoding = AccessLogEncoding.text
    /// Empty: Istio's default format for the encoding.
    public var accessLogFormat = ""
    public var enableTracing = true
    /// `defaultConfig.tracing.sampling`, percent. Istio's chart default is 1.
    public var tracingSampling = 1.0
    /// `defaultConfig.tracing.zipkin.address` (`host:port`), the legacy tracer setting.
    public var zipkinAddress: String?
    public var extensionProviders: [ExtensionProvider] = []
    public var defaultTracingProviders: [String] = []
    public var defaultAccessLogProviders: [String] = []
    public var defaultMetricsProviders: [String] = []
    /// Istio's auto mTLS (default on): without a `DestinationRule` tls setting, the client side uses mesh
    /// mTLS to endpoints labelled `security.istio.io/tlsMode: istio` (those with a sidecar).
    public var enableAutoMtls = true

    public init() {}

    /// `extensionProviders[]`: where telemetry goes.
    public struct ExtensionProvider: Sendable {
        public enum Kind: Sendable {
            /// Zipkin v2 JSON to `http://service:port/api/v2/spans`.
            case zipkin(service: String, port: Int, maxTagLength: Int?)
            /// OTLP (gRPC by default, HTTP when `http` is set) to `service:port`.
            case opentelemetry(service: String, port: Int, httpPath: String?)
            /// An access-log file with its own format.
            case envoyFileAccessLog(path: String, text: String?, labels: [(String, String)])
            /// OTLP logs to `service:port` (Envoy's OpenTelemetry access-log service).
            case envoyOtelAls(service: String, port: Int, text: String?, labels: [(String, String)])
            /// Sextant's extension, not an Istio field: Envoy's Fluentd access logger
            /// (`envoy.access_loggers.fluentd`), records tagged `tag` to a Fluentd or Fluent Bit forward input at
            /// `service:port`; the record is `labels` (Istio's JSON field set when empty), flushed every
            /// `flushInterval` or once `bufferSizeBytes` of records wait (Envoy's `buffer_flush_interval`, 1 s, and
            /// `buffer_size_bytes`, 16384), reconnecting as `retry` says (Envoy's `retry_options`).
            case envoyFluentdAccessLog(
                service: String, port: Int, tag: String, labels: [(String, String)], flushInterval: Duration, bufferSizeBytes: Int,
                retry: FluentdRetryOptions)
            case prometheus
        }
        public var name: String
        public var kind: Kind
    }

    /// `envoyFluentdAccessLog.retryOptions`, Envoy's Fluentd logger's `retry_options`: after a failed connection
    /// attempt the next waits `baseInterval`, doubling up to `maxInterval` (`backoffOptions`; Envoy's defaults,
    /// 500 ms and 10× the base); once `maxConnectAttempts` attempts were made (no limit by default), a lost
    /// connection is not replaced and records are dropped.
    public struct FluentdRetryOptions: Sendable, Equatable {
        public var maxConnectAttempts: Int?
        public var baseInterval: Duration
        public var maxInterval: Duration

        public init(maxConnectAttempts: Int? = nil, baseInterval: Duration = .milliseconds(500), maxInterval: Duration? = nil) {
            self.maxConnectAttempts = maxConnectAttempts
            self.baseInterval = baseInterval
            self.maxInterval = maxInterval ?? baseInterval * 10
        }
    }

    /// Real MeshConfig fields we do not act on: accepted with a warning, so configs copied from a
    /// cluster load; anything else is an unknown field.
    static let ignoredFields: Set<String> = [
        "outboundTrafficPolicy", "inboundTrafficPolicy", "enablePrometheusMerge", "trustDomain", "trustDomainAliases",
        "rootNamespace", "defaultServiceExportTo", "defaultVirtualServiceExportTo", "defaultDestinationRuleExportTo",
        "localityLbSetting", "dnsRefreshRate", "h2UpgradePolicy", "inboundClusterStatName", "outboundClusterStatName",
        "certificates", "serviceSettings", "protocolDetectionTimeout", "connectTimeout", "tcpKeepalive",
        "ingressClass", "ingressService", "ingressControllerMode", "ingressSelector",
        "discoverySelectors", "pathNormalization", "defaultHttpRetryPolicy", "meshMTLS", "tlsDefaults",
        "caCertificates", "proxyListenPort", "proxyInboundListenPort", "proxyHttpPort", "enableEnvoyAccessLogService",
        "verifyCertificateAtClient", "configSources",
        "mixerCheckServer", "mixerReportServer", "disablePolicyChecks", "policyCheckFailOpen", "sidecarToTelemetrySessionAffinity",
    ]

    static func parse(_ r: inout ConfigReader) -> MeshConfig {
        var m = MeshConfig()
        m.accessLogFile = r.string("accessLogFile", default: "")
        m.accessLogEncoding = AccessLogEncoding(rawValue: r.choice("accessLogEncoding", ["TEXT", "JSON"], default: "TEXT"))!
        m.accessLogFormat = r.string("accessLogFormat", default: "")
        m.enableTracing = r.bool("enableTracing", default: true)
        m.enableAutoMtls = r.bool("enableAutoMtls", default: true)
        if var dc = r.optionalSection("defaultConfig") {
            if var t = dc.optionalSection("tracing") {
                m.tracingSampling = t.double("sampling", default: 1.0, min: 0, max: 100)
                if var z = t.optionalSection("zipkin") {
                    m.zipkinAddress = z.optionalString("address")
                    z.finish()
                }
                for k in ["max_path_tag_length", "maxPathTagLength", "custom_tags", "customTags", "tlsSettings", "openCensusAgent", "datadog", "lightstep", "stackdriver"] {
                    _ = t.raw(k)
                }
                t.finish()
            }
            // ProxyConfig has many settings for Envoy itself (concurrency, drain durations, ...);
            // none change what sextant proxy does, so they are accepted and ignored.
            for k in dc.keys where k != "tracing" { _ = dc.raw(k) }
            dc.finish()
        }
        m.extensionProviders = r.sectionList("extensionProviders").compactMap { e in
            var e = e
            return ExtensionProvider.parse(&e)
        }
        if var d = r.optionalSection("defaultProviders") {
            m.defaultTracingProviders = d.stringList("tracing")
            m.defaultAccessLogProviders = d.stringList("accessLogging")
            m.defaultMetricsProviders = d.stringList("metrics")
            d.finish()
        }
        let known = Set(m.extensionProviders.map(\.name))
        for p in m.defaultTracingProviders + m.defaultAccessLogProviders + m.defaultMetricsProviders
        where !known.contains(p) && p != "envoy" && p != "prometheus" {
            r.error("defaultProviders", "defaultProviders names '\(p)', which is not in extensionProviders")
        }
        for k in r.keys where ignoredFields.contains(k) {
            _ = r.raw(k)
            r.warning(k, "meshConfig.\(k) is not used by sextant proxy; ignored")
        }
        r.finish()
        return m
    }
}

extension MeshConfig.ExtensionProvider {
    static func parse(_ r: inout ConfigReader) -> Self? {
        let name = r.string("name", default: "")
        if name.isEmpty { r.error(nil, "\(r.path): name is required") }
        var kind: Kind?
        func service(_ s: inout ConfigReader) -> (String, Int) {
            let svc = s.string("service", default: "")
            if svc.isEmpty { s.error(nil, "\(s.path): service is required") }
            let port = s.int("port", default: 0, min: 1, max: 65535)
            if port == 0 { s.error(nil, "\(s.path): port is required") }
            return (svc, port)
        }
        if var z = r.optionalSection("zipkin") {
            let (svc, port) = service(&z)
            let maxTag = z.has("maxTagLength") ? z.int("maxTagLength", default: 256, min: 0) : nil
            for k in ["enable64bitTraceId", "path", "traceContextOption", "headers", "timeout"] { _ = z.raw(k) }
            z.finish()
            kind = .zipkin(service: svc, port: port, maxTagLength: maxTag)
        }
        if var o = r.optionalSection("opentelemetry") {
            let (svc, port) = service(&o)
            var path: String?
            if var h = o.optionalSection("http") {
                path = h.string("path", default: "/v1/traces")
                _ = h.raw("timeout")
                _ = h.raw("headers")
                h.finish()
            }
            for k in ["maxTagLength", "grpc", "resource_detectors", "dynatrace_sampler", "environmentResourceDetector"] { _ = o.raw(k) }
            o.finish()
            kind = .opentelemetry(service: svc, port: port, httpPath: path)
        }
        if var f = r.optionalSection("envoyFileAccessLog") {
            let path = f.string("path", default: "/dev/stdout")
            let (text, labels) = logFormat(&f)
            f.finish()
            kind = .envoyFileAccessLog(path: path, text: text, labels: labels)
        }
        if var a = r.optionalSection("envoyOtelAls") {
            let (svc, port) = service(&a)
            let (text, labels) = logFormat(&a)
            _ = a.raw("logName")
            a.finish()
            kind = .envoyOtelAls(service: svc, port: port, text: text, labels: labels)
        }
        if var f = r.optionalSection("envoyFluentdAccessLog") {
            let (svc, port) = service(&f)
            let tag = f.string("tag", default: "")
            if tag.isEmpty { f.error(nil, "\(f.path): tag is required (Fluentd routes records by their tag, e.g. istio.access)") }
            let (text, labels) = logFormat(&f)
            if text != nil { f.error("logFormat", "\(f.path): a Fluentd record is a map of fields: give logFormat.labels, not logFormat.text") }
            let interval = f.duration("bufferFlushInterval", default: .seconds(1), allowZero: false)
            let size = f.int("bufferSizeBytes", default: 16384, min: 1, max: 16 << 20)
            var retry = MeshConfig.FluentdRetryOptions()
            if f.has("retryOptions") {
                var o = f.section("retryOptions")
                if o.has("maxConnectAttempts") { retry.maxConnectAttempts = o.int("maxConnectAttempts", default: 1, min: 1) }
                if o.has("backoffOptions") {
                    // Envoy's BackoffStrategy: base_interval is required (at least 1 ms), max_interval defaults to
                    // 10× it and may not be below it.
                    var b = o.section("backoffOptions")
                    if !b.has("baseInterval") { b.error(nil, "\(b.path): baseInterval is required") }
                    let base = b.duration("baseInterval", default: retry.baseInterval, allowZero: false)
                    if base < .milliseconds(1) { b.error("baseInterval", "\(b.qualified("baseInterval")): must be at least 1ms") }
                    retry.baseInterval = base
                    retry.maxInterval = b.duration("maxInterval", default: base * 10, allowZero: false)
                    if retry.maxInterval < base {
                        b.error("maxInterval", "\(b.qualified("maxInterval")): must be at least baseInterval (\(GoDuration.format(base)))")
                    }
                    b.finish()
                }
                o.finish()
            }
            f.finish()
            kind = .envoyFluentdAccessLog(
                service: svc, port: port, tag: tag, labels: labels, flushInterval: interval, bufferSizeBytes: size, retry: retry)
        }
        if let p = r.optionalSection("prometheus") {
            p.finish()
            kind = .prometheus
        }
        for k in r.keys where !["name", "zipkin", "opentelemetry", "envoyFileAccessLog", "envoyOtelAls", "envoyFluentdAccessLog", "prometheus"].contains(k) {
            if ["envoyExtAuthzHttp", "envoyExtAuthzGrpc", "datadog", "stackdriver", "skywalking", "lightstep", "envoyHttpAls", "envoyTcpAls", "sds"].contains(k) {
                _ = r.raw(k)
                r.warning(k, "extension provider kind '\(k)' is not supported by sextant proxy; '\(name)' ignored")
                r.finish()
                return nil
            }
        }
        r.finish()
        guard let kind else {
            if !name.isEmpty { r.error(nil, "\(r.path): extension provider '\(name)' has no provider settings") }
            return nil
        }
        return .init(name: name, kind: kind)
    }

    private static func logFormat(_ r: inout ConfigReader) -> (String?, [(String, String)]) {
        guard var lf = r.optionalSection("logFormat") else { return (nil, []) }
        let text = lf.optionalString("text")
        let labels = lf.stringMap("labels")
        lf.finish()
        return (text, labels)
    }
}

/// `telemetry.istio.io` `Telemetry`: per-workload (or mesh-wide, in the root namespace) overrides of
/// tracing and access logging.
public struct TelemetryResource: Sendable {
    public var meta: ObjectMeta
    public var selector: [String: String]
    public var tracingProviders: [String]
    public var randomSamplingPercentage: Double?
    public var disableSpanReporting: Bool?
    public var accessLogProviders: [String]
    public var accessLogDisabled: Bool?

    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> TelemetryResource {
        var t = TelemetryResource(
            meta: meta, selector: [:], tracingProviders: [], randomSamplingPercentage: nil, disableSpanReporting: nil,
            accessLogProviders: [], accessLogDisabled: nil)
        if var s = spec.optionalSection("selector") {
            t.selector = s.labels("matchLabels")
            s.finish()
        }
        _ = spec.raw("targetRef")
        _ = spec.raw("targetRefs")
        func providers(_ r: inout ConfigReader) -> [String] {
            r.sectionList("providers").compactMap { p in
                var p = p
                let n = p.optionalString("name")
                p.finish()
                return n
            }
        }
        for var tr in spec.sectionList("tracing") {
            t.tracingProviders += providers(&tr)
            if tr.has("randomSamplingPercentage") {
                t.randomSamplingPercentage = tr.double("randomSamplingPercentage", default: 1, min: 0, max: 100)
            }
            if tr.has("disableSpanReporting") { t.disableSpanReporting = tr.bool("disableSpanReporting", default: false) }
            _ = tr.raw("customTags")
            _ = tr.raw("match")
            _ = tr.raw("useRequestIdForTraceSampling")
            tr.finish()
        }
        for var al in spec.sectionList("accessLogging") {
            t.accessLogProviders += providers(&al)
            if al.has("disabled") { t.accessLogDisabled = al.bool("disabled", default: false) }
            if al.has("filter") { al.warning("filter", "accessLogging.filter (CEL) is not supported; every request is logged") }
            _ = al.raw("match")
            al.finish()
        }
        if spec.has("metrics") { _ = spec.raw("metrics") }
        spec.finish()
        return t
    }
}
