import SextantModel
import SextantPipeline
import SextantSecurity

/// Settings shared by the `otlp` (gRPC) and `otlphttp` exporters.
public struct OTLPExporterConfig: ComponentConfig {
    public enum Compression: String, Sendable {
        case gzip
        case none
    }

    public enum Encoding: String, Sendable {
        case proto
        case json
    }

    /// gRPC: `host:port`. HTTP: base URL (`http://host:4318`); `/v1/<signal>` is appended.
    public var endpoint = ""
    /// HTTP only: full URLs that override `endpoint` for one signal.
    public var signalEndpoints: [Signal: String] = [:]
    public var compression: Compression = .gzip
    /// `compression_params::level` (OTel's `configcompression`): zlib's level for gzip, 1 fastest … 9
    /// smallest, -1 zlib's default (6).
    public var gzipLevel: Int32 = -1
    public var encoding: Encoding = .proto
    public var headers: [(String, String)] = []
    public var helper = ExporterHelperSettings()
    /// `tls` and `auth`. gRPC: TLS unless `tls::insecure` (or an `http://` endpoint), as in the OTel
    /// Collector's `configgrpc`; HTTP: the URL scheme decides.
    public var security = ClientSecurity()
    /// gRPC: plaintext (`tls::insecure: true` or an `http://` endpoint).
    public var plaintext = false
    /// HTTP: a `tls` block is present (then the exporter owns a client with those settings).
    var tlsConfigured = false

    /// The URL an `otlphttp` exporter posts a signal to.
    public func url(for signal: Signal) -> String {
        if let u = signalEndpoints[signal] { return u }
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/v1/" + signal.rawValue
    }

    static func parse(_ r: inout ConfigReader, grpc: Bool) -> OTLPExporterConfig {
        var c = OTLPExporterConfig()
        c.endpoint = r.string("endpoint", default: "")
        if grpc {
            var ep = c.endpoint
            let httpScheme = ep.hasPrefix("http://")
            for scheme in ["http://", "https://"] where ep.hasPrefix(scheme) { ep.removeFirst(scheme.count) }
            c.security = ClientSecurity.parse(&r)
            c.plaintext = c.security.tls.insecure || httpScheme
            if c.endpoint.isEmpty {
                r.error("endpoint", "\(r.path)::endpoint is required (host:port)")
            } else if HostPort.parse(ep) == nil {
                r.error("endpoint", "\(r.path)::endpoint must be host:port, found '\(c.endpoint)'")
            }
            c.endpoint = ep
        } else {
            for s in Signal.allCases {
                if let u = r.optionalString("\(s.rawValue)_endpoint") {
                    c.signalEndpoints[s] = u
                    if URLParts.parse(u) == nil { r.error("\(s.rawValue)_endpoint", "\(r.qualified("\(s.rawValue)_endpoint")) must be an http:// or https:// URL, found '\(u)'") }
                }
            }
            if c.endpoint.isEmpty && c.signalEndpoints.count < Signal.allCases.count {
                r.error("endpoint", "\(r.path)::endpoint is required (e.g. http://127.0.0.1:4318)")
            } else if !c.endpoint.isEmpty && URLParts.parse(c.endpoint) == nil {
                r.error("endpoint", "\(r.path)::endpoint must be an http:// or https:// URL, found '\(c.endpoint)'")
            }
            (c.security, c.tlsConfigured) = ClientSecurity.parseHTTP(&r)
            c.encoding = Encoding(rawValue: r.choice("encoding", ["proto", "json"], default: "proto"))!
        }
        c.compression = Compression(rawValue: r.choice("compression", ["gzip", "none"], default: "gzip"))!
        var params = r.section("compression_params")
        c.gzipLevel = Int32(params.int("level", default: -1, min: -1, max: 9))
        params.finish()
        c.headers = r.stringMap("headers")
        c.helper = ExporterHelperSettings.parse(&r)
        return c
    }
}

/// The parts of an `http://host:port/path` URL that exporters need.
public struct URLParts: Sendable, Equatable {
    public var scheme: String
    public var host: String
    public var port: Int
    public var path: String

    public static func parse(_ url: String) -> URLParts? {
        let scheme: String
        var rest: Substring
        if url.hasPrefix("http://") {
            scheme = "http"
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            scheme = "https"
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[rest.startIndex..<slash])
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        rest = Substring(authority)
        guard !authority.isEmpty else { return nil }
        if let hp = HostPort.parse(authority) { return URLParts(scheme: scheme, host: hp.host, port: hp.port, path: path) }
        guard !authority.contains(":") else { return nil }
        return URLParts(scheme: scheme, host: authority, port: scheme == "https" ? 443 : 80, path: path)
    }
}
