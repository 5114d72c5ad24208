import Logging
import Synchronization

/// The running `file_storage` extension (OTel's `filestorage`): a directory in which exporters that
/// name it in `sending_queue::storage` keep their persistent queues, one subdirectory each
/// (`exporter_<type>[~<name>]`).
///
/// Exporters ask for their queue while the graph is built; `start` (extensions start before
/// exporters) opens and recovers every one of them, so a directory that cannot be used stops the
/// collector from starting instead of failing later, and damaged data is skipped before any new data arrives.
public final class FileStorage: Component {
    public struct Settings: Sendable, Equatable {
        public var directory: String
        /// `fsync` each enqueued batch before the receiver acknowledges it (power-loss safe). Without it
        /// an acknowledged batch survives a crash of the process, not of the machine.
        public var fsync = true
        /// Bound on each persistent queue, in bytes of unacknowledged records.
        public var maxSize = 1 << 30

        public init(directory: String) { self.directory = directory }
    }

    public let settings: Settings
    private let logger: Logger
    private let queues = Mutex<[(String, DurableQueue)]>([])

    public init(_ settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The subdirectory holding `owner`'s queue. `/` in a component name becomes `~` (not allowed in IDs).
    public static func subdirectory(for owner: ComponentID) -> String {
        "exporter_" + owner.description.replacingSlashes
    }

    /// The persistent queue of exporter `owner`, created on first request.
    public func queue(
        for owner: ComponentID, policy: QueueFullPolicy, blockTimeout: Duration, telemetry: SelfTelemetry, logger: Logger
    ) -> DurableQueue {
        queues.withLock { qs in
            let key = owner.description
            if let q = qs.first(where: { $0.0 == key }) { return q.1 }
            let q = DurableQueue(
                directory: settings.directory + "/" + Self.subdirectory(for: owner), fsync: settings.fsync,
                maxSize: settings.maxSize, policy: policy, blockTimeout: blockTimeout, owner: key, telemetry: telemetry,
                logger: logger)
            qs.append((key, q))
            return q
        }
    }

    public func start() async throws {
        let all = queues.withLock { $0 }
        var opened: [DurableQueue] = []
        for (owner, q) in all {
            do {
                try await q.open()
                opened.append(q)
            } catch {
                for o in opened { await o.close() }
                throw StorageError("persistent queue of exporter '\(owner)' in \(q.directory): \(error)")
            }
        }
    }

    public func shutdown() async {
        for (_, q) in queues.withLock({ $0 }) { await q.close() }
    }
}

extension String {
    fileprivate var replacingSlashes: String { String(map { $0 == "/" ? "~" : $0 }) }
}
