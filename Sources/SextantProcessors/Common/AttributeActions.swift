import SextantModel
import SextantPipeline

/// One entry of an `actions:` list, as the OTel Collector's `attraction` package defines it
/// (shared by the `attributes` and `resource` processors). Actions run in order.
struct AttributeAction: Sendable {
    enum Kind: String, Sendable {
        case insert, update, upsert, delete, hash, extract, convert
    }

    enum Source: Sendable {
        case value(AnyValue)
        case attribute(String)
    }

    var kind: Kind
    var key: String?
    /// For `delete` and `hash`: keys matching this pattern, in addition to `key`.
    var keyPattern: CompiledRegex?
    var source: Source?
    /// For `extract`: a pattern whose named groups become attributes.
    var extract: CompiledRegex?
    var extractNames: [String] = []
    var convertTo: String?

    /// Reads `actions:`; reports every problem.
    static func parseList(_ r: inout ConfigReader, required: Bool = true) -> [AttributeAction] {
        guard let node = r.raw("actions") else {
            if required { r.error(nil, "\(r.path)::actions is required and must list at least one action") }
            return []
        }
        guard case .sequence(let items) = node.value, !items.isEmpty else {
            r.error("actions", "\(r.qualified("actions")) must be a non-empty list of actions")
            return []
        }
        return items.enumerated().compactMap { i, item in
            var a = ConfigReader(item, path: "\(r.qualified("actions"))[\(i)]", diagnostics: r.diagnostics)
            defer { a.finish() }
            return parse(&a)
        }
    }

    static func parse(_ a: inout ConfigReader) -> AttributeAction? {
        let kindText = a.choice("action", Kind.allRaw, default: "")
        guard let kind = Kind(rawValue: kindText) else {
            if !a.keys.contains("action") { a.error(nil, "\(a.path): 'action' is required (\(Kind.allRaw.joined(separator: ", ")))") }
            return nil
        }
        var action = AttributeAction(kind: kind)
        action.key = a.optionalString("key")
        if let p = a.optionalString("pattern") {
            do {
                let regex = try CompiledRegex(p)
                if kind == .extract {
                    action.extract = regex
                    action.extractNames = NamedGroups.names(in: p)
                    if action.extractNames.isEmpty { a.error("pattern", "\(a.qualified("pattern")): an extract pattern needs named groups, e.g. ^/api/(?P<version>v\\d+)/") }
                } else if kind == .delete || kind == .hash {
                    action.keyPattern = regex
                } else {
                    a.error("pattern", "\(a.qualified("pattern")) is only valid for delete, hash and extract")
                }
            } catch {
                a.error("pattern", "\(a.qualified("pattern")): invalid regular expression: \(error)")
            }
        }
        if let v = a.raw("value") {
            guard case .scalar(let s, let quoted) = v.value else {
                a.error("value", "\(a.qualified("value")) must be a scalar")
                return nil
            }
            action.source = .value(Self.typed(s, quoted: quoted))
        }
        if let from = a.optionalString("from_attribute") { action.source = .attribute(from) }
        if a.has("from_context") { a.error("from_context", "\(a.qualified("from_context")) is not supported (no request context is carried)") }
        if kind == .convert {
            action.convertTo = a.choice("converted_type", ["int", "double", "string"], default: "")
            if action.convertTo == "" { a.error(nil, "\(a.path): convert needs converted_type (int, double or string)") }
        }
        switch kind {
        case .insert, .update, .upsert:
            if action.key == nil { a.error(nil, "\(a.path): \(kind.rawValue) needs a key") }
            if action.source == nil { a.error(nil, "\(a.path): \(kind.rawValue) needs value or from_attribute") }
        case .delete, .hash:
            if action.key == nil && action.keyPattern == nil { a.error(nil, "\(a.path): \(kind.rawValue) needs key or pattern") }
        case .extract:
            if action.key == nil { a.error(nil, "\(a.path): extract needs the key of the attribute to read") }
            if action.extract == nil && !a.keys.contains("pattern") { a.error(nil, "\(a.path): extract needs a pattern") }
        case .convert:
            if action.key == nil { a.error(nil, "\(a.path): convert needs a key") }
        }
        return action
    }

    /// YAML plain scalars keep their type (`5` is an int, `true` a bool), as the OTel config does.
    static func typed(_ s: String, quoted: Bool) -> AnyValue {
        if quoted { return .string(s) }
        if let i = Int64(s) { return .int(i) }
        if let d = Double(s), s.contains(".") || s.contains("e") || s.contains("E") { return .double(d) }
        if s == "true" { return .bool(true) }
        if s == "false" { return .bool(false) }
        return .string(s)
    }

    /// Applies the action to an attribute list.
    func apply(to attrs: inout [KeyValue]) {
        switch kind {
        case .insert:
            guard let key, attrs[key: key] == nil, let v = resolve(attrs) else { return }
            attrs.append(KeyValue(key, v))
        case .update:
            guard let key, let i = attrs.firstIndex(where: { $0.key == key }), let v = resolve(attrs) else { return }
            attrs[i].value = v
        case .upsert:
            guard let key, let v = resolve(attrs) else { return }
            attrs.set(key, v)
        case .delete:
            attrs.removeAll { kv in kv.key == key || (keyPattern?.whole(kv.key) ?? false) }
        case .hash:
            for i in attrs.indices where attrs[i].key == key || (keyPattern?.whole(attrs[i].key) ?? false) {
                attrs[i].value = .string(SHA1.hex(Array(attrs[i].value.asString.utf8)))
            }
        case .extract:
            guard let key, case .string(let s)? = attrs[key: key], let regex = extract,
                let match = regex.firstMatch(s)
            else { return }
            for name in extractNames {
                if let sub = match.output[name]?.substring { attrs.set(name, .string(String(sub))) }
            }
        case .convert:
            guard let key, let i = attrs.firstIndex(where: { $0.key == key }) else { return }
            let text = attrs[i].value.asString
            switch convertTo {
            case "int":
                if let v = Int64(text) ?? Double(text).map({ Int64($0) }) { attrs[i].value = .int(v) }
            case "double":
                if let v = Double(text) { attrs[i].value = .double(v) }
            default:
                attrs[i].value = .string(text)
            }
        }
    }

    private func resolve(_ attrs: [KeyValue]) -> AnyValue? {
        switch source {
        case .value(let v)?: return v
        case .attribute(let from)?: return attrs[key: from]
        case nil: return nil
        }
    }
}

extension AttributeAction.Kind {
    static let allRaw = ["insert", "update", "upsert", "delete", "hash", "extract", "convert"]
}

/// Names of `(?P<name>...)` / `(?<name>...)` groups in a pattern, in order.
enum NamedGroups {
    static func names(in pattern: String) -> [String] {
        var out: [String] = []
        let chars = Array(pattern)
        var i = 0
        while i + 2 < chars.count {
            if chars[i] == "(" && chars[i + 1] == "?" {
                var j = i + 2
                if j < chars.count && chars[j] == "P" { j += 1 }
                if j < chars.count && chars[j] == "<" && j + 1 < chars.count && chars[j + 1] != "=" && chars[j + 1] != "!" {
                    var name = ""
                    j += 1
                    while j < chars.count && chars[j] != ">" {
                        name.append(chars[j])
                        j += 1
                    }
                    if !name.isEmpty { out.append(name) }
                }
            }
            i += 1
        }
        return out
    }
}
