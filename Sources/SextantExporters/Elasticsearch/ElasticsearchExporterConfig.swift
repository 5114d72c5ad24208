import SextantElasticsearch
import SextantModel
import SextantPipeline
import SextantSecurity

/// `elasticsearch` exporter config (the OTel Collector contrib exporter's keys where they exist).
public struct ElasticsearchExporterConfig: ComponentConfig {
    /// Per-item retries of the bulk indexer (not the generic `retry_on_failure`).
    public struct Retry: Sendable, Equatable {
        public var enabled = true
        public var maxRetries = 2
        public var initialInterval: Duration = .milliseconds(100)
        public var maxInterval: Duration = .seconds(60)
        public var retryOnStatus: Set<Int> = [429, 500, 502, 503, 504]
    }

    /// Data-stream mode: documents go to `<type>-<dataset>-<namespace>` with `create` actions and
    /// carry `data_stream.*` fields.
    public struct DataStream: Sendable, Equatable {
        public var dataset = "generic"
        public var namespace = "default"
    }

    public var endpoints: [String] = []
    public var logsIndex = IndexNameTemplate.literal("logs-generic-default")
    public var tracesIndex = IndexNameTemplate.literal("traces-generic-default")
    public var logsDynamicIndex = false
    public var tracesDynamicIndex = false
    public var dataStream: DataStream?
    public var mode: ECSMapping.Mode = .ecs
    public var action: ElasticsearchBulk.Action = .create
    /// The `Authorization` header value (`Basic …` from user/password, or `ApiKey …`); never printed.
    public var authorization: Secret?
    /// `tls` (used with `https://` endpoints) and `auth` (an authenticator extension instead of
    /// user/password or api_key).
    public var security = ClientSecurity()
    var tlsConfigured = false
    public var headers: [(String, String)] = []
    public var compression = false
    public var flushBytes = 5_000_000
    public var flushInterval: Duration = .seconds(30)
    public var numWorkers = 4
    public var timeout: Duration = .seconds(90)
    public var retry = Retry()
    public var deadLetterFile: String?
    /// `sending_queue`: off unless the section is present. With it, `consume` only enqueues (in memory,
    /// or durably with `storage`) and acknowledges at once; the queue's `num_consumers` workers index
    /// each batch with the per-item retries above, so an outage of the cluster fills the queue
    /// (then 429 / `RESOURCE_EXHAUSTED`, or backpressure with `block_on_overflow`) instead of holding
    /// every receiver's request. `flush` then only splits batches into bulk requests.
    public var queue: QueueSettings = {
        var q = QueueSettings()
        q.enabled = false
        return q
    }()

    public init() {}
}

extension IndexNameTemplate {
    /// A fixed, already valid name.
    static func literal(_ name: String) -> IndexNameTemplate {
        guard case .success(let t) = IndexNameTemplate.parse(name) else { fatalError("invalid built-in index name \(name)") }
        return t
    }
}

