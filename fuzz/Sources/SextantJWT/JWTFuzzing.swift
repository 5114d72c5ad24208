// Fuzz-package only: the entry point into the proxy's JWT parsing, kept beside JWT.swift (a symlink
// to Sources/SextantProxy/JWT.swift) so those types can stay internal to the proxy.

/// One fuzz input through the proxy's JWT path: the JWK set parser on `jwks`, then `token` decoded,
/// its claims flattened and its signature checked against the parsed keys (or, when `jwks` is not a
/// usable set, against a fixed one with RSA, P-256 and P-384 keys). Traps if an invariant breaks.
public func fuzzJWT(token: String, jwks: String) {
    let parsed = try? JWK.parseSet(jwks)
    guard let jwt = try? JWT(parsing: token) else { return }
    let claims = jwt.flatClaims
    for key in jwt.claims.keys where claims[key] == nil { fatalError("claim \(key) missing from flatClaims") }
    let input = Array(token.utf8)
    if jwt.signingInput.count >= input.count || Array(input.prefix(jwt.signingInput.count)) != jwt.signingInput {
        fatalError("signing input is not the token's first two sections")
    }
    // The fixed set is parsed per input rather than cached in a global: JWK.Key keeps EC keys behind
    // enum-tagged pointers, which LeakSanitizer cannot see through, so a cached set is reported as
    // leaked at exit.
    guard let keys = parsed ?? (try? JWK.parseSet(FixedKeys.json)) else { fatalError("the fixed JWKS does not parse") }
    _ = jwt.verifies(with: keys)
}

enum FixedKeys {
    static let json = #"{"keys":[{"kty":"RSA","key_ops":["verify"],"n":"yjAvs3ndGKV5GoAjwJVZ729cb-IB8juiTaBmzTuYClMFosqwU0oOBvkUCa1MLDs6BM5-25O_6t0mSekFtGiS5V--pdyqSh6fXymt-sdQZc3GiIrEL6BgIR877Zhts_OJVR4C8h-FZE7-a-k1bvMfrah2i_sbcUkWj5VsIjTpL_G10gLa7jXvyuHk_PQ5tPGnq6Leip5esyo7IVND509mUtfoNUXR-H9ULLxlPsGHAKGRMwYwjFZYceUEJxMLHGWc4_M7TnZNzorpo1wmff_EsJHApKKZ8dm257NJlf9kE4uFUaaK6xV-INZrH35mXJjRqKe4zQbuDplDslNow50pLw","e":"AQAB","kid":"rsa-1","alg":"RS256"},{"kty":"EC","crv":"P-256","x":"obYwqCtaEIdvaQkRvNOmv6KSMtah23Z9SGc1ZyQDEzU","y":"C1zkHE4hwiZ3AZb6epVerUTmVq3DtyH1C2bjvccc0Rk","kid":"ec-1","alg":"ES256"},{"kty":"EC","crv":"P-384","x":"9PggCOcqbGR8-ZFDN4XK4IfjGU5iboZa8MMX1dl33r4fXVazyFaE8LLkmMzInRM4","y":"vYXvvY9Gm-XO0OO-hZENpxaV-Ct5JQWPo_w0jkw9QJdrXjUaASNwc5KNinLGoYdN","kid":"ec-2","alg":"ES384"},{"kty":"oct","k":"c2VjcmV0"}]}"#
}
