import SextantModel

/// A validated collector configuration: components with their parsed configs, and pipelines.
///
/// Built from one or more YAML files in the OpenTelemetry Collector's shape. `load` reports every
/// problem at once, each with `file:line:column`; a config that loads has a valid pipeline graph.
public struct CollectorConfig: Sendable {
    /// A defined component and its parsed configuration.
    public struct Definition: Sendable {
        public var id: ComponentID
        public var kind: ComponentKind
        public var config: any ComponentConfig
        public var location: SourceLocation
        /// Receivers only: the `limits:` block every receiver accepts (defaults when absent).
        public var limits = ReceiverLimits()
    }

    /// A pipeline as declared under `service.pipelines`.
    public struct Pipeline: Sendable {
        public var id: PipelineID
        public var receivers: [ComponentID]
        public var processors: [ComponentID]
        public var exporters: [ComponentID]
        public var location: SourceLocation
    }

    /// `service.telemetry`: where and how the collector reports on itself.
    public struct Telemetry: Sendable {
        /// `host:port` for `/metrics`, `/healthz`, `/readyz`; `nil` when `level: none`.
        public var metricsAddress: String?
        /// `metrics::tls`, as `ComponentRegistry.telemetryTLSParser` read it (the collector's `TLSSettings`).
        public var metricsTLS: (any Sendable)?
        public var logLevel: String?
    }

    public var definitions: [ComponentKind: [ComponentID: Definition]]
    public var pipelines: [Pipeline]
    public var extensions: [ComponentID]
    public var telemetry: Telemetry
    public var shutdownTimeout: Duration
    public var warnings: [ConfigDiagnostic]

    public func definition(_ kind: ComponentKind, _ id: ComponentID) -> Definition? { definitions[kind]?[id] }

    /// Loads, merges (in order) and validates config files.
    public static func load(
        files: [String], registry: ComponentRegistry, environment: [String: String] = ProcessEnvironment.current
    ) throws -> CollectorConfig {
        let diagnostics = Diagnostics()
        var merged: ConfigNode?
        for file in files {
            guard let node = YAMLLoader.load(file: file, diagnostics: diagnostics, environment: environment) else { continue }
            merged = merged.map { $0.merged(with: node) } ?? node
        }
        if files.isEmpty { diagnostics.error(at: nil, "no configuration file given (use --config FILE)") }
        guard let root = merged, !diagnostics.hasErrors else { throw ConfigError(diagnostics.errors) }
        return try parse(root, registry: registry, diagnostics: diagnostics)
    }

    /// Loads a config from YAML text (tests, embedded defaults).
    public static func load(
        yaml: String, file: String = "<inline>", registry: ComponentRegistry, environment: [String: String] = [:]
    ) throws -> CollectorConfig {
        let diagnostics = Diagnostics()
        guard let root = YAMLLoader.parse(yaml, file: file, diagnostics: diagnostics, environment: environment),
            !diagnostics.hasErrors
        else { throw ConfigError(diagnostics.errors) }
        return try parse(root, registry: registry, diagnostics: diagnostics)
    }

