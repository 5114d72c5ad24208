#if canImport(Glibc)
import Glibc
#endif
import Logging
import SextantModel
import SextantPipeline
import Synchronization

/// `memory_limiter` processor config (OTel Collector names). Put it first in each pipeline.
public struct MemoryLimiterConfig: ComponentConfig {
    public var checkInterval: Duration = .seconds(1)
    /// Hard limit in bytes; above `limit - spike` (the soft limit) data is refused.
    public var limitBytes = 0
    public var spikeBytes = 0

    public var softLimitBytes: Int { limitBytes - spikeBytes }
}

public struct MemoryLimiterProcessorFactory: ProcessorFactory {
    public init() {}
    public let type = "memory_limiter"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "refuses data (429 / RESOURCE_EXHAUSTED upstream) while RSS is above the soft limit"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = MemoryLimiterConfig()
        c.checkInterval = r.duration("check_interval", default: .zero)
        if c.checkInterval <= .zero { r.error("check_interval", "\(r.path)::check_interval is required and must be greater than zero") }
        let limitMiB = r.int("limit_mib", default: 0, min: 0)
        let spikeMiB = r.int("spike_limit_mib", default: 0, min: 0)
        let limitPct = r.int("limit_percentage", default: 0, min: 0, max: 100)
        let spikePct = r.int("spike_limit_percentage", default: 0, min: 0, max: 100)
        if limitMiB > 0 {
            c.limitBytes = limitMiB << 20
            c.spikeBytes = spikeMiB > 0 ? spikeMiB << 20 : c.limitBytes / 5
        } else if limitPct > 0 {
            let total = MemoryStats.totalBytes()
            c.limitBytes = total / 100 * limitPct
            c.spikeBytes = spikePct > 0 ? total / 100 * spikePct : c.limitBytes / 5
        } else {
            r.error(nil, "\(r.path) needs limit_mib or limit_percentage")
        }
        if c.spikeBytes >= c.limitBytes && c.limitBytes > 0 {
            r.error(nil, "\(r.path): spike_limit must be lower than limit")
        }
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        MemoryLimiterProcessor(config as! MemoryLimiterConfig, settings: settings, pipeline: pipeline, next: next)
    }
}

/// Samples the process's resident memory every `check_interval`. While it is above the soft limit
/// (`limit - spike`), `consume` throws `ConsumerError.overloaded`, which receivers turn into HTTP 429
/// or gRPC RESOURCE_EXHAUSTED — never 500 — so clients back off and retry. Above the soft limit it
/// first asks the allocator to return free memory to the system and measures again, so memory that is
/// only held, not used, does not refuse data. Refusal stops as soon as memory falls.
public final class MemoryLimiterProcessor: ConsumingComponent {
    private let config: MemoryLimiterConfig
    private let next: any Consumer
    private let logger: Logger
    private let refusing = Atomic<Bool>(false)
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    private let refused: SelfTelemetry.Counter
    private let rss: SelfTelemetry.Gauge

    public init(_ config: MemoryLimiterConfig, settings: ComponentSettings, pipeline: PipelineID, next: any Consumer) {
        self.config = config
        self.next = next
        self.logger = settings.logger
        refused = settings.telemetry.counter(
            "sextant_processor_memory_limiter_refused_items_total", help: "Items refused because memory was above the soft limit.",
            labels: [("processor", settings.id.description), ("pipeline", pipeline.description)])
        rss = settings.telemetry.gauge("sextant_process_resident_memory_bytes", help: "Resident memory of the collector process.")
    }

    /// Whether data is being refused right now.
    public var isRefusing: Bool { refusing.load(ordering: .relaxed) }

    public func start() async throws {
        check()
        let interval = config.checkInterval
        ticker.withLock {
            $0 = Task { [self] in
                while !Task.isCancelled {
                    do { try await Task.sleep(for: interval) } catch { return }
                    check()
                }
            }
        }
    }

    public func shutdown() async {
        ticker.withLock { $0 }?.cancel()
        await ticker.withLock { $0 }?.value
    }

    /// One sample: updates the refusing state, logging transitions.
    func check() {
        var used = MemoryStats.residentBytes()
        if used > config.softLimitBytes {
            // Free memory the allocator still holds counts in RSS (the collector keeps batch buffers,
            // `HeapTuning`): give it back and measure again before refusing, as the OTel Collector's
            // limiter forces a garbage collection at the soft limit.
            HeapTrim.now()
            used = MemoryStats.residentBytes()
        }
        rss.set(used)
        let over = used > config.softLimitBytes
        let was = refusing.exchange(over, ordering: .relaxed)
        if over != was {
            logger.warning(
                over ? "memory above soft limit: refusing data" : "memory back below soft limit: accepting data",
                metadata: ["rss_mib": "\(used >> 20)", "soft_limit_mib": "\(config.softLimitBytes >> 20)", "limit_mib": "\(config.limitBytes >> 20)"])
        }
    }

    /// It counts items and watches memory; the batch passes on untouched.
    public var readsTraceModel: Bool { next.readsTraceModel }

    public func consume(_ telemetry: Telemetry) async throws {
        if refusing.load(ordering: .relaxed) {
            refused.add(telemetry.itemCount)
            throw ConsumerError.overloaded("memory usage is above the memory_limiter soft limit (\(config.softLimitBytes >> 20) MiB)")
        }
        try await next.consume(telemetry)
    }
}

/// Process and machine memory, from procfs.
enum MemoryStats {
    /// Resident set size of this process (`/proc/self/statm`, field 2, in pages).
    static func residentBytes() -> Int {
        guard let text = FileText.read("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Total memory (`MemTotal` in `/proc/meminfo`), or a cgroup v2 limit when lower.
    static func totalBytes() -> Int {
        var total = 0
        if let meminfo = FileText.read("/proc/meminfo"),
            let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") })
        {
            total = (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        if let cg = FileText.read("/sys/fs/cgroup/memory.max"), let limit = Int(cg.trimmingSpaces), limit > 0, limit < total {
            total = limit
        }
        return total
    }
}
