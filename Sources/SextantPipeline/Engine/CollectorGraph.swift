import Logging
import SextantModel

/// Hands each batch to several consumers in order (fan-out to exporters, or to pipelines).
///
/// Every consumer gets the batch even if an earlier one failed; the most severe error is rethrown so
/// the receiver answers with it (overloaded > retryable > permanent), as the OTel fan-out consumer does.
public struct FanOutConsumer: Consumer {
    public let consumers: [any Consumer]

    public init(_ consumers: [any Consumer]) { self.consumers = consumers }

    public var readsTraceModel: Bool { consumers.contains { $0.readsTraceModel } }

    /// A single consumer is used as is; several are wrapped.
    public static func of(_ consumers: [any Consumer]) -> any Consumer {
        consumers.count == 1 ? consumers[0] : FanOutConsumer(consumers)
    }

    public func consume(_ telemetry: Telemetry) async throws {
        var worst: ConsumerError?
        for c in consumers {
            do {
                try await c.consume(telemetry)
            } catch {
                let e = ConsumerError.classify(error)
                if worst == nil || rank(e.kind) > rank(worst!.kind) { worst = e }
            }
        }
        if let worst { throw worst }
    }

    private func rank(_ k: ConsumerError.Kind) -> Int {
        switch k {
        case .permanent: return 0
        case .retryable: return 1
        case .overloaded: return 2
        }
    }
}

/// The running form of a validated config: every component instance, wired, in start order.
///
/// Built like Hummingbird's router: from the mutable config into an immutable, `Sendable` graph.
/// Components start downstream-first (extensions, exporters, connectors and processors from the last
/// pipeline back, receivers last) and shut down in the reverse order, so data never reaches a
/// component that is not running and everything in flight drains towards the exporters.
public final class CollectorGraph: Sendable {
    /// A component instance with a label for logs (`exporter/file`, `processor/batch in traces`).
    public struct Node: Sendable {
        public var label: String
        public var component: any Component
    }

    public let nodes: [Node]
    private let logger: Logger

    init(nodes: [Node], logger: Logger) {
        self.nodes = nodes
        self.logger = logger
    }

