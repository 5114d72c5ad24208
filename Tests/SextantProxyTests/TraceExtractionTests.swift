import SextantModel
import Testing

@testable import SextantProxy

/// `TraceContext.extract` reads the incoming context from the field indexes noted in the request's one pass
/// (`TraceContext.Fields`): W3C first, then single `b3`, then `x-b3-*`; the first field of a name counts;
/// names match in any case.
@Suite struct TraceExtractionTests {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    let span = "00f067aa0ba902b7"

    private func extract(_ fields: [(String, String)]) -> (trace: String, span: String, sampled: Bool?, state: String?)? {
        guard let c = TraceContext.extract(fields, at: TraceContext.Fields(fields)) else { return nil }
        return (c.0.hex, c.1.hex, c.2, c.3)
    }

    @Test func w3cComesFirstWithItsTraceState() throws {
        let c = try #require(extract([
            ("Host", "a"), ("B3", "\(trace.reversed().map(String.init).joined())-\(span)-0"),
            ("TraceParent", "00-\(trace)-\(span)-01"), ("tracestate", "k=v"), ("TRACESTATE", "later=ignored"),
        ]))
        #expect(c.trace == trace && c.span == span && c.sampled == true && c.state == "k=v")
        let unsampled = try #require(extract([("traceparent", "00-\(trace)-\(span)-00")]))
        #expect(unsampled.sampled == false && unsampled.state == nil)
    }

    @Test func singleB3WhenTraceParentIsAbsentOrInvalid() throws {
        for fields in [[("b3", "\(trace)-\(span)-1")], [("traceparent", "garbage"), ("b3", "\(trace)-\(span)-1")]] {
            let c = try #require(extract(fields))
            #expect(c.trace == trace && c.span == span && c.sampled == true && c.state == nil)
        }
        let deferred = try #require(extract([("b3", "\(trace)-\(span)")]))
        #expect(deferred.sampled == nil, "no decision: the proxy samples")
    }

    @Test func multiHeaderB3WithSampledAndFlags() throws {
        let base = [("X-B3-TraceId", trace), ("x-b3-spanid", span)]
        let cases: [([(String, String)], Bool?)] = [
            ([], nil), ([("x-b3-sampled", "1")], true), ([("X-B3-Sampled", "True")], true),
            ([("x-b3-sampled", "0")], false), ([("x-b3-sampled", "0"), ("x-b3-flags", "1")], true),
            ([("x-b3-flags", "0")], nil), ([("x-b3-sampled", "0"), ("x-b3-sampled", "1")], false),
        ]
        for (extra, sampled) in cases {
            let c = try #require(extract(base + extra))
            #expect(c.trace == trace && c.span == span && c.sampled == sampled, "\(extra)")
        }
        #expect(extract([("x-b3-traceid", trace)]) == nil, "a trace ID alone is no context")
        #expect(extract([("x-b3-traceid", "zz"), ("x-b3-spanid", span)]) == nil)
        #expect(extract([("host", "a"), ("x-request-id", "r")]) == nil)
        #expect(extract([]) == nil)
    }
}
