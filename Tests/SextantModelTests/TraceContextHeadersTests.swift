import SextantModel
import Testing

/// The sampling state the proxy takes from an incoming hop (the IDs are covered with the access-log tests).
@Suite struct TraceContextHeadersTests {
    @Test func traceparentSampledFlag() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
        #expect(TraceContextHeaders.traceparentContext("00-\(id)-01")?.sampled == true)
        #expect(TraceContextHeaders.traceparentContext("00-\(id)-00")?.sampled == false)
        #expect(TraceContextHeaders.traceparentContext(" 00-\(id)-03\t")?.sampled == true)
        // Trace Context §3.2: version 00 has exactly four fields, flags are two hex digits.
        #expect(TraceContextHeaders.traceparentContext("00-\(id)-01-extra") == nil)
        #expect(TraceContextHeaders.traceparentContext("00-\(id)-0g") == nil)
        #expect(TraceContextHeaders.traceparentContext("zz-\(id)-01") == nil)
        #expect(TraceContextHeaders.traceparentContext("01-\(id)-01-future")?.sampled == true)
    }

    @Test func b3SingleSamplingState() {
        let ids = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"
        #expect(TraceContextHeaders.b3SingleContext(ids)?.sampled == nil)
        #expect(TraceContextHeaders.b3SingleContext("\(ids)-1")?.sampled == true)
        #expect(TraceContextHeaders.b3SingleContext("\(ids)-d")?.sampled == true)
        #expect(TraceContextHeaders.b3SingleContext("\(ids)-0-05e3ac9a4f6e3b90")?.sampled == false)
        #expect(TraceContextHeaders.b3SingleContext("\(ids)-1-05e3ac9a4f6e3b90-x") == nil)
        #expect(TraceContextHeaders.b3SingleContext("64fe8b2a57d3eff7-e457b5a2e4d86bd1-1")?.traceID.hex == "000000000000000064fe8b2a57d3eff7")
    }
}