    /// Instantiates every component of `config` and wires the pipelines.
    public static func build(
        _ config: CollectorConfig, registry: ComponentRegistry, telemetry: SelfTelemetry, logger: Logger,
        readiness: Readiness = Readiness()
    ) throws -> CollectorGraph {
        var nodes: [Node] = []
        var extensions: [ComponentID: any Component] = [:]
        func settings(_ kind: ComponentKind, _ id: ComponentID, _ extra: Logger.Metadata = [:]) -> ComponentSettings {
            var l = logger
            l[metadataKey: "component"] = "\(kind.rawValue)/\(id)"
            for (k, v) in extra { l[metadataKey: k] = v }
            return ComponentSettings(id: id, kind: kind, logger: l, telemetry: telemetry, readiness: readiness, extensions: extensions)
        }

        for id in config.extensions {
            let def = config.definition(.extension, id)!
            let ext = try registry.extensions[id.type]!.makeExtension(settings(.extension, id), config: def.config)
            extensions[id] = ext
            nodes.append(Node(label: "extension/\(id)", component: ext))
        }

        // Exporters: one instance per ID, serving the signals of every pipeline that lists it.
        var exporters: [ComponentID: any ConsumingComponent] = [:]
        var exporterSignals: [ComponentID: Set<Signal>] = [:]
        for p in config.pipelines {
            for id in p.exporters where config.definition(.exporter, id) != nil { exporterSignals[id, default: []].insert(p.id.signal) }
        }
        for (id, signals) in exporterSignals.sorted(by: { $0.key < $1.key }) {
            let def = config.definition(.exporter, id)!
            let e = try registry.exporters[id.type]!.makeExporter(settings(.exporter, id), config: def.config, signals: signals)
            exporters[id] = e
            nodes.append(Node(label: "exporter/\(id)", component: e))
        }

        // Pipelines, downstream first, so a connector's output pipelines exist before it does.
        var entries: [PipelineID: any Consumer] = [:]
        var connectors: [ComponentID: any ConsumingComponent] = [:]
        let connectorIDs = Set(config.definitions[.connector].map { Array($0.keys) } ?? [])
        for p in downstreamFirst(config.pipelines, connectors: connectorIDs) {
            var tail: [any Consumer] = []
            for id in p.exporters {
                if let e = exporters[id] {
                    tail.append(e)
                    continue
                }
                if connectors[id] == nil {
                    var outputs: [Signal: [any Consumer]] = [:]
                    for q in config.pipelines where q.receivers.contains(id) && config.definition(.receiver, id) == nil {
                        outputs[q.id.signal, default: []].append(entries[q.id]!)
                    }
                    let def = config.definition(.connector, id)!
                    let c = try registry.connectors[id.type]!.makeConnector(
                        settings(.connector, id), config: def.config, outputs: outputs.mapValues { FanOutConsumer.of($0) })
                    connectors[id] = c
                    nodes.append(Node(label: "connector/\(id)", component: c))
                }
                tail.append(connectors[id]!)
            }
            var next: any Consumer = FanOutConsumer.of(tail)
            for id in p.processors.reversed() {
                let def = config.definition(.processor, id)!
                let proc = try registry.processors[id.type]!.makeProcessor(
                    settings(.processor, id, ["pipeline": "\(p.id)"]), config: def.config, pipeline: p.id, next: next)
                nodes.append(Node(label: "processor/\(id) in \(p.id)", component: proc))
                next = proc
            }
            entries[p.id] = next
        }

        // Receivers last: one instance each, fanning out to every pipeline that lists it, per signal.
        var receiverIDs: [ComponentID] = []
        for p in config.pipelines {
            for id in p.receivers where config.definition(.receiver, id) != nil && !receiverIDs.contains(id) { receiverIDs.append(id) }
        }
        for id in receiverIDs.sorted() {
            var consumers: [Signal: [any Consumer]] = [:]
            for p in config.pipelines where p.receivers.contains(id) { consumers[p.id.signal, default: []].append(entries[p.id]!) }
            let def = config.definition(.receiver, id)!
            var s = settings(.receiver, id)
            s.limits = def.limits
            // Limits are enforced once per batch, before the fan-out, whatever the receiver decoded.
            let limited = consumers.mapValues { c -> any Consumer in
                let next = FanOutConsumer.of(c)
                return def.limits.telemetry.isUnlimited ? next : LimitingConsumer(def.limits.telemetry, next: next, settings: s)
            }
            let r = try registry.receivers[id.type]!.makeReceiver(s, config: def.config, consumers: limited)
            nodes.append(Node(label: "receiver/\(id)", component: r))
        }
        return CollectorGraph(nodes: nodes, logger: logger)
    }

    /// Pipelines ordered so that each comes after every pipeline it feeds through a connector.
    static func downstreamFirst(_ pipelines: [CollectorConfig.Pipeline], connectors: Set<ComponentID>) -> [CollectorConfig.Pipeline] {
        let edges = PipelineOrder.edges(pipelines, connectors: connectors)
        var done: Set<PipelineID> = []
        var out: [CollectorConfig.Pipeline] = []
        func visit(_ p: CollectorConfig.Pipeline) {
            guard !done.contains(p.id) else { return }
            done.insert(p.id)
            for q in pipelines.sorted(by: { $0.id < $1.id }) where edges[p.id]?.contains(q.id) == true { visit(q) }
            out.append(p)
        }
        for p in pipelines.sorted(by: { $0.id < $1.id }) { visit(p) }
        return out
    }

    /// Starts every component in order. If one fails, those already started are shut down again.
    public func start() async throws {
        var started: [Node] = []
        for node in nodes {
            do {
                try await node.component.start()
                started.append(node)
                logger.debug("started \(node.label)")
            } catch {
                logger.error("failed to start \(node.label): \(error)")
                for s in started.reversed() { await s.component.shutdown() }
                throw GraphStartError(component: node.label, underlying: String(describing: error))
            }
        }
    }

    /// Shuts components down upstream-first (receivers first), each draining what it holds.
    public func shutdown() async {
        for node in nodes.reversed() {
            await node.component.shutdown()
            logger.debug("stopped \(node.label)")
        }
    }
}

/// A component could not start (e.g. its port is taken).
public struct GraphStartError: Error, CustomStringConvertible {
    public var component: String
    public var underlying: String
    public var description: String { "cannot start \(component): \(underlying)" }
}
