/// `retry_on_failure`, with the OpenTelemetry Collector's defaults.
public struct RetrySettings: Sendable, Equatable {
    public var enabled = true
    public var initialInterval: Duration = .seconds(5)
    public var maxInterval: Duration = .seconds(30)
    /// Give up on a batch after this long; zero means retry forever.
    public var maxElapsedTime: Duration = .seconds(300)
    public var multiplier: Double = 1.5
    public var randomizationFactor: Double = 0.5

    public init() {}
}

/// `sending_queue`: a bounded queue drained by `num_consumers` workers, in memory or, with `storage`,
/// persistent on disk.
public struct QueueSettings: Sendable, Equatable {
    /// What `queue_size` counts.
    public enum Sizer: String, Sendable {
        case items
        case requests
    }

    public var enabled = true
    public var numConsumers = 10
    /// Counted in items by default so the queue's memory is bounded whatever the batch size
    /// (1000 *requests* of 8192-span batches, the OTel default, can hold gigabytes).
    public var queueSize = 200_000
    public var sizer: Sizer = .items
    /// When full: refuse new batches (`false`, the default) or wait for room (`true`).
    public var blockOnOverflow = false
    /// The `file_storage` extension that holds a persistent queue; `nil` keeps the queue in memory.
    /// A persistent queue is bounded by the extension's `max_size` (bytes) instead of `queue_size`.
    public var storage: ComponentID?
    /// What a persistent queue does when full.
    public var whenFull: QueueFullPolicy = .block
    /// How long `when_full: block` waits for room before refusing a batch.
    public var blockTimeout: Duration = .seconds(5)

    public init() {}
}

extension QueueSettings {
    /// Reads a `sending_queue` section (an exporter with its own retry and timeout keys, such as
    /// `elasticsearch`, takes only this part of the helper's settings).
    public static func parse(_ q: inout ConfigReader, defaults: QueueSettings = QueueSettings()) -> QueueSettings {
        var s = defaults
        s.enabled = q.bool("enabled", default: defaults.enabled)
        s.numConsumers = q.int("num_consumers", default: defaults.numConsumers, min: 1, max: 1000)
        s.queueSize = q.int("queue_size", default: defaults.queueSize, min: 1)
        s.sizer = QueueSettings.Sizer(rawValue: q.choice("sizer", ["items", "requests"], default: defaults.sizer.rawValue))!
        if q.keys.contains("sizer") && !q.keys.contains("queue_size") && s.sizer == .requests { s.queueSize = 1000 }
        s.blockOnOverflow = q.bool("block_on_overflow", default: defaults.blockOnOverflow)
        s.storage = q.componentReference("storage", kind: .extension, requiredType: "file_storage")
        s.whenFull = QueueFullPolicy(rawValue: q.choice("when_full", QueueFullPolicy.allCases.map(\.rawValue), default: defaults.whenFull.rawValue))!
        s.blockTimeout = q.duration("block_timeout", default: defaults.blockTimeout)
        if s.storage == nil {
            for key in ["when_full", "block_timeout"] where q.keys.contains(key) {
                q.error(key, "\(q.qualified(key)) applies to a persistent queue: set \(q.qualified("storage")) too")
            }
        } else if !s.enabled {
            q.error("storage", "\(q.qualified("storage")) needs the queue enabled (\(q.qualified("enabled")): true)")
        }
        q.finish()
        return s
    }
}

/// The exporter helper's settings shared by every exporter: `timeout`, `sending_queue`, `retry_on_failure`.
public struct ExporterHelperSettings: Sendable, Equatable {
    /// Per-attempt timeout; zero means none (not reachable from config, where `timeout` must be positive).
    public var timeout: Duration = .seconds(5)
    public var queue = QueueSettings()
    public var retry = RetrySettings()

    public init() {}

    /// No queue and no retries: for exporters that deliver inside the process (debug output, the
    /// in-memory trace store, discarding), where a failure would not go away by waiting.
    public static var synchronous: ExporterHelperSettings {
        var s = ExporterHelperSettings()
        s.queue.enabled = false
        s.retry.enabled = false
        return s
    }

    /// Reads the helper's keys from an exporter's config. `defaults` lets an exporter choose e.g. no queue.
    public static func parse(_ reader: inout ConfigReader, defaults: ExporterHelperSettings = ExporterHelperSettings())
        -> ExporterHelperSettings
    {
        var s = defaults
        s.timeout = reader.duration("timeout", default: defaults.timeout, allowZero: false)
        var q = reader.section("sending_queue")
        s.queue = QueueSettings.parse(&q, defaults: defaults.queue)
        var r = reader.section("retry_on_failure")
        s.retry.enabled = r.bool("enabled", default: defaults.retry.enabled)
        s.retry.initialInterval = r.duration("initial_interval", default: defaults.retry.initialInterval, allowZero: false)
        s.retry.maxInterval = r.duration("max_interval", default: defaults.retry.maxInterval, allowZero: false)
        s.retry.maxElapsedTime = r.duration("max_elapsed_time", default: defaults.retry.maxElapsedTime)
        s.retry.multiplier = r.double("multiplier", default: defaults.retry.multiplier, min: 1)
        s.retry.randomizationFactor = r.double("randomization_factor", default: defaults.retry.randomizationFactor, min: 0, max: 1)
        if s.retry.maxInterval < s.retry.initialInterval {
            r.error("max_interval", "\(r.path)::max_interval must not be less than initial_interval")
        }
        r.finish()
        return s
    }
}
