import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import SextantIstio
import SextantPipeline

/// The JWT checks of one proxy configuration (Envoy's `jwt_authn` filter as Istio configures it from
/// `RequestAuthentication`): the token is taken from the rule's headers or query parameters, its `iss`
/// selects the rule, then the signature (RFC 7515/7518, keys from the rule's JWKS), `exp` and `nbf`
/// (60 s of clock skew, as Envoy allows) and `aud` are checked.
final class JWTAuthenticator: Sendable {
    struct Rule: Sendable {
        var rule: JWTRule
        /// Inline keys (`jwks`); rules with `jwksUri` read the shared cache.
        var keys: [JWK]?
    }

    enum Outcome {
        /// No token anywhere the rules look: the request goes on (Istio: only an AuthorizationPolicy can
        /// require one).
        case none
        case valid(Verified)
        case invalid(String)
    }

    struct Verified {
        var rule: JWTRule
        /// Every claim path (`groups`, `sub`, `nested.key`) → its values, for `@request.auth.claims.*`.
        var claims: [String: [String]]
        /// Where the token came from, to remove it unless `forwardOriginalToken`.
        var header: String?
        var payloadBase64: Substring
    }

    let rules: [Rule]
    let remote: RemoteJWKS
    static let clockSkew: Double = 60

    /// Compiles the rules of `table`; throws every inline JWKS problem with its location.
    init(table: RouteTable, remote: RemoteJWKS) throws(ConfigError) {
        var rules: [Rule] = []
        var problems: [ConfigDiagnostic] = []
        for ra in table.requestAuthentications {
            for r in ra.rules {
                var keys: [JWK]?
                if let text = r.jwks {
                    do throws(JWTError) { keys = try JWK.parseSet(text) } catch {
                        problems.append(ConfigDiagnostic(.error, at: r.location, "RequestAuthentication \(ra.meta.namespace)/\(ra.meta.name): jwks: \(error)"))
                    }
                }
                rules.append(Rule(rule: r, keys: keys))
            }
        }
        if !problems.isEmpty { throw ConfigError(problems) }
        self.rules = rules
        self.remote = remote
    }

    /// The JWKS URLs the rules need fetched.
    var remoteURIs: [String] { Array(Set(rules.compactMap { $0.keys == nil ? $0.rule.jwksUri : nil })).sorted() }

    func authenticate(headers: HTTPHeaders, uri: String, now: Double) -> Outcome {
        guard !rules.isEmpty, let (token, header) = Self.findToken(rules, headers: headers, uri: uri) else { return .none }
        let jwt: JWT
        do throws(JWTError) { jwt = try JWT(parsing: token) } catch { return .invalid(error.description) }
        let claims = jwt.claims
        guard let iss = claims["iss"]?.string, let rule = rules.first(where: { $0.rule.issuer == iss }) else {
            return .invalid("Jwt issuer is not configured")
        }
        if let exp = claims["exp"]?.number, now > exp + Self.clockSkew { return .invalid("Jwt is expired") }
        if let nbf = claims["nbf"]?.number, now + Self.clockSkew < nbf { return .invalid("Jwt not yet valid") }
        if !rule.rule.audiences.isEmpty {
            let aud = claims["aud"]?.claimStrings ?? []
            if !aud.contains(where: rule.rule.audiences.contains) { return .invalid("Audiences in Jwt are not allowed") }
        }
        guard let keys = rule.keys ?? rule.rule.jwksUri.flatMap(remote.keys) else { return .invalid("Jwks remote fetch is failed") }
        guard jwt.verifies(with: keys) else { return .invalid("Jwt verification fails") }
        return .valid(Verified(rule: rule.rule, claims: jwt.flatClaims, header: header, payloadBase64: jwt.payloadBase64))
    }

    /// The first token in any rule's locations: header (with its prefix stripped), then query parameter.
    static func findToken(_ rules: [Rule], headers: HTTPHeaders, uri: String) -> (String, String?)? {
        for r in rules {
            for (name, prefix) in r.rule.fromHeaders {
                guard let v = headers.first(name: name) else { continue }
                if prefix.isEmpty { return (v, name) }
                if v.lowercased().hasPrefix(prefix.lowercased()) { return (String(v.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces), name) }
            }
        }
        guard let q = uri.firstIndex(of: "?") else { return nil }
        let query = uri[uri.index(after: q)...]
        for r in rules {
            for p in r.rule.fromParams {
                for pair in query.split(separator: "&") where pair.hasPrefix("\(p)=") {
                    return (String(pair.dropFirst(p.count + 1)).removingPercentEncoding ?? "", nil)
                }
            }
        }
        return nil
    }
}

/// JWK sets fetched from `jwksUri`s, shared by every configuration version; refreshed by the proxy every
/// 20 minutes (Envoy's default cache duration is 10 minutes; Istio's istiod refreshes every 20) and retried
/// every 5 s until a first fetch succeeds.
final class RemoteJWKS: Sendable {
    private let cache = NIOLockedValueBox<[String: [JWK]]>([:])

    func keys(_ uri: String) -> [JWK]? { cache.withLockedValue { $0[uri] } }

    func store(_ uri: String, _ keys: [JWK]) { cache.withLockedValue { $0[uri] = keys } }
}
