#if canImport(Glibc)
import Glibc
#endif
import Logging
import SextantElasticsearch
import SextantModel
import SextantOTLP
import SextantPipeline
import Synchronization

/// `file` exporter config (the OTel Collector's `file` exporter).
public struct FileExporterConfig: ComponentConfig {
    public enum Format: String, Sendable {
        /// One OTLP/JSON `TracesData`/`MetricsData`/`LogsData` object per line.
        case json
        /// Each message as OTLP protobuf, preceded by its length as a 4-byte big-endian integer.
        case proto
        /// One Elastic Common Schema document per log record or span (`SextantElasticsearch.ECSMapping`).
        case ecs
    }

    /// lumberjack-style rotation by size.
    public struct Rotation: Sendable, Equatable {
        public var maxMegabytes = 100
        public var maxBackups = 100
        public var localtime = false
    }

    public var path = ""
    public var format: Format = .json
    public var append = false
    public var rotation: Rotation?
    public var helper = ExporterHelperSettings()
}

public struct FileExporterFactory: ExporterFactory {
    public init() {}
    public let type = "file"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "writes OTLP JSON lines (or length-prefixed protobuf) to a file, with size rotation"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = FileExporterConfig()
        c.path = r.string("path", default: "")
        if c.path.isEmpty { r.error("path", "\(r.path)::path is required") }
        c.format = .init(rawValue: r.choice("format", ["json", "proto", "ecs"], default: "json"))!
        c.append = r.bool("append", default: false)
        if r.has("rotation") {
            var rot = r.section("rotation")
            var rc = FileExporterConfig.Rotation()
            rc.maxMegabytes = rot.int("max_megabytes", default: rc.maxMegabytes, min: 1)
            rc.maxBackups = rot.int("max_backups", default: rc.maxBackups, min: 0)
            rc.localtime = rot.bool("localtime", default: false)
            if rc.localtime { rot.error("localtime", "\(rot.path)::localtime: only UTC timestamps are supported in rotated file names") }
            rot.finish()
            c.rotation = rc
            if c.append { r.error("append", "\(r.path)::append cannot be used together with rotation") }
        }
        c.helper = ExporterHelperSettings.parse(&r)
        return c
    }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        let c = config as! FileExporterConfig
        if c.format == .ecs && signals.contains(.metrics) {
            throw FileExporterError("exporter \(settings.id): format ecs writes logs and traces only, not metrics")
        }
        return FileExporter(c, settings: settings)
    }
}

/// Writes each batch as one record (one line in JSON) with a single `write(2)`, so lines from
/// concurrent queue workers never interleave; rotates by size as lumberjack does
/// (`name-2006-01-02T15-04-05.000.ext`, keeping `max_backups`).
public final class FileExporter: ConsumingComponent {
    private let sink: FileSink
    private let helper: ExporterHelper<ContinuousClock>
    /// `format: proto` writes the OTLP protobuf encoding, which a kept batch already is.
    public let readsTraceModel: Bool

    public init(_ config: FileExporterConfig, settings: ComponentSettings) {
        let sink = FileSink(config)
        self.sink = sink
        self.readsTraceModel = config.format != .proto
        self.helper = ExporterHelper(config.helper, component: settings) { batch in try sink.write(batch) }
    }

    public func start() async throws {
        try sink.open()
        helper.start()
    }

    public func shutdown() async {
        await helper.shutdown()
        sink.close()
    }

    public func consume(_ telemetry: Telemetry) async throws { try await helper.consume(telemetry) }
}

/// The open file behind a `FileExporter`, serialised by a lock.
final class FileSink: Sendable {
    private let config: FileExporterConfig
    private let file: Mutex<RotatingFile?> = Mutex(nil)

    init(_ config: FileExporterConfig) { self.config = config }

    func open() throws {
        let f = try RotatingFile(path: config.path, append: config.append, rotation: config.rotation)
        file.withLock { $0 = f }
    }

    func close() {
        file.withLock { f in
            f?.close()
            f = nil
        }
    }

    /// One record in the configured format.
    func encode(_ batch: Telemetry) -> [UInt8] {
        switch config.format {
        case .json:
            var line = OTLPJSON.encode(batch)
            line.append(UInt8(ascii: "\n"))
            return line
        case .proto:
            let msg = OTLPProtobuf.encode(batch)
            let n = UInt32(msg.count)
            return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
                + msg
        case .ecs:
            return ECSMapping.ndjson(batch, fallbackTimeUnixNano: SystemTime.nowNanos())
        }
    }

    func write(_ batch: Telemetry) throws {
        let bytes = encode(batch)
        guard !bytes.isEmpty else { return }
        try file.withLock { f in
            guard f != nil else { throw ConsumerError.retryable("file exporter is not running") }
            try f!.write(bytes)
        }
    }
}

/// A file opened for appending that rotates itself by size.
struct RotatingFile {
    let path: String
    let rotation: FileExporterConfig.Rotation?
    private var fd: Int32
    private var size: Int

    init(path: String, append: Bool, rotation: FileExporterConfig.Rotation?) throws {
        self.path = path
        self.rotation = rotation
        let keep = append || rotation != nil
        Self.makeParentDirectories(path)
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (keep ? 0 : O_TRUNC), 0o644)
        guard fd >= 0 else { throw FileExporterError("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        var st = stat()
        size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
    }

    mutating func write(_ bytes: [UInt8]) throws {
        if let rotation, size > 0, size + bytes.count > rotation.maxMegabytes << 20 { try rotate(rotation) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConsumerError.retryable("write to '\(path)' failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        size += bytes.count
    }

    private mutating func rotate(_ rotation: FileExporterConfig.Rotation) throws {
        let (dir, base) = Self.split(path)
        let (stem, ext) = Self.splitExtension(base)
        let backup = dir + stem + "-" + SystemTime.rotationStamp(SystemTime.nowNanos()) + ext
        Glibc.close(fd)
        Glibc.rename(path, backup)
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_TRUNC, 0o644)
        size = 0
        guard fd >= 0 else { throw ConsumerError.retryable("cannot reopen '\(path)' after rotation: \(String(cString: strerror(errno)))") }
        if rotation.maxBackups > 0 { Self.pruneBackups(dir: dir, stem: stem, ext: ext, keep: rotation.maxBackups) }
    }

    /// Deletes the oldest `stem-<timestamp>ext` files beyond `keep` (timestamps sort lexically).
    static func pruneBackups(dir: String, stem: String, ext: String, keep: Int) {
        guard let d = opendir(dir.isEmpty ? "." : dir) else { return }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(stem + "-") && name.hasSuffix(ext) && name.count == stem.count + 1 + 23 + ext.count { names.append(name) }
        }
        closedir(d)
        for old in names.sorted().dropLast(keep) { unlink(dir + old) }
    }

    /// `mkdir -p` of the file's directory, so a default such as `./out/traces.jsonl` just works.
    static func makeParentDirectories(_ path: String) {
        let (dir, _) = split(path)
        guard !dir.isEmpty else { return }
        var prefix = ""
        for part in dir.split(separator: "/", omittingEmptySubsequences: false) {
            prefix += part + "/"
            if !part.isEmpty && part != "." { mkdir(prefix, 0o755) }
        }
    }

    static func split(_ path: String) -> (dir: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    static func splitExtension(_ base: String) -> (String, String) {
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return (base, "") }
        return (String(base[..<dot]), String(base[dot...]))
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

struct FileExporterError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
