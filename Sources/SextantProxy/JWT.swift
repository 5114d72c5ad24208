import Crypto
import Foundation
import _CryptoExtras

// The pure half of the proxy's JWT support: JSON, base64url, JWK sets and JWS compact tokens, with no
// NIO or Istio types, so the fuzz package can build this file alone (fuzz/Sources/SextantJWT links it).

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

/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not yet trusted: its claims
/// mean nothing until `verifies(with:)` holds.
struct JWT {
    var header: JSONValue
    var claims: [String: JSONValue]
    /// The header's `alg` (RFC 7515 §4.1.1).
    var alg: String
    /// The header's `kid`, when present: only keys with that ID (or none) are tried.
    var kid: String?
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes the signature covers.
    var signingInput: [UInt8]
    var signature: [UInt8]
    /// The payload as it appeared in the token (Istio's `outputPayloadToHeader` forwards it as is).
    var payloadBase64: Substring

    /// Splits and decodes `token`; throws Envoy's `jwt_authn` message when it is not a JWS whose
    /// header and payload are JSON objects with an `alg`.
    init(parsing token: String) throws(JWTError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw JWTError("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = JSONValue.parse(headerBytes),
            let payloadBytes = Base64URL.decode(parts[1]), let payload = JSONValue.parse(payloadBytes), case .object(let claims) = payload,
            let signature = Base64URL.decode(parts[2])
        else { throw JWTError("Jwt header or payload is an invalid JSON") }
        guard let alg = header["alg"]?.string else { throw JWTError("Jwt header [alg] field is required") }
        self.header = header
        self.claims = claims
        self.alg = alg
        self.kid = header["kid"]?.string
        self.signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        self.signature = signature
        self.payloadBase64 = parts[1]
    }

    /// Whether one of `keys` (those matching `kid`) verifies the signature with the header's `alg`.
    func verifies(with keys: [JWK]) -> Bool {
        keys.contains { (kid == nil || $0.kid == nil || $0.kid == kid) && $0.verifies(alg: alg, input: signingInput, signature: signature) }
    }

    /// Every claim path (`groups`, `sub`, `nested.key`) → its values, for `@request.auth.claims.*`.
    var flatClaims: [String: [String]] {
        var flat: [String: [String]] = [:]
        func walk(_ prefix: String, _ v: JSONValue) {
            flat[prefix] = v.claimStrings
            if case .object(let o) = v { for (k, sub) in o { walk("\(prefix).\(k)", sub) } }
        }
        for (k, v) in claims { walk(k, v) }
        return flat
    }
}