    static func parse(_ root: ConfigNode, registry: ComponentRegistry, diagnostics: Diagnostics) throws -> CollectorConfig {
        var top = ConfigReader(root, path: "", diagnostics: diagnostics)
        var definitions: [ComponentKind: [ComponentID: Definition]] = [:]
        for kind in ComponentKind.allCases {
            definitions[kind] = parseSection(kind, top.raw(kind.section), registry: registry, diagnostics: diagnostics)
        }
        var service = top.section("service")
        top.finish()

        let shutdownTimeout = service.duration("shutdown_timeout", default: .seconds(10), allowZero: false)
        var telemetrySection = service.section("telemetry")
        var metrics = telemetrySection.section("metrics")
        let level = metrics.choice("level", ["none", "basic", "normal", "detailed"], default: "normal")
        let address = metrics.string("address", default: "127.0.0.1:8888")
        if level != "none" && HostPort.parse(address) == nil {
            metrics.error("address", "service::telemetry::metrics::address must be host:port, found '\(address)'")
        }
        var metricsTLS: (any Sendable)?
        if metrics.has("tls") {
            if let parse = registry.telemetryTLSParser {
                metricsTLS = parse(&metrics)
            } else {
                metrics.error("tls", "service::telemetry::metrics::tls is not supported by this build")
            }
        }
        metrics.finish()
        var logs = telemetrySection.section("logs")
        let logLevel = logs.optionalString("level").map { $0.lowercased() }
        if let logLevel, !["debug", "info", "warn", "error", "trace"].contains(logLevel) {
            logs.error("level", "service::telemetry::logs::level must be one of debug, info, warn, error")
        }
        logs.finish()
        telemetrySection.finish()

        let extensions = componentList(service.raw("extensions"), path: "service::extensions", diagnostics: diagnostics)
        for (id, loc) in extensions where definitions[.extension]?[id] == nil {
            diagnostics.error(at: loc, "service::extensions references extension '\(id)' which is not defined under 'extensions'")
        }

        validateReferences(diagnostics, definitions: definitions, enabledExtensions: Set(extensions.map(\.0)))

        var pipelines: [Pipeline] = []
        let pipelinesNode = service.raw("pipelines")
        service.finish()
        if let pipelinesNode {
            pipelines = parsePipelines(pipelinesNode, definitions: definitions, registry: registry, diagnostics: diagnostics)
        } else {
            diagnostics.error(at: service.location, "service::pipelines must define at least one pipeline")
        }
        validateConnectors(pipelines, definitions: definitions, registry: registry, diagnostics: diagnostics)
        validateNoCycles(pipelines, connectors: Set(definitions[.connector].map { Array($0.keys) } ?? []), diagnostics: diagnostics)
        warnUnused(definitions, pipelines: pipelines, extensions: extensions.map(\.0), diagnostics: diagnostics)

        if diagnostics.hasErrors {
            throw ConfigError(diagnostics.errors.sorted { ($0.location?.file ?? "", $0.location?.line ?? 0, $0.location?.column ?? 0) < ($1.location?.file ?? "", $1.location?.line ?? 0, $1.location?.column ?? 0) })
        }
        return CollectorConfig(
            definitions: definitions, pipelines: pipelines, extensions: extensions.map(\.0),
            telemetry: Telemetry(metricsAddress: level == "none" ? nil : address, metricsTLS: metricsTLS, logLevel: logLevel),
            shutdownTimeout: shutdownTimeout, warnings: diagnostics.warnings)
    }

