/// Where a configuration value came from: `file:line:column`, 1-based.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A parsed YAML value with its source position, independent of the YAML library.
///
/// Configuration is kept as this tree (rather than decoded straight into types) so that every
/// error — including unknown keys — can be reported with its exact position, all at once.
public struct ConfigNode: Sendable {
    /// One `key: value` pair of a mapping, in document order.
    public struct Entry: Sendable {
        public var key: String
        public var keyLocation: SourceLocation
        public var value: ConfigNode

        public init(key: String, keyLocation: SourceLocation, value: ConfigNode) {
            self.key = key
            self.keyLocation = keyLocation
            self.value = value
        }
    }

    public indirect enum Value: Sendable {
        /// A scalar and whether it was quoted (quoted scalars are always strings).
        case scalar(String, quoted: Bool)
        case mapping([Entry])
        case sequence([ConfigNode])
        case null
    }

    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }

    /// An empty mapping at `location`, used where an optional section is absent.
    public static func emptyMapping(at location: SourceLocation) -> ConfigNode { ConfigNode(.mapping([]), at: location) }

    public var isNull: Bool {
        if case .null = value { return true }
        return false
    }

    /// The entries when this node is a mapping (null counts as an empty mapping).
    public var entries: [Entry]? {
        switch value {
        case .mapping(let e): return e
        case .null: return []
        default: return nil
        }
    }

    /// The entry for `key` when this node is a mapping.
    public subscript(key: String) -> ConfigNode? {
        entries?.first { $0.key == key }?.value
    }

    /// A short word for the node's kind, used in error messages.
    public var kindName: String {
        switch value {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a sequence"
        case .null: return "null"
        }
    }

    /// Deep merge as the OpenTelemetry Collector merges several `--config` files: mappings merge key by
    /// key (later wins), anything else is replaced by the later value.
    public func merged(with later: ConfigNode) -> ConfigNode {
        guard case .mapping(var mine) = value, case .mapping(let theirs) = later.value else { return later }
        for entry in theirs {
            if let i = mine.firstIndex(where: { $0.key == entry.key }) {
                mine[i] = Entry(key: entry.key, keyLocation: entry.keyLocation, value: mine[i].value.merged(with: entry.value))
            } else {
                mine.append(entry)
            }
        }
        return ConfigNode(.mapping(mine), at: location)
    }
}
