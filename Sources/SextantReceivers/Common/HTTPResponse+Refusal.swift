import SextantHTTP
import SextantPipeline

extension HTTPResponse {
    /// The plain-text answer to a pipeline refusal for protocols without a structured error body
    /// (Zipkin, Jaeger): permanent → 400, overloaded → 429, retryable → 503, the last two with
    /// `Retry-After` so clients back off.
    static func refusal(_ e: ConsumerError) -> HTTPResponse {
        var r = HTTPResponse.text(e.kind == .permanent ? .badRequest : e.kind == .overloaded ? .tooManyRequests : .serviceUnavailable, e.message)
        if e.kind != .permanent {
            r.headers.add(name: "retry-after", value: String(max(1, e.retryAfter?.components.seconds ?? 1)))
        }
        return r
    }
}