    private static func parseSection(
        _ kind: ComponentKind, _ node: ConfigNode?, registry: ComponentRegistry, diagnostics: Diagnostics
    ) -> [ComponentID: Definition] {
        guard let node else { return [:] }
        guard let entries = node.entries else {
            diagnostics.error(at: node.location, "\(kind.section) must be a mapping of component IDs, found \(node.kindName)")
            return [:]
        }
        var out: [ComponentID: Definition] = [:]
        for entry in entries {
            guard let id = ComponentID(parsing: entry.key) else {
                diagnostics.error(at: entry.keyLocation, "'\(entry.key)' is not a valid component ID (expected type[/name])")
                continue
            }
            guard let factory = registry.factory(kind, id.type) else {
                let known = registry.types(kind)
                diagnostics.error(
                    at: entry.keyLocation,
                    "unknown \(kind.rawValue) type '\(id.type)'\(Spelling.hint(for: id.type, among: known))"
                        + " (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
                continue
            }
            if out[id] != nil {
                diagnostics.error(at: entry.keyLocation, "\(kind.rawValue) '\(id)' is defined twice")
                continue
            }
            var reader = ConfigReader(
                entry.value.isNull ? .emptyMapping(at: entry.value.location) : entry.value,
                path: "\(kind.section)::\(id)", diagnostics: diagnostics)
            let limits = kind == .receiver ? ReceiverLimits.parse(&reader) : ReceiverLimits()
            let config = factory.parseConfig(&reader)
            reader.finish()
            out[id] = Definition(id: id, kind: kind, config: config, location: entry.keyLocation, limits: limits)
        }
        return out
    }

    /// Components named inside other components' configs must exist, have the required type, and
    /// (extensions) be enabled under `service::extensions`, since only enabled extensions run.
    private static func validateReferences(
        _ diagnostics: Diagnostics, definitions: [ComponentKind: [ComponentID: Definition]], enabledExtensions: Set<ComponentID>
    ) {
        for r in diagnostics.references {
            if let t = r.requiredType, r.id.type != t {
                diagnostics.error(at: r.location, "\(r.path) must name a \(t) \(r.kind.rawValue) (\(t)[/name]), found '\(r.id)'")
            } else if definitions[r.kind]?[r.id] == nil {
                let known = (definitions[r.kind]?.keys.map(\.description) ?? []).sorted()
                diagnostics.error(
                    at: r.location,
                    "\(r.path) references \(r.kind.rawValue) '\(r.id)' which is not defined under '\(r.kind.section)'"
                        + Spelling.hint(for: r.id.description, among: known))
            } else if r.kind == .extension && !enabledExtensions.contains(r.id) {
                diagnostics.error(
                    at: r.location, "\(r.path) references extension '\(r.id)', which is not enabled: add it to service::extensions")
            }
        }
    }

    private static func componentList(_ node: ConfigNode?, path: String, diagnostics: Diagnostics) -> [(ComponentID, SourceLocation)] {
        guard let node else { return [] }
        guard case .sequence(let items) = node.value else {
            diagnostics.error(at: node.location, "\(path) must be a list of component IDs, found \(node.kindName)")
            return []
        }
        var out: [(ComponentID, SourceLocation)] = []
        for item in items {
            guard case .scalar(let s, _) = item.value, let id = ComponentID(parsing: s) else {
                diagnostics.error(at: item.location, "\(path): not a valid component ID")
                continue
            }
            if out.contains(where: { $0.0 == id }) {
                diagnostics.error(at: item.location, "\(path) lists '\(id)' twice")
                continue
            }
            out.append((id, item.location))
        }
        return out
    }

    private static func parsePipelines(
        _ node: ConfigNode, definitions: [ComponentKind: [ComponentID: Definition]], registry: ComponentRegistry,
        diagnostics: Diagnostics
    ) -> [Pipeline] {
        guard let entries = node.entries else {
            diagnostics.error(at: node.location, "service::pipelines must be a mapping, found \(node.kindName)")
            return []
        }
        if entries.isEmpty { diagnostics.error(at: node.location, "service::pipelines must define at least one pipeline") }
        var out: [Pipeline] = []
        for entry in entries {
            let parts = entry.key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let signal = Signal(rawValue: String(parts[0])) else {
                diagnostics.error(
                    at: entry.keyLocation,
                    "pipeline '\(entry.key)': unknown signal '\(parts[0])' (expected traces, metrics or logs)"
                        + Spelling.hint(for: String(parts[0]), among: Signal.allCases.map(\.rawValue)))
                continue
            }
            if parts.count > 1 && parts[1].isEmpty {
                diagnostics.error(at: entry.keyLocation, "pipeline '\(entry.key)': empty pipeline name after '/'")
                continue
            }
            let pid = PipelineID(signal, name: parts.count > 1 ? String(parts[1]) : "")
            let path = "service::pipelines::\(pid)"
            var reader = ConfigReader(entry.value, path: path, diagnostics: diagnostics)
            let receivers = componentList(reader.raw("receivers"), path: "\(path)::receivers", diagnostics: diagnostics)
            let processors = componentList(reader.raw("processors"), path: "\(path)::processors", diagnostics: diagnostics)
            let exporters = componentList(reader.raw("exporters"), path: "\(path)::exporters", diagnostics: diagnostics)
            reader.finish()
            if receivers.isEmpty { diagnostics.error(at: entry.keyLocation, "pipeline '\(pid)' must have at least one receiver") }
            if exporters.isEmpty { diagnostics.error(at: entry.keyLocation, "pipeline '\(pid)' must have at least one exporter") }

            func check(_ list: [(ComponentID, SourceLocation)], _ kind: ComponentKind, allowConnector: Bool) {
                for (id, loc) in list {
                    if definitions[kind]?[id] != nil {
                        let factory = registry.factory(kind, id.type)
                        let signals: Set<Signal>
                        switch factory {
                        case let f as any ReceiverFactory: signals = f.signals
                        case let f as any ProcessorFactory: signals = f.signals
                        case let f as any ExporterFactory: signals = f.signals
                        default: signals = []
                        }
                        if !signals.contains(signal) {
                            diagnostics.error(
                                at: loc,
                                "\(kind.rawValue) '\(id)' does not support \(signal) (it supports \(signals.sorted().map(\.rawValue).joined(separator: ", "))), used in pipeline '\(pid)'"
                            )
                        }
                    } else if allowConnector && definitions[.connector]?[id] != nil {
                        continue  // routes are checked across pipelines in validateConnectors
                    } else {
                        let sections = allowConnector ? "'\(kind.section)' or 'connectors'" : "'\(kind.section)'"
                        let known = (definitions[kind]?.keys.map(\.description) ?? [])
                            + (allowConnector ? definitions[.connector]?.keys.map(\.description) ?? [] : [])
                        diagnostics.error(
                            at: loc,
                            "pipeline '\(pid)' references \(kind.rawValue) '\(id)' which is not defined under \(sections)"
                                + Spelling.hint(for: id.description, among: known))
                    }
                }
            }
            check(receivers, .receiver, allowConnector: true)
            check(processors, .processor, allowConnector: false)
            check(exporters, .exporter, allowConnector: true)
            out.append(
                Pipeline(
                    id: pid, receivers: receivers.map(\.0), processors: processors.map(\.0), exporters: exporters.map(\.0),
                    location: entry.keyLocation))
        }
        return out
    }

    /// A connector must be an exporter of some pipeline and a receiver of another, on a supported route.
    private static func validateConnectors(
        _ pipelines: [Pipeline], definitions: [ComponentKind: [ComponentID: Definition]], registry: ComponentRegistry,
        diagnostics: Diagnostics
    ) {
        for (id, def) in (definitions[.connector] ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let factory = registry.connectors[id.type] else { continue }
            let asExporter = pipelines.filter { $0.exporters.contains(id) && definitions[.exporter]?[id] == nil }
            let asReceiver = pipelines.filter { $0.receivers.contains(id) && definitions[.receiver]?[id] == nil }
            if asExporter.isEmpty && asReceiver.isEmpty { continue }
            if asExporter.isEmpty {
                diagnostics.error(at: def.location, "connector '\(id)' is used as a receiver but not as an exporter in any pipeline")
            }
            if asReceiver.isEmpty {
                diagnostics.error(at: def.location, "connector '\(id)' is used as an exporter but not as a receiver in any pipeline")
            }
            for from in asExporter {
                for to in asReceiver where !factory.routes.contains(ConnectorRoute(from: from.id.signal, to: to.id.signal)) {
                    diagnostics.error(
                        at: def.location,
                        "connector '\(id)' cannot connect \(from.id.signal) to \(to.id.signal) (pipelines '\(from.id)' → '\(to.id)')")
                }
            }
        }
    }

    /// Pipelines joined by connectors must form a DAG (a cycle would loop data forever).
    private static func validateNoCycles(_ pipelines: [Pipeline], connectors: Set<ComponentID>, diagnostics: Diagnostics) {
        let edges = PipelineOrder.edges(pipelines, connectors: connectors)
        var state: [PipelineID: Int] = [:]  // 1 visiting, 2 done
        var stack: [PipelineID] = []
        var reported = false
        func visit(_ p: PipelineID) {
            guard !reported else { return }
            if state[p] == 2 { return }
            if state[p] == 1 {
                let cycle = (stack.drop { $0 != p } + [p]).map(\.description).joined(separator: " → ")
                let loc = pipelines.first { $0.id == p }?.location
                diagnostics.error(at: loc, "pipelines form a cycle through connectors: \(cycle)")
                reported = true
                return
            }
            state[p] = 1
            stack.append(p)
            for q in edges[p, default: []].sorted() { visit(q) }
            stack.removeLast()
            state[p] = 2
        }
        for p in pipelines.map(\.id).sorted() { visit(p) }
    }

    private static func warnUnused(
        _ definitions: [ComponentKind: [ComponentID: Definition]], pipelines: [Pipeline], extensions: [ComponentID],
        diagnostics: Diagnostics
    ) {
        for kind in [ComponentKind.receiver, .processor, .exporter, .connector, .extension] {
            for (id, def) in (definitions[kind] ?? [:]).sorted(by: { $0.key < $1.key }) {
                let used: Bool
                switch kind {
                case .receiver: used = pipelines.contains { $0.receivers.contains(id) }
                case .processor: used = pipelines.contains { $0.processors.contains(id) }
                case .exporter: used = pipelines.contains { $0.exporters.contains(id) }
                case .connector: used = pipelines.contains { $0.exporters.contains(id) || $0.receivers.contains(id) }
                case .extension: used = extensions.contains(id)
                }
                if !used { diagnostics.warning(at: def.location, "\(kind.rawValue) '\(id)' is defined but not used") }
            }
        }
    }
}

/// Ordering of pipelines along connector edges.
enum PipelineOrder {
    /// `p → q` when a connector is an exporter of `p` and a receiver of `q`. Only IDs defined as
    /// connectors count: an `otlp` receiver and an `otlp` exporter are different components.
    static func edges(_ pipelines: [CollectorConfig.Pipeline], connectors: Set<ComponentID>) -> [PipelineID: Set<PipelineID>] {
        var edges: [PipelineID: Set<PipelineID>] = [:]
        for p in pipelines {
            let out = Set(p.exporters).intersection(connectors)
            for q in pipelines where !out.isDisjoint(with: q.receivers) { edges[p.id, default: []].insert(q.id) }
        }
        return edges
    }
}

/// `host:port` parsing for endpoints (`[::1]:4318` for IPv6).
public enum HostPort {
    public static func parse(_ text: String) -> (host: String, port: Int)? {
        let t = text.trimmingSpaces
        var host: Substring
        var portText: Substring
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { return nil }
            host = t[t.index(after: t.startIndex)..<close]
            let rest = t[t.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = t.lastIndex(of: ":") else { return nil }
            host = t[t.startIndex..<colon]
            portText = t[t.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        if host.isEmpty { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        return (String(host), port)
    }
}
