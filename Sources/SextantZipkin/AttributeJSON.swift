import SextantModel
import SextantOTLP

/// Attributes as a JSON object inside a tag or annotation value (the collector packs event and
/// link attributes this way; Zipkin itself has no typed attributes).
enum AttributeJSON {
    /// `{"k":v,...}` with keys sorted, as Go's `json.Marshal` of a map writes them.
    static func objectText(_ attributes: [KeyValue]) -> String {
        String(decoding: JSONWriter.document(estimatedSize: 64) { writeObject(attributes, to: &$0) }, as: UTF8.self)
    }

    static func valueText(_ value: AnyValue) -> String {
        String(decoding: JSONWriter.document(estimatedSize: 64) { write(value, to: &$0) }, as: UTF8.self)
    }

    private static func writeObject(_ attributes: [KeyValue], to w: inout JSONWriter) {
        w.beginObject()
        for kv in attributes.sorted(by: { $0.key < $1.key }) {
            w.dynamicKey(kv.key)
            write(kv.value, to: &w)
        }
        w.endObject()
    }

    private static func write(_ value: AnyValue, to w: inout JSONWriter) {
        switch value {
        case .string(let s): w.string(s)
        case .bool(let b): w.bool(b)
        case .int(let i): w.number(i)
        case .double(let d): w.double(d)
        case .bytes(let b): w.string(Base64.encode(b))
        case .array(let a):
            w.beginArray()
            for v in a {
                w.element()
                write(v, to: &w)
            }
            w.endArray()
        case .kvlist(let kv): writeObject(kv, to: &w)
        case .empty: w.raw("null")
        }
    }

    /// The members of a JSON object as attributes: strings, booleans, integers (when the number has
    /// no fraction or exponent and fits in 64 bits), doubles, arrays and objects; `null` members are
    /// left out. `nil` when the text is not a single JSON object.
    static func parseObject(_ text: some StringProtocol) -> [KeyValue]? {
        var text = String(text)
        return text.withUTF8 { utf8 -> [KeyValue]? in
            var r = JSONReader(UnsafeRawBufferPointer(utf8))
            guard r.peek() == UInt8(ascii: "{"),
                case .kvlist(let members)? = try? value(&r),
                (try? r.finish()) != nil
            else { return nil }
            return members
        }
    }

    private static func value(_ r: inout JSONReader) throws(OTLPDecodingError) -> AnyValue? {
        switch r.peek() {
        case UInt8(ascii: "{"):
            var members: [KeyValue] = []
            var object = try r.beginObject()
            while let key = try r.nextKey(&object) {
                if let v = try value(&r) { members.append(KeyValue(key.text, v)) }
            }
            return .kvlist(members)
        case UInt8(ascii: "["):
            var elements: [AnyValue] = []
            var array = try r.beginArray()
            while try r.nextElement(&array) {
                elements.append(try value(&r) ?? .empty)
            }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(try r.readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try r.readBool())
        case UInt8(ascii: "n"):
            _ = try r.consumeNull()
            return nil
        default:
            let token = try r.readNumberToken()
            let text = String(decoding: UnsafeBufferPointer(start: token.start, count: token.count), as: UTF8.self)
            if token.isInteger, let i = Int64(text) { return .int(i) }
            return Double(text).map { .double($0) }
        }
    }
}
