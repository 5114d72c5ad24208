import SextantPipeline

/// An extension that authenticates incoming requests (OTel's `extensionauth.Server`): receivers that
/// name it under `auth::authenticator` refuse requests it does not accept (HTTP 401, gRPC
/// UNAUTHENTICATED).
public protocol ServerAuthenticator: Sendable {
    /// Whether the request whose headers (HTTP) or metadata (gRPC) `header` looks up is allowed.
    /// Names are lower-case.
    func authenticate(_ header: (_ name: String) -> String?) -> Bool
}

/// An extension that adds credentials to outgoing requests (OTel's `extensionauth.HTTPClient` /
/// `GRPCClient`): exporters that name it under `auth::authenticator` send these headers (gRPC
/// metadata) with every request.
public protocol ClientAuthenticator: Sendable {
    /// Header names (lower-case) and values; read per request, so a credential may change.
    func requestHeaders() -> [(String, String)]
}

/// `auth: {authenticator: ID}` under a receiver's server section or an exporter (OTel's `configauth`).
///
/// The ID is a config reference: `CollectorConfig` checks it names a defined extension listed in
/// `service::extensions`; the type is checked here, against the built-in authenticators of each side.
public struct AuthSettings: Sendable, Equatable {
    public var authenticator: ComponentID

    /// Extension types that can authenticate receivers' clients.
    public static let serverTypes = ["bearertokenauth"]
    /// Extension types that can add credentials to exporters' requests.
    public static let clientTypes = ["basicauth", "bearertokenauth"]

    public init(authenticator: ComponentID) { self.authenticator = authenticator }

    /// Reads `auth` of `r`; `nil` when absent.
    public static func parse(_ r: inout ConfigReader, role: TLSSettings.Role) -> AuthSettings? {
        guard r.has("auth") else {
            _ = r.raw("auth")
            return nil
        }
        var a = r.section("auth")
        defer { a.finish() }
        guard a.has("authenticator") else {
            a.error(nil, "\(a.path)::authenticator is required (the ID of an authenticator extension)")
            return nil
        }
        guard let id = a.componentReference("authenticator", kind: .extension) else { return nil }
        let allowed = role == .server ? serverTypes : clientTypes
        guard allowed.contains(id.type) else {
            a.error(
                "authenticator",
                "\(a.qualified("authenticator")): '\(id)' cannot authenticate \(role == .server ? "incoming" : "outgoing") requests"
                    + " (use \(allowed.joined(separator: " or ")))")
            return nil
        }
        return AuthSettings(authenticator: id)
    }

    /// The running authenticator extension for a receiver.
    public func serverAuthenticator(_ settings: ComponentSettings) throws -> any ServerAuthenticator {
        guard let a = settings.extensions[authenticator] as? any ServerAuthenticator else {
            throw AuthSetupError(description: "extension '\(authenticator)' is not running or cannot authenticate incoming requests")
        }
        return a
    }

    /// The running authenticator extension for an exporter.
    public func clientAuthenticator(_ settings: ComponentSettings) throws -> any ClientAuthenticator {
        guard let a = settings.extensions[authenticator] as? any ClientAuthenticator else {
            throw AuthSetupError(description: "extension '\(authenticator)' is not running or cannot add credentials to requests")
        }
        return a
    }
}

/// An `auth` setting cannot be honoured at start (e.g. the token file is unreadable).
public struct AuthSetupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(description: String) { self.description = description }
}

/// The security of a listening endpoint: `tls` and `auth` of a receiver's server section.
public struct ServerSecurity: Sendable, Equatable {
    public var tls: TLSSettings?
    public var auth: AuthSettings?

    public init(tls: TLSSettings? = nil, auth: AuthSettings? = nil) {
        self.tls = tls
        self.auth = auth
    }

    /// Reads `tls` and `auth` of a server section (e.g. `protocols::http`).
    public static func parse(_ r: inout ConfigReader) -> ServerSecurity {
        ServerSecurity(tls: TLSSettings.parseServer(&r), auth: AuthSettings.parse(&r, role: .server))
    }
}

/// The security of an exporter's connection: `tls` and `auth`.
public struct ClientSecurity: Sendable, Equatable {
    public var tls: TLSSettings
    public var auth: AuthSettings?

    public init(tls: TLSSettings = TLSSettings(role: .client), auth: AuthSettings? = nil) {
        self.tls = tls
        self.auth = auth
    }

    /// Reads `tls` and `auth` of an exporter.
    public static func parse(_ r: inout ConfigReader) -> ClientSecurity {
        ClientSecurity(tls: TLSSettings.parseClient(&r), auth: AuthSettings.parse(&r, role: .client))
    }
}

/// Comparison whose time does not depend on where the inputs differ, so a client cannot guess a
/// token byte by byte from response times. (The length still shows; tokens have a fixed length.)
public enum ConstantTime {
    public static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        var diff: UInt8 = a.count == b.count ? 0 : 1
        // Always walk the expected value's full length.
        var ai = a.makeIterator()
        for y in b {
            let x = ai.next() ?? ~y
            diff |= x ^ y
        }
        return diff == 0
    }
}

/// A configuration value that must never be printed (tokens, passwords): `description`,
/// `debugDescription` and reflection (`dump`, string interpolation of enclosing structs) show
/// `<redacted>`.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
