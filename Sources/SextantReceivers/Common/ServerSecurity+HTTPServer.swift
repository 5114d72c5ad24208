import Logging
import SextantHTTP
import SextantPipeline
import SextantSecurity

extension HTTPServerConfiguration {
    /// Applies a receiver's `tls` (HTTPS, mutual with `client_ca_file`) and `auth` (requests its
    /// authenticator refuses get 401). Certificate files are read now, at start.
    mutating func secure(_ security: ServerSecurity, settings: ComponentSettings) throws {
        if let tls = security.tls { self.tls = try tls.makeContext(applicationProtocols: ["http/1.1"]) }
        if let check = try security.requestCheck(settings, transport: "http") {
            authorize = { head in check { head.headers.first(name: $0) } }
        }
    }
}

extension ServerSecurity {
    /// The `auth` authenticator as a check of one request's headers (gRPC: metadata), counting
    /// refusals in `sextant_receiver_unauthenticated_requests_total{receiver, transport}`; `nil`
    /// without `auth`.
    func requestCheck(_ settings: ComponentSettings, transport: String) throws -> (@Sendable ((String) -> String?) -> Bool)? {
        guard let auth else { return nil }
        let authenticator = try auth.serverAuthenticator(settings)
        let refused = settings.telemetry.counter(
            "sextant_receiver_unauthenticated_requests_total", help: "Requests refused because the authenticator did not accept their credentials.",
            labels: [("receiver", settings.id.description), ("transport", transport)])
        return { header in
            if authenticator.authenticate(header) { return true }
            refused.increment()
            return false
        }
    }

    /// What a "listening" log line says about the endpoint (never a secret).
    func logMetadata(endpoint: String) -> Logger.Metadata {
        var m: Logger.Metadata = ["endpoint": "\(endpoint)", "tls": "\(tls == nil ? "off" : tls!.requiresClientCertificate ? "mutual" : "on")"]
        if let auth { m["authenticator"] = "\(auth.authenticator)" }
        return m
    }
}
