import FuzzSupport
import SextantJWT

/// The proxy's JWT path (`RequestAuthentication`): an input is `token NUL jwks`; without a NUL the
/// whole input is both the token and the JWK set. Tokens are decoded (base64url, header and claims
/// JSON), their claims flattened and their signatures checked (RS*, PS*, ES256, ES384).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let nul = bytes.firstIndex(of: 0) {
        fuzzJWT(
            token: String(decoding: bytes[..<nul], as: UTF8.self),
            jwks: String(decoding: bytes[(nul + 1)...], as: UTF8.self))
    } else {
        let text = String(decoding: bytes, as: UTF8.self)
        fuzzJWT(token: text, jwks: text)
    }
    return 0
}

runLibFuzzer(fuzz)
