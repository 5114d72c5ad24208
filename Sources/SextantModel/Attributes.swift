/// An OTLP `AnyValue` (common.proto): the typed value of an attribute or a log body.
public enum AnyValue: Sendable, Equatable {
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case array([AnyValue])
    case kvlist([KeyValue])
    /// A present but empty value (`AnyValue{}` on the wire).
    case empty

    /// A human-readable rendering used by the debug exporter and string matching.
    public var asString: String {
        switch self {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bytes(let b): return Base64.encode(b)
        case .array(let a): return "[" + a.map(\.asString).joined(separator: ",") + "]"
        case .kvlist(let kv): return "{" + kv.map { "\($0.key):\($0.value.asString)" }.joined(separator: ",") + "}"
        case .empty: return ""
        }
    }

    /// An approximate in-memory size in bytes, for size-bounded stores.
    public var approximateSize: Int {
        switch self {
        case .string(let s): return s.utf8.count
        case .bool: return 1
        case .int, .double: return 8
        case .bytes(let b): return b.count
        case .array(let a): return a.reduce(0) { $0 + $1.approximateSize }
        case .kvlist(let kv): return kv.reduce(0) { $0 + $1.key.utf8.count + $1.value.approximateSize }
        case .empty: return 0
        }
    }
}

/// One attribute: a key and its typed value (OTLP `KeyValue`). Attribute lists keep their wire order.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: AnyValue

    public init(_ key: String, _ value: AnyValue) {
        self.key = key
        self.value = value
    }
}

extension Array where Element == KeyValue {
    /// The value of the first attribute with `key`.
    public subscript(key key: String) -> AnyValue? {
        for kv in self where kv.key == key { return kv.value }
        return nil
    }

    /// Sets `key` to `value`, replacing an existing attribute in place or appending. Keys are
    /// compared by length first, which rules out most of them without comparing text.
    public mutating func set(_ key: String, _ value: AnyValue) {
        let n = key.utf8.count
        if let i = firstIndex(where: { $0.key.utf8.count == n && $0.key == key }) {
            self[i].value = value
        } else {
            append(KeyValue(key, value))
        }
    }
}

/// The resource that produced telemetry (OTLP `Resource`).
public struct Resource: Sendable, Equatable {
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32

    public init(attributes: [KeyValue] = [], droppedAttributesCount: UInt32 = 0) {
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }

    /// `service.name`, when set as a string.
    public var serviceName: String? {
        if case .string(let s)? = attributes[key: "service.name"] { return s }
        return nil
    }
}

/// The instrumentation scope (OTLP `InstrumentationScope`).
public struct InstrumentationScope: Sendable, Equatable {
    public var name: String
    public var version: String
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32

    public init(name: String = "", version: String = "", attributes: [KeyValue] = [], droppedAttributesCount: UInt32 = 0) {
        self.name = name
        self.version = version
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

/// RFC 4648 base64, used where OTLP/JSON and debug output render bytes.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64, padded or not; `nil` on invalid input.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var out = [UInt8]()
        var acc: UInt32 = 0
        var bits = 0
        var sawPad = false
        for c in text.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="): sawPad = true; continue
            default: return nil
            }
            if sawPad { return nil }
            acc = acc << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        if bits >= 6 { return nil }
        return out
    }
}
