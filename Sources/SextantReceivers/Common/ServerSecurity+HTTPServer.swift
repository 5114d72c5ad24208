import Logging
import SextantHTTP
import SextantPipeline
import SextantSecurity

extension HTTPServerConfiguration {
    /// Applies a receiver's `tls` (HTTPS, mutual with `client_ca_file`) and `auth` (requests its
    /// authenticator refuses get 401). Certificate files are read now, at start.
    mutating func secure(_ security: ServerSecurity, settings: ComponentSettings) throws {
        if let tls = security.tls { self.tls = try tls.makeContext(applicationProtocols: ["http/1.1"]) }
        if let auth = security.auth {
            let authenticator = try auth.serverAuthenticator(settings)
            authorize = { head in authenticator.authenticate { head.headers.first(name: $0) } }
        }
    }
}

extension ServerSecurity {
    /// What a "listening" log line says about the endpoint (never a secret).
    func logMetadata(endpoint: String) -> Logger.Metadata {
        var m: Logger.Metadata = ["endpoint": "\(endpoint)", "tls": "\(tls == nil ? "off" : tls!.requiresClientCertificate ? "mutual" : "on")"]
        if let auth { m["authenticator"] = "\(auth.authenticator)" }
        return m
    }
}
