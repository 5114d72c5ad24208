import SextantModel
import SextantZipkin
import Testing

@Suite("Bad input")
struct ZipkinErrorTests {
    static let good = #"{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","timestamp":1}"#

    /// Spans whose IDs cannot be used are dropped and counted; the rest of the request is kept.
    @Test(arguments: [
        (#"{"id":"eee19b7ec3c1b174"}"#, "span 1: traceId is missing"),
        (#"{"traceId":"5b8efff7980381","id":"eee19b7ec3c1b174"}"#, "span 1: traceId must be 16 or 32 hex digits, got 14"),
        (#"{"traceId":"5b8efff798038103d269b633813fc60g","id":"eee19b7ec3c1b174"}"#, "span 1: traceId is not hex"),
        (#"{"traceId":"00000000000000000000000000000000","id":"eee19b7ec3c1b174"}"#, "span 1: traceId must not be all zero"),
        (#"{"traceId":"0000000000000000","id":"eee19b7ec3c1b174"}"#, "span 1: traceId must not be all zero"),
        (#"{"traceId":"5b8efff798038103"}"#, "span 1: id is missing"),
        (#"{"traceId":"5b8efff798038103","id":"eee19b7ec3c1b1"}"#, "span 1: id must be 16 hex digits, got 14"),
        (#"{"traceId":"5b8efff798038103","id":"xee19b7ec3c1b174"}"#, "span 1: id is not hex"),
        (#"{"traceId":"5b8efff798038103","id":"0000000000000000"}"#, "span 1: id must not be all zero"),
        (#"{"traceId":"5b8efff798038103","id":"eee19b7ec3c1b174","parentId":"12"}"#, "span 1: parentId must be 16 hex digits, got 2"),
        (#"{"traceId":"5b8efff798038103","id":"eee19b7ec3c1b174","parentId":"zzzzzzzzzzzzzzzz"}"#, "span 1: parentId is not hex"),
    ])
    func rejectsSpansWithBadJSONIDs(span: String, reason: String) throws {
        let result = try ZipkinV2.decodeJSON(Array(("[" + Self.good + "," + span + "]").utf8))
        #expect(result.rejected == 1)
        #expect(result.rejectionReason == reason)
        #expect(result.data.spanCount == 1)
    }

    @Test func countsEveryRejectedSpan() throws {
        let bad = #"{"traceId":"00","id":"eee19b7ec3c1b174"}"#
        let result = try ZipkinV2.decodeJSON(Array("[\(bad),\(Self.good),\(bad),\(bad)]".utf8))
        #expect(result.rejected == 3)
        #expect(result.rejectionReason == "span 0: traceId must be 16 or 32 hex digits, got 2 (3 rejected in total)")
        #expect(result.data.spanCount == 1)
        #expect(result.partialSuccess?.rejected == 3)
    }

    @Test func allZeroParentMeansRoot() throws {
        let json = #"[{"traceId":"5b8efff798038103","id":"eee19b7ec3c1b174","parentId":"0000000000000000","timestamp":1}]"#
        let result = try ZipkinV2.decodeJSON(Array(json.utf8))
        #expect(result.rejected == 0)
        #expect(result.data.resourceSpans[0].scopeSpans[0].spans[0].parentSpanID == nil)
    }

    /// Protobuf `Span`s with the given ID fields (trace_id = 1, parent_id = 2, id = 3).
    static func protoSpan(trace: [UInt8], id: [UInt8], parent: [UInt8]? = nil) -> [UInt8] {
        var span: [UInt8] = [0x0A, UInt8(trace.count)] + trace
        if let parent { span += [0x12, UInt8(parent.count)] + parent }
        span += [0x1A, UInt8(id.count)] + id
        return [0x0A, UInt8(span.count)] + span
    }

    static let id8: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]

    @Test(arguments: [
        (protoSpan(trace: [1, 2, 3], id: id8), "span 1: trace_id must be 8 or 16 bytes, got 3"),
        (protoSpan(trace: [UInt8](repeating: 0, count: 16), id: id8), "span 1: trace_id must not be all zero"),
        (protoSpan(trace: id8, id: [1, 2]), "span 1: id must be 8 bytes, got 2"),
        (protoSpan(trace: id8, id: [UInt8](repeating: 0, count: 8)), "span 1: id must not be all zero"),
        (protoSpan(trace: id8, id: id8, parent: [1]), "span 1: parent_id must be empty or 8 bytes, got 1"),
    ])
    func rejectsSpansWithBadProtobufIDs(span: [UInt8], reason: String) throws {
        let result = try ZipkinV2.decodeProto(Self.protoSpan(trace: Self.id8 + Self.id8, id: Self.id8) + span)
        #expect(result.rejected == 1)
        #expect(result.rejectionReason == reason)
        #expect(result.data.spanCount == 1)
    }

    /// Malformed payloads fail the whole request with a message that names the offset.
    @Test(arguments: [
        ("", "invalid JSON at offset 0: expected an array, found end of input"),
        ("{}", "invalid JSON at offset 0: expected an array, found '{'"),
        ("[{]", "invalid JSON at offset 2: expected a string key, found ']'"),
        ("[] x", "invalid JSON at offset 3: unexpected 'x' after the top-level value"),
        (#"[{"traceId":1}]"#, "invalid JSON at offset 12: expected a string, found '1'"),
        (#"[{"timestamp":-1}]"#, "invalid JSON at offset 14: expected an unsigned integer"),
        (#"[{"localEndpoint":{"port":70000}}]"#, "invalid JSON at offset 26: port 70000 is out of range"),
        (#"[{"tags":{"a":{}}}]"#, "invalid JSON at offset 14: expected a number, found '{'"),
        (#"[{"name":"\ud800"}]"#, "invalid JSON at offset 10: unpaired surrogate in \\u escape"),
    ])
    func rejectsMalformedJSON(json: String, message: String) {
        #expect(throws: ZipkinDecodingError.self) { try ZipkinV2.decodeJSON(Array(json.utf8)) }
        do {
            _ = try ZipkinV2.decodeJSON(Array(json.utf8))
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = Array(#"[{"name":""#.utf8) + [0xC3, 0x28] + Array(#""}]"#.utf8)
        #expect(throws: ZipkinDecodingError("invalid JSON at offset 10: invalid UTF-8 in string")) {
            try ZipkinV2.decodeJSON(bytes)
        }
        // Span.name (field 5) with the same bytes.
        let proto: [UInt8] = [0x0A, 4, 0x2A, 2, 0xC3, 0x28]
        #expect(throws: ZipkinDecodingError("invalid UTF-8 in string field 5 of Span at offset 4")) {
            try ZipkinV2.decodeProto(proto)
        }
    }

    @Test(arguments: [
        ([0x0A], "truncated varint at offset 1"),
        // A span claiming 2^62 bytes: rejected from the remaining length, nothing allocated.
        ([0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40], "truncated length-delimited field 1: length 4611686018427387904 exceeds the 0 bytes left at offset 10"),
        ([0x0A, 1, 0x08], "truncated varint at offset 3"),
        ([0x0F], "invalid wire type 7 for field 1 in ListOfSpans at offset 0"),
        ([0x0A, 3, 0x42, 1, 0x00], "invalid field tag 0 at offset 4"),
        ([0x0A, 5, 0x42, 3, 0x12, 1, 7], "Endpoint.ipv4 must be 4 bytes, got 1 at offset 7"),
        ([0x0A, 6, 0x42, 4, 0x20, 0xF0, 0xA2, 0x04], "Endpoint.port 70000 is out of range at offset 8"),
        ([0x0A, 9, 0x31, 1, 2, 3], "truncated length-delimited field 1: length 9 exceeds the 4 bytes left at offset 2"),
    ])
    func rejectsMalformedProtobuf(bytes: [UInt8], message: String) {
        #expect(throws: ZipkinDecodingError.self) { try ZipkinV2.decodeProto(bytes) }
        do {
            _ = try ZipkinV2.decodeProto(bytes)
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func emptyInputs() throws {
        #expect(try ZipkinV2.decodeJSON(Array("[]".utf8)).data == TracesData())
        #expect(try ZipkinV2.decodeProto([]).data == TracesData())
        #expect(ZipkinV2.encodeJSON(TracesData()) == Array("[]".utf8))
        #expect(ZipkinV2.encodeProto(TracesData()).isEmpty)
    }
}

extension ZipkinDecodingError: Equatable {
    public static func == (a: ZipkinDecodingError, b: ZipkinDecodingError) -> Bool { a.message == b.message }
}
