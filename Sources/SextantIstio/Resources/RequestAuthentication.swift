import SextantPipeline

/// `security.istio.io` `RequestAuthentication`: which JWTs the selected workloads accept. A request with
/// no token passes (an `AuthorizationPolicy` would be needed to require one); a request with a token that
/// fails verification is refused with 401 (Istio's "Request authentication" semantics).
public struct RequestAuthentication: Sendable {
    public var meta: ObjectMeta
    /// `selector.matchLabels`; empty selects every workload of the namespace (all of the mesh in the root
    /// namespace, `istio-system`).
    public var selector: [String: String]
    public var rules: [JWTRule]

    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> RequestAuthentication {
        var selector: [String: String] = [:]
        if var s = spec.optionalSection("selector") {
            selector = s.labels("matchLabels")
            s.finish()
        }
        _ = spec.raw("targetRef")
        _ = spec.raw("targetRefs")
        let rules = spec.sectionList("jwtRules").map { r in
            var r = r
            return JWTRule.parse(&r)
        }
        spec.finish()
        return RequestAuthentication(meta: meta, selector: selector, rules: rules)
    }

    /// Whether this resource applies to a workload, as Istio selects: its own namespace with a matching
    /// selector, or the root namespace.
    public func applies(to identity: ProxyIdentity) -> Bool {
        (meta.namespace == identity.namespace || meta.namespace == "istio-system")
            && selector.allSatisfy { identity.labels[$0.key] == $0.value }
    }
}

/// One `jwtRules[]` entry (Istio's `JWTRule`).
public struct JWTRule: Sendable {
    /// A token's `iss` selects the rule.
    public var issuer: String
    /// When set, the token's `aud` must contain one of them.
    public var audiences: [String]
    /// Where the public keys are fetched from (JWKS), or `jwks`, the JWKS inline (JSON text).
    public var jwksUri: String?
    public var jwks: String?
    /// Where the token is looked for; Istio's defaults: `Authorization: Bearer <token>` and the
    /// `access_token` query parameter.
    public var fromHeaders: [(name: String, prefix: String)]
    public var fromParams: [String]
    /// Keep the token on the request forwarded upstream (Istio's default: removed).
    public var forwardOriginalToken: Bool
    /// Claims copied into request headers for the upstream.
    public var outputClaimToHeaders: [(header: String, claim: String)]
    /// A header that receives the token's payload (base64url, as Envoy forwards it).
    public var outputPayloadToHeader: String?
    public var location: SourceLocation

    static func parse(_ r: inout ConfigReader) -> JWTRule {
        let issuer = r.string("issuer", default: "")
        if issuer.isEmpty { r.error(nil, "\(r.path): issuer is required") }
        let audiences = r.stringList("audiences")
        let jwksUri = r.optionalString("jwksUri")
        let jwks = r.optionalString("jwks")
        if jwksUri == nil && jwks == nil {
            r.error(nil, "\(r.path): jwksUri or jwks is required (sextant proxy does not discover keys through OpenID Connect)")
        }
        if let jwksUri, !(jwksUri.hasPrefix("http://") || jwksUri.hasPrefix("https://")) {
            r.error("jwksUri", "\(r.qualified("jwksUri")) must be an http:// or https:// URL, found '\(jwksUri)'")
        }
        var fromHeaders: [(String, String)] = r.sectionList("fromHeaders").map { h in
            var h = h
            let name = h.string("name", default: "")
            if name.isEmpty { h.error(nil, "\(h.path): name is required") }
            let prefix = h.string("prefix", default: "")
            h.finish()
            return (name.lowercased(), prefix)
        }
        var fromParams = r.stringList("fromParams")
        let fromCookies = r.stringList("fromCookies")
        if !fromCookies.isEmpty { r.warning("fromCookies", "\(r.qualified("fromCookies")) is not supported by sextant proxy; ignored") }
        if fromHeaders.isEmpty && fromParams.isEmpty {
            fromHeaders = [("authorization", "Bearer ")]
            fromParams = ["access_token"]
        }
        let forward = r.bool("forwardOriginalToken", default: false)
        let outputs: [(String, String)] = r.sectionList("outputClaimToHeaders").map { o in
            var o = o
            let header = o.string("header", default: "")
            let claim = o.string("claim", default: "")
            if header.isEmpty || claim.isEmpty { o.error(nil, "\(o.path): header and claim are required") }
            o.finish()
            return (header.lowercased(), claim)
        }
        let payloadHeader = r.optionalString("outputPayloadToHeader")
        _ = r.raw("timeout")
        r.finish()
        return JWTRule(
            issuer: issuer, audiences: audiences, jwksUri: jwksUri, jwks: jwks, fromHeaders: fromHeaders, fromParams: fromParams,
            forwardOriginalToken: forward, outputClaimToHeaders: outputs, outputPayloadToHeader: payloadHeader?.lowercased(),
            location: r.node.location)
    }
}
