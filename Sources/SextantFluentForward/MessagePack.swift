/// A decoded MessagePack value (msgpack spec, "Type system": Nil, Boolean, Integer, Float, String,
/// Binary, Array, Map, Extension).
public enum MessagePackValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Signed integers and unsigned ones up to `Int64.max`.
    case int(Int64)
    /// Unsigned integers above `Int64.max` only.
    case uint(UInt64)
    /// float 32 and float 64, widened.
    case float(Double)
    case string(String)
    case binary([UInt8])
    case array([MessagePackValue])
    /// Map entries in wire order (keys may repeat; msgpack does not forbid it).
    case map([MessagePackPair])
    case ext(type: Int8, data: [UInt8])

    /// The string, or the bytes of a binary decoded as UTF-8 (Forward clients use both for text).
    public var text: String? {
        switch self {
        case .string(let s): return s
        case .binary(let b): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The raw bytes of a string or binary.
    public var bytes: [UInt8]? {
        switch self {
        case .string(let s): return Array(s.utf8)
        case .binary(let b): return b
        default: return nil
        }
    }

    /// The value under a string key of a map.
    public subscript(key: String) -> MessagePackValue? {
        guard case .map(let pairs) = self else { return nil }
        for p in pairs where p.key.text == key { return p.value }
        return nil
    }
}

/// One key/value entry of a msgpack map.
public struct MessagePackPair: Sendable, Equatable {
    public var key: MessagePackValue
    public var value: MessagePackValue
    public init(_ key: MessagePackValue, _ value: MessagePackValue) {
        self.key = key
        self.value = value
    }
}

/// Why MessagePack (or a Forward frame inside it) could not be decoded, with the byte offset.
public struct MessagePackError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The bytes end inside a value.
        case truncated
        /// A length claims more bytes than remain.
        case lengthPastEnd
        /// 0xc1 ("never used").
        case invalidByte
        /// Containers nested deeper than the limit.
        case tooDeep
        /// Well-formed msgpack of the wrong shape for the protocol.
        case unexpectedType
        /// A frame larger than the configured limit.
        case tooLarge
    }

    public var kind: Kind
    public var offset: Int
    public var message: String

    public init(_ kind: Kind, at offset: Int, _ message: String) {
        self.kind = kind
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) (at byte \(offset))" }
}

/// Format bytes (msgpack spec, "Formats" / "Overview").
enum MessagePackFormat {
    static let null: UInt8 = 0xc0
    static let `false`: UInt8 = 0xc2
    static let `true`: UInt8 = 0xc3
    static let bin8: UInt8 = 0xc4, bin16: UInt8 = 0xc5, bin32: UInt8 = 0xc6
    static let ext8: UInt8 = 0xc7, ext16: UInt8 = 0xc8, ext32: UInt8 = 0xc9
    static let float32: UInt8 = 0xca, float64: UInt8 = 0xcb
    static let uint8: UInt8 = 0xcc, uint16: UInt8 = 0xcd, uint32: UInt8 = 0xce, uint64: UInt8 = 0xcf
    static let int8: UInt8 = 0xd0, int16: UInt8 = 0xd1, int32: UInt8 = 0xd2, int64: UInt8 = 0xd3
    static let fixext1: UInt8 = 0xd4, fixext2: UInt8 = 0xd5, fixext4: UInt8 = 0xd6, fixext8: UInt8 = 0xd7, fixext16: UInt8 = 0xd8
    static let str8: UInt8 = 0xd9, str16: UInt8 = 0xda, str32: UInt8 = 0xdb
    static let array16: UInt8 = 0xdc, array32: UInt8 = 0xdd
    static let map16: UInt8 = 0xde, map32: UInt8 = 0xdf
}
