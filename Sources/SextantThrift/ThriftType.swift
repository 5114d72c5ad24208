/// The two Thrift wire protocols Sextant speaks.
public enum ThriftProtocolKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// TBinaryProtocol (thrift/doc/specs/thrift-binary-protocol.md): fixed-width big-endian integers.
    case binary
    /// TCompactProtocol (thrift/doc/specs/thrift-compact-protocol.md): varints, field-id deltas.
    case compact

    public var description: String { rawValue }
}

/// A Thrift value type. The raw values are the binary protocol's type codes ("Struct encoding");
/// the compact protocol maps them to its own codes on the wire.
public enum ThriftType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Ends a struct's field list; never a value type.
    case stop = 0
    case bool = 2
    /// `i8` / `byte`.
    case byte = 3
    case double = 4
    case i16 = 6
    case i32 = 8
    case i64 = 10
    /// `binary` and `string` share one wire type.
    case binary = 11
    case `struct` = 12
    case map = 13
    case set = 14
    case list = 15
    case uuid = 16

    public var description: String {
        switch self {
        case .stop: return "stop"
        case .bool: return "bool"
        case .byte: return "byte"
        case .double: return "double"
        case .i16: return "i16"
        case .i32: return "i32"
        case .i64: return "i64"
        case .binary: return "binary"
        case .struct: return "struct"
        case .map: return "map"
        case .set: return "set"
        case .list: return "list"
        case .uuid: return "uuid"
        }
    }
}

/// The kind of an RPC message (both specs, "Message").
public enum ThriftMessageType: UInt8, Sendable, Hashable, CustomStringConvertible {
    case call = 1
    case reply = 2
    case exception = 3
    case oneway = 4

    public var description: String {
        switch self {
        case .call: return "call"
        case .reply: return "reply"
        case .exception: return "exception"
        case .oneway: return "oneway"
        }
    }
}

/// The header of an RPC message: method name, kind and sequence id.
public struct ThriftMessageHeader: Sendable, Hashable {
    public var name: String
    public var type: ThriftMessageType
    public var seqID: Int32

    public init(name: String, type: ThriftMessageType, seqID: Int32) {
        self.name = name
        self.type = type
        self.seqID = seqID
    }
}

/// The header of one struct field.
public struct ThriftFieldHeader: Sendable, Hashable {
    public var type: ThriftType
    public var id: Int16

    public init(type: ThriftType, id: Int16) {
        self.type = type
        self.id = id
    }
}

/// The header of a list or set: element type and count.
public struct ThriftListHeader: Sendable, Hashable {
    public var elementType: ThriftType
    public var count: Int

    public init(elementType: ThriftType, count: Int) {
        self.elementType = elementType
        self.count = count
    }
}

/// The header of a map: key and value types and the number of pairs.
public struct ThriftMapHeader: Sendable, Hashable {
    public var keyType: ThriftType
    public var valueType: ThriftType
    public var count: Int

    public init(keyType: ThriftType, valueType: ThriftType, count: Int) {
        self.keyType = keyType
        self.valueType = valueType
        self.count = count
    }
}
