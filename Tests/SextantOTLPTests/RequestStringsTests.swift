import SextantModel
@testable import SextantOTLP
import Testing

/// A request's repeated strings are made once and shared (`RequestStrings`); these check that sharing
/// never changes what is decoded: texts that fall in one slot, texts that differ only in the middle,
/// invalid UTF-8 after a valid text of the same slot, and both decoders that use it.
@Suite("Strings shared within a request")
struct RequestStringsTests {
    static let trace = PB.bytes(16, fill: 0x11)
    static let span = PB.bytes(8, fill: 0x22)

    /// Texts that share length and first and last eight bytes (so one slot), differ in the middle,
    /// or are prefixes of each other, besides plain repeats and the longest shared length and beyond.
    static let texts: [String] = [
        "http.request.method", "http.request.method", "aaaaaaaaXbbbbbbbb", "aaaaaaaaYbbbbbbbb", "aaaaaaaaXbbbbbbbb",
        "ab", "ba", "ab", "a", "abcdefgh", "abcdefg", "abcdefghi", "héllo wörld", "héllo wörld",
        String(repeating: "x", count: RequestStrings.maxLength), String(repeating: "x", count: RequestStrings.maxLength),
        String(repeating: "y", count: RequestStrings.maxLength + 1), String(repeating: "y", count: RequestStrings.maxLength + 1),
    ]

    @Test func protobufDecodesEveryTextAsSent() throws {
        var spans: [[UInt8]] = []
        for (i, text) in Self.texts.enumerated() {
            let attribute = PB.len(9, PB.string(1, text) + PB.len(2, PB.string(1, Self.texts[(i + 3) % Self.texts.count])))
            spans.append(PB.span(traceID: Self.trace, spanID: Self.span, name: text, extra: attribute))
        }
        let decoded = try OTLPProtobuf.decodeTraces(PB.traces(spans)).data.resourceSpans[0].scopeSpans[0].spans
        #expect(decoded.map(\.name) == Self.texts)
        #expect(decoded.map { $0.attributes[0].key } == Self.texts)
        #expect(decoded.enumerated().map { $0.element.attributes[0].value } == Self.texts.indices.map { .string(Self.texts[($0 + 3) % Self.texts.count]) })
    }

    @Test func repeatedTextSharesOneStorage() throws {
        let key = "http.response.status_code"
        let spans = (0..<3).map { _ in
            PB.span(traceID: Self.trace, spanID: Self.span, extra: PB.len(9, PB.string(1, key) + PB.len(2, PB.varintField(3, 200))))
        }
        let decoded = try OTLPProtobuf.decodeTraces(PB.traces(spans)).data.resourceSpans[0].scopeSpans[0].spans
        var keys = decoded.map { $0.attributes[0].key }
        #expect(keys == [key, key, key])
        let addresses = keys.indices.map { i in keys[i].withUTF8 { UInt(bitPattern: $0.baseAddress) } }
        #expect(Set(addresses).count == 1)
        // A separate request makes its own.
        var again = try OTLPProtobuf.decodeTraces(PB.traces(spans)).data.resourceSpans[0].scopeSpans[0].spans[0].attributes[0].key
        #expect(again.withUTF8 { UInt(bitPattern: $0.baseAddress) } != addresses[0])
    }

    @Test func invalidUTF8IsRejectedAfterAValidTextOfTheSameSlot() {
        // Same length and same first and last eight bytes as the valid key before it.
        let valid = Array("aaaaaaaaXbbbbbbbb".utf8)
        var invalid = valid
        invalid[8] = 0xFF
        let spans = [valid, invalid].map { PB.span(traceID: Self.trace, spanID: Self.span, extra: PB.len(9, PB.len(1, $0))) }
        #expect(throws: OTLPDecodingError.self) { try OTLPProtobuf.decodeTraces(PB.traces(spans)) }
    }

    @Test func attributeArraysAreSizedFromTheRequest() throws {
        let attributes = (0..<5).flatMap { PB.len(9, PB.string(1, "k\($0)")) }
        let span = PB.span(traceID: Self.trace, spanID: Self.span, extra: attributes + PB.string(5, "renamed"))
        let decoded = try OTLPProtobuf.decodeTraces(PB.traces(Array(repeating: span, count: 5))).data.resourceSpans[0].scopeSpans[0]
        // Grown one append at a time, the arrays would have room for 8 (1, 2, 4, 8).
        #expect(decoded.spans.count == 5 && decoded.spans.capacity < 8)
        #expect(decoded.spans[0].attributes.map(\.key) == (0..<5).map { "k\($0)" })
        #expect(decoded.spans[0].attributes.capacity < 8)
        #expect(decoded.spans[0].name == "renamed")
        // An element apart from the others' run (not what encoders write) is still decoded, in order.
        let apart = PB.span(traceID: Self.trace, spanID: Self.span, extra: attributes + PB.string(5, "renamed") + PB.len(9, PB.string(1, "k5")))
        let spread = try OTLPProtobuf.decodeTraces(PB.traces([apart])).data.resourceSpans[0].scopeSpans[0].spans[0]
        #expect(spread.attributes.map(\.key) == (0..<6).map { "k\($0)" } && spread.name == "renamed")
        // A malformed field after the first attribute stops the count, and decoding reports it.
        let truncated = PB.span(traceID: Self.trace, spanID: Self.span, extra: PB.len(9, PB.string(1, "k")) + PB.tag(9, 2) + PB.varint(50))
        #expect(throws: OTLPDecodingError.self) { try OTLPProtobuf.decodeTraces(PB.traces([truncated])) }
    }

    @Test func jsonDecodesEveryTextAsSent() throws {
        func json(_ s: String) -> String {
            var out = "\""
            for c in s.unicodeScalars { out += c == "\"" ? "\\\"" : String(c) }
            return out + "\""
        }
        let spans = Self.texts.enumerated().map { i, text in
            #"{"traceId":"11111111111111111111111111111111","spanId":"2222222222222222","name":\#(json(text)),"#
                + #""attributes":[{"key":\#(json(text)),"value":{"stringValue":\#(json(Self.texts[(i + 3) % Self.texts.count]))}}]}"#
        }
        let body = #"{"resourceSpans":[{"scopeSpans":[{"spans":["# + spans.joined(separator: ",") + "]}]}]}"
        let decoded = try OTLPJSON.decodeTraces(Array(body.utf8)).data.resourceSpans[0].scopeSpans[0].spans
        #expect(decoded.map(\.name) == Self.texts)
        #expect(decoded.map { $0.attributes[0].key } == Self.texts)
        #expect(decoded.indices.map { decoded[$0].attributes[0].value } == Self.texts.indices.map { .string(Self.texts[($0 + 3) % Self.texts.count]) })
        // An escaped spelling of an earlier text decodes to the same text.
        let escaped = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"11111111111111111111111111111111","spanId":"2222222222222222","name":"ab"},"#
            + #"{"traceId":"11111111111111111111111111111111","spanId":"2222222222222222","name":"a\u0062"}]}]}]}"#
        #expect(try OTLPJSON.decodeTraces(Array(escaped.utf8)).data.resourceSpans[0].scopeSpans[0].spans.map(\.name) == ["ab", "ab"])
    }
}
