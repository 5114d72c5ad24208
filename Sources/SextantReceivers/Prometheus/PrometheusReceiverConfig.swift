import Foundation
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantSecurity

/// `prometheus` receiver config: Prometheus' own configuration under `config:` (as in the OTel Collector's
/// receiver), the subset that applies to static targets: `global` (`scrape_interval`, `scrape_timeout`) and
/// `scrape_configs` with `job_name`, `scrape_interval`, `scrape_timeout`, `metrics_path`, `scheme`, `params`,
/// `honor_labels`, `honor_timestamps`, `body_size_limit`, `static_configs`, `metric_relabel_configs`, and the
/// HTTP client settings `tls_config`, `basic_auth`, `authorization`, `bearer_token`, `bearer_token_file`.
public struct PrometheusReceiverConfig: ComponentConfig {
    public var scrapeConfigs: [ScrapeConfig] = []
}

/// One `scrape_config` (Prometheus configuration docs, `<scrape_config>`).
public struct ScrapeConfig: Sendable {
    public var jobName: String
    public var scrapeInterval: Duration = .seconds(60)
    public var scrapeTimeout: Duration = .seconds(10)
    public var metricsPath = "/metrics"
    public var scheme = "http"
    public var params: [(String, [String])] = []
    public var honorLabels = false
    public var honorTimestamps = true
    /// Largest accepted body after decompression; Prometheus' `body_size_limit` (0 there means unlimited;
    /// here the default is 100 MiB so one target cannot exhaust memory).
    public var bodySizeLimit = 100 << 20
    public var targets: [ScrapeTarget] = []
    public var metricRelabelConfigs: [RelabelRule] = []
    /// `tls_config` (used with `scheme: https`); nil means the system roots and no client certificate.
    public var tls: TLSSettings?
    /// `basic_auth` or `authorization` (with the legacy `bearer_token` / `bearer_token_file`).
    public var authorization: ScrapeAuthorization?

    /// `tls_config::server_name` when scraping over https.
    public var serverName: String? { scheme == "https" ? tls?.serverNameOverride : nil }
}

