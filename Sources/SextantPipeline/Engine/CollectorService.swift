import Logging
import ServiceLifecycle
import Synchronization

/// Whether the collector is serving: set once every component has started, cleared at shutdown.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    public init() {}
    public var isReady: Bool { ready.load(ordering: .acquiring) }
    public func set(_ value: Bool) { ready.store(value, ordering: .releasing) }
}

/// Runs a `CollectorGraph` as a swift-service-lifecycle `Service`.
///
/// On graceful shutdown (SIGTERM/SIGINT through the `ServiceGroup`) it stops components upstream-first
/// and lets them drain for at most `shutdownTimeout`; past that the remaining work is cancelled, and
/// whatever could not be delivered is counted as failed by the exporters.
public final class CollectorService: Service {
    public let graph: CollectorGraph
    public let shutdownTimeout: Duration
    public let readiness: Readiness
    private let logger: Logger

    public init(graph: CollectorGraph, shutdownTimeout: Duration, readiness: Readiness, logger: Logger) {
        self.graph = graph
        self.shutdownTimeout = shutdownTimeout
        self.readiness = readiness
        self.logger = logger
    }

    public func run() async throws {
        try await graph.start()
        readiness.set(true)
        logger.info("everything is ready; processing data")
        try? await gracefulShutdown()
        readiness.set(false)
        logger.info("shutting down: draining pipelines (timeout \(shutdownTimeout))")
        let timeout = shutdownTimeout
        let graph = self.graph
        let drained = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await graph.shutdown()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next()!
            group.cancelAll()
            await group.waitForAll()
            return first
        }
        if drained {
            logger.info("shutdown complete")
        } else {
            logger.warning("shutdown timeout of \(timeout) reached; undelivered data was dropped and counted")
        }
    }
}
