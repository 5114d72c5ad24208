/// Hand-assembles protobuf wire bytes for tests, including forms our encoder never writes
/// (unpacked repeated fields, unknown fields, malformed data).
enum PB {
    static func varint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var x = v
        while x >= 0x80 {
            out.append(UInt8(x & 0x7F) | 0x80)
            x >>= 7
        }
        out.append(UInt8(x))
        return out
    }

    static func tag(_ field: UInt64, _ wireType: UInt64) -> [UInt8] { varint(field << 3 | wireType) }

    /// A length-delimited field (message, string, bytes, packed).
    static func len(_ field: UInt64, _ payload: [UInt8]) -> [UInt8] {
        tag(field, 2) + varint(UInt64(payload.count)) + payload
    }

    static func string(_ field: UInt64, _ s: String) -> [UInt8] { len(field, Array(s.utf8)) }

    static func varintField(_ field: UInt64, _ v: UInt64) -> [UInt8] { tag(field, 0) + varint(v) }

    static func fixed64(_ field: UInt64, _ v: UInt64) -> [UInt8] {
        tag(field, 1) + (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }

    static func fixed32(_ field: UInt64, _ v: UInt32) -> [UInt8] {
        tag(field, 5) + (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }

    static func bytes(_ count: Int, fill: UInt8 = 0xAB) -> [UInt8] { [UInt8](repeating: fill, count: count) }

    /// A span with the given ID payloads and a name.
    static func span(traceID: [UInt8], spanID: [UInt8], parent: [UInt8]? = nil, name: String = "s", extra: [UInt8] = []) -> [UInt8] {
        var out = len(1, traceID) + len(2, spanID)
        if let parent { out += len(4, parent) }
        return out + string(5, name) + extra
    }

    /// An `ExportTraceServiceRequest` with one resource and one scope holding `spans`.
    static func traces(_ spans: [[UInt8]]) -> [UInt8] {
        len(1, len(2, spans.flatMap { len(2, $0) }))
    }
}
