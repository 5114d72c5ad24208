import SextantModel
import SextantOTLP

/// A JSON document under construction: nested objects whose keys are written sorted, so the same
/// input always gives the same bytes (golden-testable).
public struct ECSDocument: Sendable, Equatable {
    /// A JSON value.
    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case int(Int64)
        case double(Double)
        case bool(Bool)
        case array([Value])
        case object(ECSDocument)
        case null
    }

    /// One member of an object.
    public struct Field: Sendable, Equatable {
        public var key: String
        public var value: Value
    }

    /// The members, kept sorted by key. Documents have a few dozen keys at most, so a sorted array
    /// (no hashing, written in order as is) beats a dictionary.
    public private(set) var fields: [Field] = []

    public init() {}

    public var keys: [String] { fields.map(\.key) }

    /// Where `key` is, or where it would go.
    private func position(of key: String) -> (index: Int, found: Bool) {
        for (i, f) in fields.enumerated() {
            if f.key == key { return (i, true) }
            if key < f.key { return (i, false) }
        }
        return (fields.count, false)
    }

    public subscript(key: String) -> Value? {
        get {
            let p = position(of: key)
            return p.found ? fields[p.index].value : nil
        }
        set {
            let p = position(of: key)
            switch (p.found, newValue) {
            case (true, let v?): fields[p.index].value = v
            case (true, nil): fields.remove(at: p.index)
            case (false, let v?): fields.insert(Field(key: key, value: v), at: p.index)
            case (false, nil): break
            }
        }
    }

    /// Sets the value at a dotted path (`http.request.method`), creating objects on the way. A path
    /// running through a non-object value replaces nothing and returns `false`.
    @discardableResult
    public mutating func set(_ path: String, _ value: Value) -> Bool { set(path[...], value) }

    private mutating func set(_ path: Substring, _ value: Value) -> Bool {
        guard let dot = path.utf8.firstIndex(of: UInt8(ascii: ".")) else {
            let p = position(of: String(path))
            if p.found {
                if case .object = fields[p.index].value { return false }
                fields[p.index].value = value
            } else {
                fields.insert(Field(key: String(path), value: value), at: p.index)
            }
            return true
        }
        let key = String(path[..<dot])
        let p = position(of: key)
        var child = ECSDocument()
        if p.found {
            guard case .object(let o) = fields[p.index].value else { return false }
            child = o
            // Moved out while it is edited, so the nested storage stays uniquely referenced.
            fields[p.index].value = .null
        }
        let ok = child.set(path[path.utf8.index(after: dot)...], value)
        if p.found {
            fields[p.index].value = .object(child)
        } else if ok {
            fields.insert(Field(key: key, value: .object(child)), at: p.index)
        }
        return ok
    }

    /// The value at a dotted path.
    public func value(at path: String) -> Value? {
        var doc = self
        let parts = path.split(separator: ".")
        for (i, p) in parts.enumerated() {
            guard let v = doc[String(p)] else { return nil }
            if i == parts.count - 1 { return v }
            guard case .object(let o) = v else { return nil }
            doc = o
        }
        return nil
    }

    /// Compact JSON, keys in order (`String` order: byte order for ASCII keys).
    public func json() -> [UInt8] {
        JSONWriter.document(estimatedSize: 512) { w in write(&w) }
    }

    /// Writes the document into an open writer.
    public func write(_ w: inout JSONWriter) {
        w.beginObject()
        for f in fields {
            w.dynamicKey(f.key)
            Self.write(f.value, &w)
        }
        w.endObject()
    }

    private static func write(_ v: Value, _ w: inout JSONWriter) {
        switch v {
        case .string(let s): w.string(s)
        case .int(let i): w.number(i)
        case .double(let d):
            // JSON has no NaN/Infinity: ECS documents carry them as null.
            if d.isFinite { w.double(d) } else { w.raw("null") }
        case .bool(let b): w.bool(b)
        case .null: w.raw("null")
        case .object(let o): o.write(&w)
        case .array(let a):
            w.beginArray()
            // Elasticsearch indexes a null array element as missing; it is left out (the writer has no
            // bare `null` element either).
            for e in a where !e.isNullInJSON {
                w.element()
                write(e, &w)
            }
            w.endArray()
        }
    }
}

extension ECSDocument.Value {
    var isNullInJSON: Bool {
        switch self {
        case .null: return true
        case .double(let d): return !d.isFinite
        default: return false
        }
    }

    /// An OTLP `AnyValue` as JSON: byte strings as base64, key-value lists as objects.
    public init(_ v: AnyValue) {
        switch v {
        case .string(let s): self = .string(s)
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .bytes(let b): self = .string(Base64.encode(b))
        case .array(let a): self = .array(a.map { ECSDocument.Value($0) })
        case .kvlist(let kv):
            var o = ECSDocument()
            for e in kv { o[e.key] = ECSDocument.Value(e.value) }
            self = .object(o)
        case .empty: self = .null
        }
    }
}

extension JSONWriter {
    /// Writes `"name":` for a key known only at run time (attribute names).
    mutating func dynamicKey(_ name: String) {
        element()
        string(name)
        raw(":")
    }
}