/// The `Authorization` header of every scrape: Prometheus' `basic_auth` (`username`, `password` or
/// `password_file`) or `authorization` (`type`, default `Bearer`; `credentials` or `credentials_file`).
/// Files are read at every scrape, as Prometheus does, so a rotated secret applies without a restart.
public enum ScrapeAuthorization: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case inline(Secret)
        case file(String)
    }

    case basic(username: String, password: Source?)
    case credentials(type: String, Source)

    /// The header value; throws when a secret file cannot be read (the scrape then fails, `up` 0).
    public func headerValue() throws -> String {
        switch self {
        case .basic(let user, let password):
            let pass = try password.map(Self.read) ?? ""
            return "Basic " + Base64.encode(Array("\(user):\(pass)".utf8))
        case .credentials(let type, let source):
            return "\(type) \(try Self.read(source))"
        }
    }

    private static func read(_ source: Source) throws -> String {
        switch source {
        case .inline(let secret): return secret.value
        case .file(let path):
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ScrapeError("cannot read secret file '\(path)'")
            }
            // Prometheus trims surrounding whitespace (config.TLSConfig / secret files end with a newline).
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

/// A target of a `static_configs` entry with that entry's labels.
public struct ScrapeTarget: Sendable {
    /// `host:port`, also the `instance` label.
    public var address: String
    public var labels: [(String, String)]
}

extension PrometheusReceiverConfig {
    static func parse(_ r: inout ConfigReader) -> PrometheusReceiverConfig {
        var out = PrometheusReceiverConfig()
        var c = r.section("config")
        defer { c.finish() }
        var global = c.section("global")
        let defaultInterval = global.duration("scrape_interval", default: .seconds(60), allowZero: false)
        let defaultTimeout = global.duration("scrape_timeout", default: .seconds(10), allowZero: false)
        global.finish()
        guard let node = c.raw("scrape_configs") else {
            c.error(nil, "\(c.qualified("scrape_configs")) is required: list at least one scrape config")
            return out
        }
        guard case .sequence(let items) = node.value, !items.isEmpty else {
            c.error("scrape_configs", "\(c.qualified("scrape_configs")) must be a non-empty list of scrape configs")
            return out
        }
        var jobs: Set<String> = []
        for (i, item) in items.enumerated() {
            var s = ConfigReader(item, path: "\(c.qualified("scrape_configs"))[\(i)]", diagnostics: c.diagnostics)
            defer { s.finish() }
            let job = s.string("job_name", default: "")
            if job.isEmpty { s.error("job_name", "\(s.qualified("job_name")) is required") }
            if !jobs.insert(job).inserted { s.error("job_name", "\(s.qualified("job_name")): job '\(job)' is defined twice") }
            var sc = ScrapeConfig(jobName: job)
            sc.scrapeInterval = s.duration("scrape_interval", default: defaultInterval, allowZero: false)
            sc.scrapeTimeout = s.duration("scrape_timeout", default: min(defaultTimeout, sc.scrapeInterval), allowZero: false)
            if sc.scrapeTimeout > sc.scrapeInterval {
                s.error("scrape_timeout", "\(s.qualified("scrape_timeout")) must not be greater than scrape_interval (\(GoDuration.format(sc.scrapeInterval)))")
            }
            sc.metricsPath = s.string("metrics_path", default: "/metrics")
            if !sc.metricsPath.hasPrefix("/") { s.error("metrics_path", "\(s.qualified("metrics_path")) must start with '/'") }
            sc.scheme = s.choice("scheme", ["http", "https"], default: "http")
            sc.honorLabels = s.bool("honor_labels", default: false)
            sc.honorTimestamps = s.bool("honor_timestamps", default: true)
            let limit = s.byteSize("body_size_limit", default: 100 << 20, min: 0)
            sc.bodySizeLimit = limit == 0 ? Int(Int32.max) : limit
            if let p = s.raw("params") {
                if let entries = p.entries {
                    for e in entries {
                        guard case .sequence(let values) = e.value.value else {
                            c.diagnostics.error(at: e.value.location, "\(s.qualified("params"))::\(e.key) must be a list of strings")
                            continue
                        }
                        let strings = values.compactMap { v -> String? in
                            if case .scalar(let text, _) = v.value { return text }
                            c.diagnostics.error(at: v.location, "\(s.qualified("params"))::\(e.key) must be a list of strings")
                            return nil
                        }
                        sc.params.append((e.key, strings))
                    }
                } else {
                    s.error("params", "\(s.qualified("params")) must be a mapping of parameter names to lists of values")
                }
            }
            if s.has("tls_config") { sc.tls = TLSSettings.parsePrometheusClient(&s) }
            sc.authorization = parseAuthorization(&s)
            sc.targets = parseStaticConfigs(&s)
            sc.metricRelabelConfigs = parseRelabelConfigs(&s)
            out.scrapeConfigs.append(sc)
        }
        return out
    }

    /// `basic_auth`, `authorization`, `bearer_token`, `bearer_token_file`: at most one of them (Prometheus'
    /// rule), each secret either inline or from a file, never both.
    private static func parseAuthorization(_ s: inout ConfigReader) -> ScrapeAuthorization? {
        let present = ["basic_auth", "authorization", "bearer_token", "bearer_token_file"].filter { s.has($0) }
        if present.count > 1 {
            s.error(present[1], "\(s.path): set only one of \(present.joined(separator: ", "))")
        }
        func source(_ r: inout ConfigReader, _ inlineKey: String, _ fileKey: String) -> ScrapeAuthorization.Source? {
            let inline = r.optionalString(inlineKey)
            let file = r.optionalString(fileKey)
            if inline != nil && file != nil { r.error(fileKey, "\(r.path): set \(inlineKey) or \(fileKey), not both") }
            if let file {
                if !FileManager.default.isReadableFile(atPath: file) { r.error(fileKey, "\(r.qualified(fileKey)): cannot read '\(file)'") }
                return .file(file)
            }
            return inline.map { .inline(Secret($0)) }
        }
        if present.first == "basic_auth" {
            var b = s.section("basic_auth")
            defer { b.finish() }
            let user = b.string("username", default: "")
            if b.has("username_file") { b.error("username_file", "\(b.qualified("username_file")) is not supported; set username") }
            if user.isEmpty { b.error(nil, "\(b.qualified("username")) is required") }
            return .basic(username: user, password: source(&b, "password", "password_file"))
        }
        if present.first == "authorization" {
            var a = s.section("authorization")
            defer { a.finish() }
            let type = a.string("type", default: "Bearer")
            if type.lowercased() == "basic" { a.error("type", "\(a.qualified("type")): use basic_auth for Basic credentials") }
            guard let secret = source(&a, "credentials", "credentials_file") else {
                a.error(nil, "\(a.path): credentials or credentials_file is required")
                return nil
            }
            return .credentials(type: type, secret)
        }
        if let token = s.optionalString("bearer_token") { return .credentials(type: "Bearer", .inline(Secret(token))) }
        if let file = s.optionalString("bearer_token_file") {
            if !FileManager.default.isReadableFile(atPath: file) { s.error("bearer_token_file", "\(s.qualified("bearer_token_file")): cannot read '\(file)'") }
            return .credentials(type: "Bearer", .file(file))
        }
        return nil
    }

    private static func parseStaticConfigs(_ s: inout ConfigReader) -> [ScrapeTarget] {
        guard let node = s.raw("static_configs") else {
            s.error(nil, "\(s.qualified("static_configs")) is required (only static targets are supported)")
            return []
        }
        guard case .sequence(let items) = node.value else {
            s.error("static_configs", "\(s.qualified("static_configs")) must be a list")
            return []
        }
        var targets: [ScrapeTarget] = []
        for (i, item) in items.enumerated() {
            var t = ConfigReader(item, path: "\(s.qualified("static_configs"))[\(i)]", diagnostics: s.diagnostics)
            defer { t.finish() }
            let labels = t.stringMap("labels")
            for (k, _) in labels where !RelabelRule.isLabelName(k) {
                t.error("labels", "\(t.qualified("labels")): '\(k)' is not a valid label name")
            }
            for address in t.stringList("targets") {
                guard HostPort.parse(address) != nil else {
                    t.error("targets", "\(t.qualified("targets")): '\(address)' must be host:port")
                    continue
                }
                targets.append(ScrapeTarget(address: address, labels: labels))
            }
        }
        return targets
    }

    private static func parseRelabelConfigs(_ s: inout ConfigReader) -> [RelabelRule] {
        guard let node = s.raw("metric_relabel_configs") else { return [] }
        guard case .sequence(let items) = node.value else {
            s.error("metric_relabel_configs", "\(s.qualified("metric_relabel_configs")) must be a list")
            return []
        }
        var rules: [RelabelRule] = []
        for (i, item) in items.enumerated() {
            var r = ConfigReader(item, path: "\(s.qualified("metric_relabel_configs"))[\(i)]", diagnostics: s.diagnostics)
            defer { r.finish() }
            let action = r.choice("action", RelabelRule.Action.allCases.map(\.rawValue), default: "replace")
            let source = r.stringList("source_labels")
            let separator = r.string("separator", default: ";")
            let regex = r.string("regex", default: "(.*)")
            let target = r.string("target_label", default: "")
            let replacement = r.string("replacement", default: "$1")
            let kind = RelabelRule.Action(rawValue: action) ?? .replace
            if [.replace, .lowercase, .uppercase].contains(kind) && target.isEmpty {
                r.error(nil, "\(r.path): target_label is required for action \(action)")
            }
            if [.keep, .drop].contains(kind) && source.isEmpty {
                r.error(nil, "\(r.path): source_labels is required for action \(action)")
            }
            do {
                rules.append(
                    try RelabelRule(
                        sourceLabels: source, separator: separator, regex: regex, targetLabel: target, replacement: replacement, action: kind))
            } catch {
                r.error("regex", "\(r.qualified("regex")): invalid regular expression '\(regex)': \(error)")
            }
        }
        return rules
    }
}
