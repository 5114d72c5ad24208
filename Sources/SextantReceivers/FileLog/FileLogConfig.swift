import SextantModel
import SextantPipeline

/// `filelog` receiver config: the OTel Collector contrib receiver's keys and defaults.
public struct FileLogReceiverConfig: ComponentConfig {
    public enum StartAt: String, Sendable { case beginning, end }
    public enum Encoding: String, Sendable { case utf8 = "utf-8", nop }
    public enum Multiline: Sendable {
        case lineStart(CompiledRegex)
        case lineEnd(CompiledRegex)
    }

    public var include: [String] = []
    public var exclude: [String] = []
    /// Where files found on the first poll start; files that appear later are read from the beginning.
    public var startAt: StartAt = .end
    public var pollInterval: Duration = .milliseconds(200)
    /// Bytes at the head of a file that identify it across renames and restarts.
    public var fingerprintSize = 1024
    /// Longest entry; longer lines are split into pieces of this size.
    public var maxLogSize = 1 << 20
    /// Files open (being read) at once.
    public var maxConcurrentFiles = 1024
    /// How long an unterminated last line (or an open multiline entry) waits for more bytes before it is emitted.
    public var forceFlushPeriod: Duration = .milliseconds(500)
    public var encoding: Encoding = .utf8
    public var multiline: Multiline?
    public var includeFileName = true
    public var includeFilePath = false
    /// Directory holding the checkpoint file; `nil` keeps offsets in memory only.
    public var storageDirectory: String?
    public var operators: [LogOperator] = []
    /// Entries per batch handed downstream.
    public var maxBatchSize = 1000

    public init() {}
}

public struct FileLogReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "filelog"
    public let signals: Set<Signal> = [.logs]
    public let summary = "tails files (globs, rotation, checkpoints, multiline, json/regex parsers)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = FileLogReceiverConfig()
        c.include = r.stringList("include")
        if c.include.isEmpty { r.error("include", "\(r.qualified("include")) must list at least one glob") }
        for p in c.include where !p.hasPrefix("/") {
            r.error("include", "\(r.qualified("include")): '\(p)' must be an absolute path glob")
        }
        c.exclude = r.stringList("exclude")
        c.startAt = FileLogReceiverConfig.StartAt(rawValue: r.choice("start_at", ["beginning", "end"], default: "end")) ?? .end
        c.pollInterval = r.duration("poll_interval", default: c.pollInterval, allowZero: false)
        c.fingerprintSize = r.byteSize("fingerprint_size", default: c.fingerprintSize, min: 16)
        c.maxLogSize = r.byteSize("max_log_size", default: c.maxLogSize, min: 16)
        c.maxConcurrentFiles = r.int("max_concurrent_files", default: c.maxConcurrentFiles, min: 1)
        c.forceFlushPeriod = r.duration("force_flush_period", default: c.forceFlushPeriod)
        c.maxBatchSize = r.int("max_batch_size", default: c.maxBatchSize, min: 1)
        c.encoding = r.choice("encoding", ["utf-8", "utf8", "nop"], default: "utf-8") == "nop" ? .nop : .utf8
        c.includeFileName = r.bool("include_file_name", default: true)
        c.includeFilePath = r.bool("include_file_path", default: false)
        if let s = r.optionalString("storage") {
            if s.hasPrefix("/") {
                c.storageDirectory = s
            } else {
                r.error("storage", "\(r.qualified("storage")): give an absolute directory path for checkpoints ('\(s)' looks like an extension id; storage extensions are not supported)")
            }
        }
        if r.has("multiline") {
            var m = r.section("multiline")
            let start = m.optionalString("line_start_pattern")
            let end = m.optionalString("line_end_pattern")
            switch (start, end) {
            case (let s?, nil):
                if let re = compile(s, "line_start_pattern", &m) { c.multiline = .lineStart(re) }
            case (nil, let e?):
                if let re = compile(e, "line_end_pattern", &m) { c.multiline = .lineEnd(re) }
            default:
                m.error(nil, "\(m.path) needs exactly one of line_start_pattern and line_end_pattern")
            }
            m.finish()
        }
        if let ops = r.raw("operators") {
            if case .sequence(let items) = ops.value {
                for (i, item) in items.enumerated() {
                    var o = ConfigReader(item, path: r.qualified("operators") + "[\(i)]", diagnostics: r.diagnostics)
                    if let op = LogOperator.parse(&o) { c.operators.append(op) }
                    o.finish()
                }
            } else {
                r.error("operators", "\(r.qualified("operators")) must be a list of operators")
            }
        }
        r.finish()
        return c
    }

    private func compile(_ pattern: String, _ key: String, _ r: inout ConfigReader) -> CompiledRegex? {
        do { return try CompiledRegex(pattern) } catch {
            r.error(key, "\(r.qualified(key)): invalid regular expression: \(error)")
            return nil
        }
    }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        FileLogReceiver(config as! FileLogReceiverConfig, settings: settings, next: consumers[.logs]!)
    }
}

