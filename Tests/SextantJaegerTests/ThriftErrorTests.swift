import SextantThrift
import Testing

/// Malformed input must end in a `ThriftError` with the right code and offset, never a crash or
/// an allocation sized by the input.
private func repeated(_ bytes: [UInt8], _ count: Int) -> [UInt8] { Array(Array(repeating: bytes, count: count).joined()) }

@Suite("Thrift errors")
struct ThriftErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: ThriftProtocolKind
        var bytes: [UInt8]
        var code: ThriftError.Code
        var offset: Int
        var testDescription: String { "\(kind) \(name)" }
    }

    /// Each input is read as one struct (or a message header, when it starts with one).
    static let cases: [Case] = [
        // Binary protocol
        Case(name: "empty struct input", kind: .binary, bytes: [], code: .truncated, offset: 0),
        Case(name: "missing stop", kind: .binary, bytes: [0x08, 0x00, 0x01, 0, 0, 0, 1], code: .truncated, offset: 7),
        Case(name: "invalid field type", kind: .binary, bytes: [0x11, 0x00, 0x01], code: .invalidType, offset: 0),
        Case(name: "truncated field id", kind: .binary, bytes: [0x08, 0x00], code: .truncated, offset: 1),
        Case(name: "truncated i64", kind: .binary, bytes: [0x0A, 0x00, 0x01, 1, 2, 3], code: .truncated, offset: 3),
        Case(name: "negative string length", kind: .binary, bytes: [0x0B, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF], code: .negativeSize, offset: 3),
        Case(name: "string past end", kind: .binary, bytes: [0x0B, 0x00, 0x01, 0, 0, 0, 0x10, 0x61], code: .sizeExceedsInput, offset: 7),
        Case(name: "negative list size", kind: .binary, bytes: [0x0F, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFE], code: .negativeSize, offset: 4),
        Case(name: "list size past end", kind: .binary, bytes: [0x0F, 0x00, 0x01, 0x08, 0, 0, 0x10, 0, 1, 2, 3, 4], code: .sizeExceedsInput, offset: 8),
        Case(name: "huge list of structs", kind: .binary, bytes: [0x0F, 0x00, 0x01, 0x0C, 0x7F, 0xFF, 0xFF, 0xFF, 0], code: .sizeExceedsInput, offset: 8),
        Case(name: "invalid list element type", kind: .binary, bytes: [0x0F, 0x00, 0x01, 0x00, 0, 0, 0, 0], code: .invalidType, offset: 3),
        Case(name: "huge map", kind: .binary, bytes: [0x0D, 0x00, 0x01, 0x0B, 0x0B, 0x7F, 0xFF, 0xFF, 0xFF], code: .sizeExceedsInput, offset: 9),
        Case(name: "negative map size", kind: .binary, bytes: [0x0D, 0x00, 0x01, 0x08, 0x08, 0x80, 0, 0, 0], code: .negativeSize, offset: 5),
        Case(name: "truncated uuid", kind: .binary, bytes: [0x10, 0x00, 0x01] + Array(repeating: 0, count: 15), code: .sizeExceedsInput, offset: 3),
        Case(name: "nested structs", kind: .binary, bytes: repeated([0x0C, 0x00, 0x01], 100), code: .depthLimitExceeded, offset: 192),
        Case(name: "nested lists", kind: .binary, bytes: [0x0F, 0x00, 0x01] + repeated([0x0F, 0, 0, 0, 1], 100), code: .depthLimitExceeded, offset: 318),
        // Compact protocol
        Case(name: "empty struct input", kind: .compact, bytes: [], code: .truncated, offset: 0),
        Case(name: "missing stop", kind: .compact, bytes: [0x15, 0x02], code: .truncated, offset: 2),
        Case(name: "invalid field type", kind: .compact, bytes: [0x1E], code: .invalidType, offset: 0),
        Case(name: "truncated long-form field id", kind: .compact, bytes: [0x05, 0x80], code: .truncated, offset: 2),
        Case(name: "truncated varint", kind: .compact, bytes: [0x16, 0xFF, 0xFF], code: .truncated, offset: 3),
        Case(name: "varint too long", kind: .compact, bytes: [0x16] + Array(repeating: 0xFF, count: 11), code: .invalidValue, offset: 1),
        Case(name: "i32 out of range", kind: .compact, bytes: [0x15, 0x80, 0x80, 0x80, 0x80, 0x10], code: .invalidValue, offset: 1),
        Case(name: "i16 out of range", kind: .compact, bytes: [0x14, 0xFF, 0xFF, 0x07], code: .invalidValue, offset: 1),
        Case(name: "truncated double", kind: .compact, bytes: [0x17, 0, 0, 0], code: .truncated, offset: 1),
        Case(name: "binary past end", kind: .compact, bytes: [0x18, 0x10, 0x61], code: .sizeExceedsInput, offset: 2),
        Case(name: "negative binary length", kind: .compact, bytes: [0x18, 0x80, 0x80, 0x80, 0x80, 0x08], code: .negativeSize, offset: 1),
        Case(name: "list size past end", kind: .compact, bytes: [0x19, 0xF5, 0xC0, 0x84, 0x3D, 1, 2], code: .sizeExceedsInput, offset: 5),
        Case(name: "doubles past end", kind: .compact, bytes: [0x19, 0x37] + Array(repeating: 0, count: 10), code: .sizeExceedsInput, offset: 2),
        Case(name: "negative list size", kind: .compact, bytes: [0x19, 0xF5, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], code: .negativeSize, offset: 2),
        Case(name: "invalid list element type", kind: .compact, bytes: [0x19, 0x1F], code: .invalidType, offset: 1),
        Case(name: "invalid map key type", kind: .compact, bytes: [0x1B, 0x01, 0xE5], code: .invalidType, offset: 2),
        Case(name: "huge map", kind: .compact, bytes: [0x1B, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x88, 0, 0], code: .sizeExceedsInput, offset: 7),
        Case(name: "nested structs", kind: .compact, bytes: Array(repeating: 0x1C, count: 100), code: .depthLimitExceeded, offset: 64),
        Case(name: "nested maps", kind: .compact, bytes: [0x1B] + repeated([0x01, 0xBB], 100), code: .depthLimitExceeded, offset: 127),
    ]

    @Test(arguments: cases)
    func rejects(_ c: Case) {
        let error = Thrift.error(c.bytes, c.kind) { r in try r.skip(.struct) }
        #expect(error?.code == c.code, "\(String(describing: error))")
        #expect(error?.offset == c.offset, "\(String(describing: error))")
    }

    struct MessageCase: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: ThriftProtocolKind
        var bytes: [UInt8]
        var code: ThriftError.Code
        var testDescription: String { "\(kind) \(name)" }
    }

    static let messageCases: [MessageCase] = [
        MessageCase(name: "bad version", kind: .binary, bytes: [0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], code: .badVersion),
        MessageCase(name: "bad message type", kind: .binary, bytes: [0x80, 0x01, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0], code: .invalidValue),
        MessageCase(name: "truncated seq id", kind: .binary, bytes: [0x80, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0], code: .truncated),
        MessageCase(name: "old format name past end", kind: .binary, bytes: [0x00, 0x00, 0x01, 0x00, 0x61], code: .sizeExceedsInput),
        MessageCase(name: "bad protocol id", kind: .compact, bytes: [0x81, 0x21, 0x00, 0x00], code: .badVersion),
        MessageCase(name: "bad version", kind: .compact, bytes: [0x82, 0x22, 0x00, 0x00], code: .badVersion),
        MessageCase(name: "bad message type", kind: .compact, bytes: [0x82, 0xA1, 0x00, 0x00], code: .invalidValue),
        MessageCase(name: "name past end", kind: .compact, bytes: [0x82, 0x81, 0x00, 0x05, 0x61], code: .sizeExceedsInput),
    ]

    @Test(arguments: messageCases)
    func rejectsMessage(_ c: MessageCase) {
        let error = Thrift.error(c.bytes, c.kind) { r in try r.readMessageBegin() }
        #expect(error?.code == c.code, "\(String(describing: error))")
    }

    /// The depth limit is a reader parameter; the default (64) admits every real Jaeger payload.
    @Test func customDepthLimit() throws {
        let bytes: [UInt8] = [0x1C, 0x1C, 0x00, 0x00, 0x00]
        bytes.withUnsafeBytes { raw in
            var shallow = ThriftCompactReader(raw, maxDepth: 2)
            #expect(throws: ThriftError.self) { try shallow.skip(.struct) }
            var enough = ThriftCompactReader(raw, maxDepth: 3)
            #expect(throws: Never.self) { try enough.skip(.struct) }
        }
    }

    @Test func errorDescriptionNamesOffset() {
        let error = Thrift.error([0x18, 0x10, 0x61], .compact) { r in try r.skip(.struct) }
        #expect(error?.description == "binary length 16 exceeds the 1 bytes left at offset 2")
    }
}
