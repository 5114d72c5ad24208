import SextantThrift

/// Any Thrift value as a tree, so tests can write and read arbitrary shapes through the protocol
/// API without generated code.
indirect enum ThriftValue: Equatable, Sendable {
    case bool(Bool)
    case byte(Int8)
    case i16(Int16)
    case i32(Int32)
    case i64(Int64)
    case double(Double)
    case binary([UInt8])
    case uuid([UInt8])
    case structure([ThriftField])
    case list(ThriftType, [ThriftValue])
    case set(ThriftType, [ThriftValue])
    case map(ThriftType, ThriftType, [ThriftPair])

    var type: ThriftType {
        switch self {
        case .bool: return .bool
        case .byte: return .byte
        case .i16: return .i16
        case .i32: return .i32
        case .i64: return .i64
        case .double: return .double
        case .binary: return .binary
        case .uuid: return .uuid
        case .structure: return .struct
        case .list: return .list
        case .set: return .set
        case .map: return .map
        }
    }

    func write<W: ThriftWriter>(_ w: inout W) {
        switch self {
        case .bool(let v): w.writeBool(v)
        case .byte(let v): w.writeByte(v)
        case .i16(let v): w.writeI16(v)
        case .i32(let v): w.writeI32(v)
        case .i64(let v): w.writeI64(v)
        case .double(let v): w.writeDouble(v)
        case .binary(let v): w.writeBinary(v)
        case .uuid(let v): w.writeUUID(v)
        case .structure(let fields):
            w.writeStructBegin()
            for field in fields {
                w.writeFieldBegin(field.value.type, id: field.id)
                field.value.write(&w)
                w.writeFieldEnd()
            }
            w.writeFieldStop()
            w.writeStructEnd()
        case .list(let type, let items):
            w.writeListBegin(type, count: items.count)
            for item in items { item.write(&w) }
            w.writeListEnd()
        case .set(let type, let items):
            w.writeSetBegin(type, count: items.count)
            for item in items { item.write(&w) }
            w.writeSetEnd()
        case .map(let k, let v, let pairs):
            w.writeMapBegin(keyType: k, valueType: v, count: pairs.count)
            for pair in pairs {
                pair.key.write(&w)
                pair.value.write(&w)
            }
            w.writeMapEnd()
        }
    }

    static func read<R: ThriftReader>(_ type: ThriftType, _ r: inout R) throws -> ThriftValue {
        switch type {
        case .stop: throw r.error(.invalidType, "stop is not a value")
        case .bool: return .bool(try r.readBool())
        case .byte: return .byte(try r.readByte())
        case .i16: return .i16(try r.readI16())
        case .i32: return .i32(try r.readI32())
        case .i64: return .i64(try r.readI64())
        case .double: return .double(try r.readDouble())
        case .binary: return .binary(try r.readBinary())
        case .uuid: return .uuid(try r.readUUID())
        case .struct:
            try r.readStructBegin()
            var fields: [ThriftField] = []
            while let header = try r.readFieldBegin() {
                fields.append(ThriftField(header.id, try read(header.type, &r)))
                r.readFieldEnd()
            }
            r.readStructEnd()
            return .structure(fields)
        case .list:
            let header = try r.readListBegin()
            var items: [ThriftValue] = []
            for _ in 0..<header.count { items.append(try read(header.elementType, &r)) }
            r.readListEnd()
            return .list(header.elementType, items)
        case .set:
            let header = try r.readSetBegin()
            var items: [ThriftValue] = []
            for _ in 0..<header.count { items.append(try read(header.elementType, &r)) }
            r.readSetEnd()
            return .set(header.elementType, items)
        case .map:
            let header = try r.readMapBegin()
            var pairs: [ThriftPair] = []
            for _ in 0..<header.count { pairs.append(ThriftPair(try read(header.keyType, &r), try read(header.valueType, &r))) }
            r.readMapEnd()
            return .map(header.keyType, header.valueType, pairs)
        }
    }

    /// The value as the compact protocol reads it back: an empty map there carries no types.
    var compactNormalized: ThriftValue {
        switch self {
        case .structure(let fields): return .structure(fields.map { ThriftField($0.id, $0.value.compactNormalized) })
        case .list(let t, let items): return .list(t, items.map(\.compactNormalized))
        case .set(let t, let items): return .set(t, items.map(\.compactNormalized))
        case .map(let k, let v, let pairs):
            if pairs.isEmpty { return .map(.stop, .stop, []) }
            return .map(k, v, pairs.map { ThriftPair($0.key.compactNormalized, $0.value.compactNormalized) })
        default: return self
        }
    }
}

struct ThriftField: Equatable, Sendable {
    var id: Int16
    var value: ThriftValue
    init(_ id: Int16, _ value: ThriftValue) {
        self.id = id
        self.value = value
    }
}

struct ThriftPair: Equatable, Sendable {
    var key: ThriftValue
    var value: ThriftValue
    init(_ key: ThriftValue, _ value: ThriftValue) {
        self.key = key
        self.value = value
    }
}

/// Protocol-generic helpers so each test runs against both protocols.
enum Thrift {
    static func encode(_ kind: ThriftProtocolKind, _ body: (inout any ThriftWriter) -> Void) -> [UInt8] {
        var w: any ThriftWriter = kind == .binary ? ThriftBinaryWriter() : ThriftCompactWriter()
        body(&w)
        return w.bytes
    }

    static func encode(_ value: ThriftValue, _ kind: ThriftProtocolKind, message: ThriftMessageHeader? = nil) -> [UInt8] {
        switch kind {
        case .binary:
            var w = ThriftBinaryWriter()
            if let message { w.writeMessageBegin(message) }
            value.write(&w)
            return w.bytes
        case .compact:
            var w = ThriftCompactWriter()
            if let message { w.writeMessageBegin(message) }
            value.write(&w)
            return w.bytes
        }
    }

    /// Runs `body` with a reader of `kind` over `bytes`, and returns its result and the bytes left.
    static func read<T>(_ bytes: [UInt8], _ kind: ThriftProtocolKind, _ body: (inout any ThriftReader) throws -> T) throws -> (T, Int) {
        try bytes.withUnsafeBytes { raw in
            var r: any ThriftReader = kind == .binary ? ThriftBinaryReader(raw) : ThriftCompactReader(raw)
            let value = try body(&r)
            return (value, r.remaining)
        }
    }

    static func decode(_ bytes: [UInt8], _ kind: ThriftProtocolKind, as type: ThriftType) throws -> ThriftValue {
        let (value, remaining) = try read(bytes, kind) { r in try ThriftValue.read(type, &r) }
        guard remaining == 0 else { throw ThriftError(.trailingBytes, "\(remaining) bytes left", offset: bytes.count - remaining) }
        return value
    }

    /// The error `body` throws, or `nil`.
    static func error<T>(_ bytes: [UInt8], _ kind: ThriftProtocolKind, _ body: (inout any ThriftReader) throws -> T) -> ThriftError? {
        do {
            _ = try read(bytes, kind, body)
            return nil
        } catch let error as ThriftError {
            return error
        } catch {
            return nil
        }
    }
}
