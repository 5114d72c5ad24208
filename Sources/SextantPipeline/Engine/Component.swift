import Logging
import SextantModel

/// The role a component plays in a pipeline.
public enum ComponentKind: String, Sendable, Hashable, CaseIterable {
    case receiver
    case processor
    case exporter
    case connector
    case `extension`

    /// The top-level config section that defines components of this kind.
    public var section: String {
        switch self {
        case .receiver: return "receivers"
        case .processor: return "processors"
        case .exporter: return "exporters"
        case .connector: return "connectors"
        case .extension: return "extensions"
        }
    }
}

/// A component identifier, `type[/name]` (e.g. `otlp`, `batch/small`).
public struct ComponentID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var type: String
    public var name: String

    public init(type: String, name: String = "") {
        self.type = type
        self.name = name
    }

    /// Parses `type[/name]`; `nil` when the type is empty or has characters outside `[A-Za-z0-9_.-]`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let type = String(parts[0]).trimmingSpaces
        let name = parts.count > 1 ? String(parts[1]).trimmingSpaces : ""
        let valid: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
        guard !type.isEmpty, type.allSatisfy(valid) else { return nil }
        if parts.count > 1 && (name.isEmpty || !name.allSatisfy({ valid($0) || $0 == "/" })) { return nil }
        self.init(type: type, name: name)
    }

    public var description: String { name.isEmpty ? type : "\(type)/\(name)" }

    public static func < (a: ComponentID, b: ComponentID) -> Bool { a.description < b.description }
}

/// A pipeline identifier, `signal[/name]` (e.g. `traces`, `logs/access`).
public struct PipelineID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var signal: Signal
    public var name: String

    public init(_ signal: Signal, name: String = "") {
        self.signal = signal
        self.name = name
    }

    public var description: String { name.isEmpty ? signal.rawValue : "\(signal.rawValue)/\(name)" }

    public static func < (a: PipelineID, b: PipelineID) -> Bool { a.description < b.description }
}

/// A consumer of telemetry: the next hop of a receiver, processor or connector.
///
/// Telemetry batches are value types with copy-on-write storage, so a fan-out hands the same batch to
/// every consumer without copying; only a consumer that mutates its batch pays for a copy, and only
/// then (the OTel Collector's `MutatesData` capability, enforced by the type system).
public protocol Consumer: Sendable {
    func consume(_ telemetry: Telemetry) async throws

    /// Whether this consumer, or one after it, reads a trace batch's model (`TracesData.resourceSpans`)
    /// rather than passing the batch on or writing its OTLP protobuf encoding. A receiver keeps canonical
    /// OTLP trace requests as their bytes only when nothing downstream reads the model; otherwise checking
    /// the encoding would be work on top of the decoding that follows anyway. The default is `true`:
    /// a component says `false` only when it knows.
    var readsTraceModel: Bool { get }
}

extension Consumer {
    public var readsTraceModel: Bool { true }
}

/// Why a consumer did not take a batch. Receivers map these onto their protocol's status codes.
public struct ConsumerError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The data can never be accepted (e.g. the backend rejects it as malformed): drop, don't retry.
        case permanent
        /// A transient failure: the sender may retry, after `retryAfter` when known.
        case retryable
        /// The collector is over capacity (queue full, memory limit): the sender should back off.
        case overloaded
    }

    public var kind: Kind
    public var message: String
    public var retryAfter: Duration?

    public init(_ kind: Kind, _ message: String, retryAfter: Duration? = nil) {
        self.kind = kind
        self.message = message
        self.retryAfter = retryAfter
    }

    public static func permanent(_ message: String) -> ConsumerError { ConsumerError(.permanent, message) }
    public static func retryable(_ message: String, after: Duration? = nil) -> ConsumerError {
        ConsumerError(.retryable, message, retryAfter: after)
    }
    public static func overloaded(_ message: String) -> ConsumerError { ConsumerError(.overloaded, message) }

    public var description: String { message }

    /// Classifies any error: a `ConsumerError` keeps its kind, anything else is retryable.
    public static func classify(_ error: any Error) -> ConsumerError {
        if let e = error as? ConsumerError { return e }
        return .retryable(String(describing: error))
    }
}

/// A running piece of a pipeline. The engine starts components downstream-first and shuts them down
/// upstream-first, so that nothing is sent to a component that is not running.
public protocol Component: Sendable {
    /// Binds sockets, opens files, starts background tasks. Throws if the component cannot run.
    func start() async throws
    /// Stops taking new data and drains what is in flight. Called at most once, after `start`.
    func shutdown() async
}

/// A component that also consumes telemetry: processors, exporters, connectors.
public protocol ConsumingComponent: Component, Consumer {}

/// What the engine hands every component it creates.
public struct ComponentSettings: Sendable {
    public var id: ComponentID
    public var kind: ComponentKind
    public var logger: Logger
    public var telemetry: SelfTelemetry
    /// Whether the whole collector is up (extensions such as `health_check` report it).
    public var readiness: Readiness
    /// The running extensions, by ID (OTel's `host.GetExtensions()`): e.g. the `file_storage` an
    /// exporter's persistent queue lives in. Extensions are created before every other component.
    public var extensions: [ComponentID: any Component]
    /// Receivers: their `limits:` block. The engine already enforces `limits.telemetry` on what they
    /// emit; receivers apply `maxConnections` to their listeners.
    public var limits = ReceiverLimits()

