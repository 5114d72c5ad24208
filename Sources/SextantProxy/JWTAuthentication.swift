import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import SextantIstio
import SextantPipeline
import _CryptoExtras

/// A JSON value, as JWT headers, payloads and JWK sets carry them.
enum JSONValue: Sendable, Equatable, Decodable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    /// Parses JSON text (RFC 8259); nil when it is not JSON.
    static func parse(_ bytes: some DataProtocol) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var number: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    /// The claim's values as strings, for matching and headers: a string, a number without a fraction
    /// as an integer, a boolean, or each string of an array.
    var claimStrings: [String] {
        switch self {
        case .string(let s): return [s]
        case .number(let n): return [n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)]
        case .bool(let b): return [b ? "true" : "false"]
        case .array(let a): return a.flatMap { v -> [String] in if case .array = v { return [] } else { return v.claimStrings } }
        case .object, .null: return []
        }
    }
}

/// Base64url without padding (RFC 7515 §2, RFC 4648 §5).
enum Base64URL {
    static func decode(_ s: Substring) -> [UInt8]? {
        var b64 = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        return Data(base64Encoded: b64).map { Array($0) }
    }
}

/// One public key of a JWK set (RFC 7517): RSA (`n`, `e`) or EC P-256/P-384 (`x`, `y`).
struct JWK: Sendable {
    enum Key: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
    }
    var kid: String?
    var alg: String?
    var key: Key

    /// The keys of a JWKS document; keys of other types (`oct`, `OKP`) are skipped, as Envoy skips what
    /// it cannot use. Throws with the reason when the document is not a JWK set or holds no usable key.
    static func parseSet(_ text: String) throws(JWTError) -> [JWK] {
        guard let doc = JSONValue.parse(Array(text.utf8)), case .array(let keys)? = doc["keys"] else {
            throw JWTError("the JWKS is not a JSON object with a \"keys\" array")
        }
        var out: [JWK] = []
        for k in keys {
            guard let kty = k["kty"]?.string else { continue }
            let kid = k["kid"]?.string
            let alg = k["alg"]?.string
            switch kty {
            case "RSA":
                guard let n = k["n"]?.string.flatMap({ Base64URL.decode(Substring($0)) }),
                    let e = k["e"]?.string.flatMap({ Base64URL.decode(Substring($0)) }),
                    let key = try? _RSA.Signing.PublicKey(n: n, e: e)
                else { throw JWTError("RSA key \(kid ?? "") has no valid n/e") }
                out.append(JWK(kid: kid, alg: alg, key: .rsa(key)))
            case "EC":
                guard let x = k["x"]?.string.flatMap({ Base64URL.decode(Substring($0)) }),
                    let y = k["y"]?.string.flatMap({ Base64URL.decode(Substring($0)) })
                else { throw JWTError("EC key \(kid ?? "") has no x/y") }
                let point = [0x04] + x + y  // SEC 1 uncompressed point
                switch k["crv"]?.string {
                case "P-256":
                    guard let key = try? P256.Signing.PublicKey(x963Representation: point) else { throw JWTError("EC key \(kid ?? "") is not on P-256") }
                    out.append(JWK(kid: kid, alg: alg, key: .p256(key)))
                case "P-384":
                    guard let key = try? P384.Signing.PublicKey(x963Representation: point) else { throw JWTError("EC key \(kid ?? "") is not on P-384") }
                    out.append(JWK(kid: kid, alg: alg, key: .p384(key)))
                default:
                    continue
                }
            default:
                continue
            }
        }
        if out.isEmpty { throw JWTError("the JWKS holds no RSA or EC (P-256, P-384) key") }
        return out
    }

    /// RFC 7518 §3: RS* (PKCS#1 v1.5), PS* (PSS) and ES* (raw r‖s) signatures over `input`.
    func verifies(alg: String, input: [UInt8], signature: [UInt8]) -> Bool {
        if let own = self.alg, own != alg { return false }
        switch (key, alg) {
        case (.rsa(let k), "RS256"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.rsa(let k), "RS384"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.rsa(let k), "RS512"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.rsa(let k), "PS256"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA256.hash(data: input), padding: .PSS)
        case (.rsa(let k), "PS384"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA384.hash(data: input), padding: .PSS)
        case (.rsa(let k), "PS512"): return k.isValidSignature(.init(rawRepresentation: signature), for: SHA512.hash(data: input), padding: .PSS)
        case (.p256(let k), "ES256"):
            guard let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: SHA256.hash(data: input))
        case (.p384(let k), "ES384"):
            guard let sig = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.isValidSignature(sig, for: SHA384.hash(data: input))
        default:
            return false
        }
    }
}

/// Why a token was refused, in Envoy's `jwt_authn` words (they reach the client as the 401 body).
struct JWTError: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

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
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .invalid("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections") }
        guard let headerBytes = Base64URL.decode(parts[0]), let jwtHeader = JSONValue.parse(headerBytes),
            let payloadBytes = Base64URL.decode(parts[1]), let payload = JSONValue.parse(payloadBytes), case .object(let claims) = payload,
            let signature = Base64URL.decode(parts[2])
        else { return .invalid("Jwt header or payload is an invalid JSON") }
        guard let alg = jwtHeader["alg"]?.string else { return .invalid("Jwt header [alg] field is required") }
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
        let kid = jwtHeader["kid"]?.string
        let input = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let candidates = keys.filter { kid == nil || $0.kid == nil || $0.kid == kid }
        guard candidates.contains(where: { $0.verifies(alg: alg, input: input, signature: signature) }) else {
            return .invalid("Jwt verification fails")
        }
        var flat: [String: [String]] = [:]
        func walk(_ prefix: String, _ v: JSONValue) {
            flat[prefix] = v.claimStrings
            if case .object(let o) = v { for (k, sub) in o { walk("\(prefix).\(k)", sub) } }
        }
        for (k, v) in claims { walk(k, v) }
        return .valid(Verified(rule: rule.rule, claims: flat, header: header, payloadBase64: parts[1]))
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