public struct ElasticsearchExporterFactory: ExporterFactory {
    public init() {}
    public let type = "elasticsearch"
    public let signals: Set<Signal> = [.logs, .traces]
    public let summary = "indexes log records and spans as ECS (or raw) documents through the _bulk API; per-item retry, dead-letter file"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = ElasticsearchExporterConfig()
        c.endpoints = r.stringList("endpoints")
        if let one = r.optionalString("endpoint") { c.endpoints.append(one) }
        if c.endpoints.isEmpty { r.error(nil, "\(r.path) needs endpoints (e.g. [http://127.0.0.1:9200])") }
        for e in c.endpoints {
            guard URLParts.parse(e) != nil else {
                r.error("endpoints", "\(r.qualified("endpoints")): '\(e)' must be an http:// or https:// URL")
                continue
            }
        }
        c.endpoints = c.endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }

        func index(_ key: String, _ fallback: IndexNameTemplate) -> IndexNameTemplate {
            guard let text = r.optionalString(key) else { return fallback }
            switch IndexNameTemplate.parse(text) {
            case .success(let t): return t
            case .failure(let e):
                r.error(key, "\(r.qualified(key)): \(e)")
                return fallback
            }
        }
        c.logsIndex = index("logs_index", c.logsIndex)
        c.tracesIndex = index("traces_index", c.tracesIndex)
        for (key, target) in [("logs_dynamic_index", \ElasticsearchExporterConfig.logsDynamicIndex), ("traces_dynamic_index", \.tracesDynamicIndex)]
        where r.keys.contains(key) {
            var s = r.section(key)
            c[keyPath: target] = s.bool("enabled", default: false)
            _ = s.choice("mode", ["prefix_suffix"], default: "prefix_suffix")
            s.finish()
        }
        if r.keys.contains("data_stream") {
            var s = r.section("data_stream")
            if s.bool("enabled", default: true) {
                var ds = ElasticsearchExporterConfig.DataStream()
                ds.dataset = s.string("dataset", default: ds.dataset)
                ds.namespace = s.string("namespace", default: ds.namespace)
                for (k, v) in [("dataset", ds.dataset), ("namespace", ds.namespace)] {
                    if let problem = IndexNameTemplate.invalidReason(v) { s.error(k, "\(s.qualified(k)): \(problem)") }
                    if v.contains("-") { s.error(k, "\(s.qualified(k)) cannot contain '-' (data stream names are type-dataset-namespace)") }
                }
                c.dataStream = ds
                for k in ["logs_index", "traces_index"] where r.keys.contains(k) {
                    r.error(k, "\(r.qualified(k)) cannot be used with data_stream (the name is <type>-<dataset>-<namespace>)")
                }
            } else {
                _ = s.raw("dataset")
                _ = s.raw("namespace")
            }
            s.finish()
        }
        var m = r.section("mapping")
        c.mode = ECSMapping.Mode(rawValue: m.choice("mode", ["ecs", "raw"], default: "ecs"))!
        m.finish()
        c.action = ElasticsearchBulk.Action(rawValue: r.choice("action", ["create", "index"], default: "create"))!
        if c.dataStream != nil && c.action != .create { r.error("action", "\(r.qualified("action")): data streams accept only create") }

        let user = r.optionalString("user")
        let password = r.optionalString("password")
        let apiKey = r.optionalString("api_key")
        if let apiKey {
            if user != nil || password != nil { r.error("api_key", "\(r.path): use either api_key or user/password, not both") }
            c.authorization = Secret("ApiKey " + apiKey)
        } else if let user {
            c.authorization = Secret("Basic " + Base64.encode(Array((user + ":" + (password ?? "")).utf8)))
        } else if password != nil {
            r.error("password", "\(r.qualified("password")) needs user")
        }
        c.headers = r.stringMap("headers")
        (c.security, c.tlsConfigured) = ClientSecurity.parseHTTP(&r)
        if c.security.auth != nil && c.authorization != nil {
            r.error("auth", "\(r.qualified("auth")): use either an authenticator or user/password/api_key, not both")
        }
        c.compression = r.choice("compression", ["none", "gzip"], default: "none") == "gzip"

        var f = r.section("flush")
        c.flushBytes = f.byteSize("bytes", default: c.flushBytes, min: 1)
        c.flushInterval = f.duration("interval", default: c.flushInterval, allowZero: false)
        f.finish()
        c.numWorkers = r.int("num_workers", default: c.numWorkers, min: 1, max: 256)
        c.timeout = r.duration("timeout", default: c.timeout, allowZero: false)

        var rt = r.section("retry")
        c.retry.enabled = rt.bool("enabled", default: true)
        c.retry.maxRetries = rt.int("max_retries", default: c.retry.maxRetries, min: 0, max: 100)
        c.retry.initialInterval = rt.duration("initial_interval", default: c.retry.initialInterval, allowZero: false)
        c.retry.maxInterval = rt.duration("max_interval", default: c.retry.maxInterval, allowZero: false)
        if rt.keys.contains("retry_on_status") {
            var codes: Set<Int> = []
            for s in rt.stringList("retry_on_status") {
                if let v = Int(s), (400...599).contains(v) { codes.insert(v) } else {
                    rt.error("retry_on_status", "\(rt.qualified("retry_on_status")): '\(s)' is not an HTTP status 400–599")
                }
            }
            c.retry.retryOnStatus = codes
        }
        if c.retry.maxInterval < c.retry.initialInterval {
            rt.error("max_interval", "\(rt.qualified("max_interval")) must not be less than initial_interval")
        }
        rt.finish()
        if r.keys.contains("sending_queue") {
            var q = r.section("sending_queue")
            var defaults = QueueSettings()
            defaults.numConsumers = c.numWorkers
            c.queue = QueueSettings.parse(&q, defaults: defaults)
        }
        c.deadLetterFile = r.optionalString("dead_letter_file")
        if c.deadLetterFile?.isEmpty == true { c.deadLetterFile = nil }
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        ElasticsearchExporter(config as! ElasticsearchExporterConfig, settings: settings)
    }
}