    public init(
        id: ComponentID, kind: ComponentKind, logger: Logger, telemetry: SelfTelemetry, readiness: Readiness = Readiness(),
        extensions: [ComponentID: any Component] = [:]
    ) {
        self.id = id
        self.kind = kind
        self.logger = logger
        self.telemetry = telemetry
        self.readiness = readiness
        self.extensions = extensions
    }
}

/// A component's parsed configuration. Each factory parses its own and gets it back at creation.
public protocol ComponentConfig: Sendable {}

/// Common factory surface: a type name, the signals supported, and config parsing.
public protocol ComponentFactory: Sendable {
    var type: String { get }
    var kind: ComponentKind { get }
    /// One line for `sextant components`.
    var summary: String { get }
    /// Reads and validates the component's config, reporting problems through the reader.
    func parseConfig(_ reader: inout ConfigReader) -> any ComponentConfig
}

public protocol ReceiverFactory: ComponentFactory {
    var signals: Set<Signal> { get }
    /// One receiver instance serves every pipeline (and signal) that names it.
    func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
}

public protocol ProcessorFactory: ComponentFactory {
    var signals: Set<Signal> { get }
    /// Processors are created once per pipeline that lists them (as in the OTel Collector).
    func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
}

public protocol ExporterFactory: ComponentFactory {
    var signals: Set<Signal> { get }
    /// One exporter instance serves every pipeline that names it.
    func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
}

/// A connector route: consumed as an exporter of `from` pipelines, emitting into `to` pipelines.
public struct ConnectorRoute: Hashable, Sendable {
    public var from: Signal
    public var to: Signal
    public init(from: Signal, to: Signal) {
        self.from = from
        self.to = to
    }
}

public protocol ConnectorFactory: ComponentFactory {
    var routes: Set<ConnectorRoute> { get }
    /// One instance per connector ID; `outputs` holds the fan-out into each output signal's pipelines.
    func makeConnector(_ settings: ComponentSettings, config: any ComponentConfig, outputs: [Signal: any Consumer]) throws
        -> any ConsumingComponent
}

public protocol ExtensionFactory: ComponentFactory {
    func makeExtension(_ settings: ComponentSettings, config: any ComponentConfig) throws -> any Component
}

extension ComponentFactory {
    public var kind: ComponentKind {
        switch self {
        case is any ReceiverFactory: return .receiver
        case is any ProcessorFactory: return .processor
        case is any ExporterFactory: return .exporter
        case is any ConnectorFactory: return .connector
        default: return .extension
        }
    }
}

/// The set of component types a collector build knows.
public struct ComponentRegistry: Sendable {
    public private(set) var receivers: [String: any ReceiverFactory] = [:]
    public private(set) var processors: [String: any ProcessorFactory] = [:]
    public private(set) var exporters: [String: any ExporterFactory] = [:]
    public private(set) var connectors: [String: any ConnectorFactory] = [:]
    public private(set) var extensions: [String: any ExtensionFactory] = [:]
    /// Reads `service::telemetry::metrics::tls` (a `configtls` server block). The TLS types live in a module
    /// that depends on this one, so the collector's registry supplies the parser; without one the key is
    /// an error.
    public var telemetryTLSParser: (@Sendable (inout ConfigReader) -> (any Sendable)?)?

    public init() {}

    public mutating func register(_ f: any ReceiverFactory) { receivers[f.type] = f }
    public mutating func register(_ f: any ProcessorFactory) { processors[f.type] = f }
    public mutating func register(_ f: any ExporterFactory) { exporters[f.type] = f }
    public mutating func register(_ f: any ConnectorFactory) { connectors[f.type] = f }
    public mutating func register(_ f: any ExtensionFactory) { extensions[f.type] = f }

    func factory(_ kind: ComponentKind, _ type: String) -> (any ComponentFactory)? {
        switch kind {
        case .receiver: return receivers[type]
        case .processor: return processors[type]
        case .exporter: return exporters[type]
        case .connector: return connectors[type]
        case .extension: return extensions[type]
        }
    }

    func types(_ kind: ComponentKind) -> [String] {
        switch kind {
        case .receiver: return receivers.keys.sorted()
        case .processor: return processors.keys.sorted()
        case .exporter: return exporters.keys.sorted()
        case .connector: return connectors.keys.sorted()
        case .extension: return extensions.keys.sorted()
        }
    }

    /// One line per component type: `kind  type  signals  summary`, sorted, for `sextant components`.
    public func listing() -> [(kind: ComponentKind, type: String, signals: String, summary: String)] {
        var rows: [(ComponentKind, String, String, String)] = []
        func sig(_ s: Set<Signal>) -> String { s.sorted().map(\.rawValue).joined(separator: ",") }
        for (t, f) in receivers.sorted(by: { $0.key < $1.key }) { rows.append((.receiver, t, sig(f.signals), f.summary)) }
        for (t, f) in processors.sorted(by: { $0.key < $1.key }) { rows.append((.processor, t, sig(f.signals), f.summary)) }
        for (t, f) in exporters.sorted(by: { $0.key < $1.key }) { rows.append((.exporter, t, sig(f.signals), f.summary)) }
        for (t, f) in connectors.sorted(by: { $0.key < $1.key }) {
            let r = f.routes.sorted { ($0.from, $0.to) < ($1.from, $1.to) }.map { "\($0.from)->\($0.to)" }.joined(separator: ",")
            rows.append((.connector, t, r, f.summary))
        }
        for (t, f) in extensions.sorted(by: { $0.key < $1.key }) { rows.append((.extension, t, "-", f.summary)) }
        return rows.map { (kind: $0.0, type: $0.1, signals: $0.2, summary: $0.3) }
    }
}
