import SextantModel
import SextantPipeline

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
    public var encoding: Encoding = .proto
    public var headers: [(String, String)] = []
    public var helper = ExporterHelperSettings()

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
            for scheme in ["http://", "https://"] where ep.hasPrefix(scheme) { ep.removeFirst(scheme.count) }
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
                    if URLParts.parse(u) == nil { r.error("\(s.rawValue)_endpoint", "\(r.qualified("\(s.rawValue)_endpoint")) must be an http:// URL, found '\(u)'") }
                }
            }
            if c.endpoint.isEmpty && c.signalEndpoints.count < Signal.allCases.count {
                r.error("endpoint", "\(r.path)::endpoint is required (e.g. http://127.0.0.1:4318)")
            } else if !c.endpoint.isEmpty && URLParts.parse(c.endpoint) == nil {
                r.error("endpoint", "\(r.path)::endpoint must be an http:// URL, found '\(c.endpoint)'")
            }
            c.encoding = Encoding(rawValue: r.choice("encoding", ["proto", "json"], default: "proto"))!
        }
        c.compression = Compression(rawValue: r.choice("compression", ["gzip", "none"], default: "gzip"))!
        c.headers = r.stringMap("headers")
        var tls = r.section("tls")
        let insecure = tls.bool("insecure", default: !grpc)
        if grpc && !insecure {
            tls.error(nil, "\(r.path)::tls: TLS is not available in this build yet; set tls: {insecure: true} for plaintext")
        }
        tls.finish()
        if !grpc, c.endpoint.hasPrefix("https://") || c.signalEndpoints.values.contains(where: { $0.hasPrefix("https://") }) {
            r.error("endpoint", "\(r.path)::endpoint: https is not available in this build yet")
        }
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
