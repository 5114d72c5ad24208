import Foundation
import Logging
import SextantModel
import SextantPipeline
import SextantReceivers
import SextantTesting
import Testing

/// A temporary directory, removed when the test is done with it.
final class TempDir {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "filelog-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ text: String) { write(name, Array(text.utf8)) }
    func write(_ name: String, _ bytes: [UInt8]) {
        try! FileManager.default.createDirectory(atPath: (file(name) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file(name), contents: Data(bytes))
    }

    func append(_ name: String, _ text: String) { append(name, Array(text.utf8)) }
    func append(_ name: String, _ bytes: [UInt8]) {
        guard let h = FileHandle(forWritingAtPath: file(name)) else { return write(name, bytes) }
        h.seekToEndOfFile()
        h.write(Data(bytes))
        try! h.close()
    }

    func rename(_ from: String, _ to: String) { try! FileManager.default.moveItem(atPath: file(from), toPath: file(to)) }

    /// copytruncate as logrotate does it: copy the content, then truncate the original in place.
    func copyTruncate(_ name: String, to copy: String) {
        try! FileManager.default.copyItem(atPath: file(name), toPath: file(copy))
        let h = FileHandle(forWritingAtPath: file(name))!
        h.truncateFile(atOffset: 0)
        try! h.close()
    }
}

func lines(_ range: ClosedRange<Int>, prefix: String = "line") -> String { range.map { "\(prefix) \($0)\n" }.joined() }

extension RecordingConsumer {
    var logRecords: [LogRecord] {
        batches.flatMap { b -> [LogRecord] in
            guard case .logs(let l) = b else { return [] }
            return l.resourceLogs.flatMap { $0.scopeLogs.flatMap(\.logRecords) }
        }
    }

    var bodies: [String] { logRecords.map { $0.body?.asString ?? "<nil>" } }
}

func receiverSettings(_ id: String = "filelog") -> ComponentSettings {
    ComponentSettings(id: ComponentID(parsing: id)!, kind: .receiver, logger: Logger(label: "t"), telemetry: SelfTelemetry())
}

func fileLogConfig(_ dir: TempDir, include: [String] = ["*.log"], _ change: (inout FileLogReceiverConfig) -> Void = { _ in })
    -> FileLogReceiverConfig
{
    var c = FileLogReceiverConfig()
    c.include = include.map { dir.path + "/" + $0 }
    c.startAt = .beginning
    change(&c)
    return c
}

/// Parses a `filelog` config from YAML; returns it and the diagnostics.
func parseFileLog(_ yaml: String) -> (FileLogReceiverConfig, [String]) {
    let d = Diagnostics()
    let node = YAMLLoader.parse(yaml, file: "t.yaml", diagnostics: d, environment: [:])!
    var r = ConfigReader(node, path: "receivers::filelog", diagnostics: d)
    let c = FileLogReceiverFactory().parseConfig(&r) as! FileLogReceiverConfig
    return (c, d.all.map(\.description))
}

@Suite struct FileLogReceiverTests {
    @Test func readsLinesWithFileAttributes() async throws {
        let dir = TempDir()
        dir.write("a.log", "first\r\nsecond\n\nthird")
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir) { $0.includeFilePath = true }, settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(sink.bodies == ["first", "second"])  // the unterminated "third" waits for more bytes
        let rec = try #require(sink.logRecords.first)
        #expect(rec.attributes[key: "log.file.name"] == .string("a.log"))
        #expect(rec.attributes[key: "log.file.path"] == .string(dir.file("a.log")))
        #expect(rec.observedTimeUnixNano > 0 && rec.timeUnixNano == 0)
        dir.append("a.log", " line\n")
        await r.poll()
        #expect(sink.bodies == ["first", "second", "third line"])
        await r.closeFiles()
    }

    @Test func startAtEndSkipsExistingContentOnly() async {
        let dir = TempDir()
        dir.write("a.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir) { $0.startAt = .end }, settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(sink.bodies.isEmpty)
        dir.append("a.log", lines(4...4))
        dir.write("b.log", lines(1...1, prefix: "b"))  // appeared after the first poll: read from its start
        await r.poll()
        #expect(sink.bodies == ["line 4", "b 1"])
        await r.closeFiles()
    }

    @Test func includeAndExcludeGlobs() async {
        let dir = TempDir()
        dir.write("app/x.log", "x\n")
        dir.write("app/deep/er/y.log", "y\n")
        dir.write("app/deep/skip.log", "skip\n")
        dir.write("app/z.txt", "z\n")
        dir.write("app/.hidden.log", "hidden\n")
        let sink = RecordingConsumer()
        let r = FileLogReceiver(
            fileLogConfig(dir, include: ["app/**/*.log"]) { $0.exclude = [dir.path + "/**/skip.log"] }, settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(Set(sink.bodies) == ["x", "y"])
        #expect(FileGlob("/a/**/b/*.log").matches("/a/b/c.log") && FileGlob("/a/**/b/*.log").matches("/a/x/y/b/c.log"))
        #expect(!FileGlob("/a/*.log").matches("/a/x/c.log"))
        await r.closeFiles()
    }

    /// rename + create: the tail written before the rename is read from the renamed file, then the new file.
    @Test func rotationByRenameAndCreate() async {
        let dir = TempDir()
        dir.write("app.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir, include: ["app.log"]), settings: receiverSettings(), next: sink)
        await r.poll()
        dir.append("app.log", lines(4...5))
        dir.rename("app.log", "app.log.1")
        dir.write("app.log", lines(6...7))
        await r.poll()
        dir.append("app.log", lines(8...8))
        await r.poll()
        #expect(sink.bodies == (1...8).map { "line \($0)" })
        await r.closeFiles()
    }

    /// Same, when the glob also matches the rotated files: the renamed file keeps its offset (same inode).
    @Test func rotationByRenameWithRotatedFilesMatched() async {
        let dir = TempDir()
        dir.write("app.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir, include: ["app.log*"]), settings: receiverSettings(), next: sink)
        await r.poll()
        dir.append("app.log", lines(4...5))
        dir.rename("app.log", "app.log.1")
        dir.write("app.log", lines(6...7))
        await r.poll()
        #expect(sink.bodies == (1...7).map { "line \($0)" })
        await r.closeFiles()
    }

    /// copytruncate: the copy continues from the offset already read; the truncated file starts at 0.
    @Test func rotationByCopyTruncate() async {
        let dir = TempDir()
        dir.write("app.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir, include: ["app.log*"]), settings: receiverSettings(), next: sink)
        await r.poll()
        dir.append("app.log", lines(4...5))
        dir.copyTruncate("app.log", to: "app.log.1")
        dir.append("app.log", lines(6...7))
        await r.poll()
        #expect(sink.bodies == (1...7).map { "line \($0)" })
        await r.closeFiles()
    }

    /// A file that shrank is read again from its start.
    @Test func truncatedFileStartsOver() async {
        let dir = TempDir()
        dir.write("a.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir), settings: receiverSettings(), next: sink)
        await r.poll()
        dir.copyTruncate("a.log", to: "old.txt")
        dir.append("a.log", "after\n")
        await r.poll()
        #expect(sink.bodies == ["line 1", "line 2", "line 3", "after"])
        await r.closeFiles()
    }

    /// Stop, append, start again with the same storage: nothing lost or duplicated.
    @Test func restartResumesFromCheckpoint() async throws {
        let dir = TempDir()
        let storage = dir.file("storage")
        dir.write("a.log", lines(1...3))
        dir.write("b.log", lines(1...2, prefix: "b"))
        let sink1 = RecordingConsumer()
        let r1 = FileLogReceiver(fileLogConfig(dir) { $0.storageDirectory = storage }, settings: receiverSettings(), next: sink1)
        try await r1.loadCheckpoints()
        await r1.poll()
        await r1.closeFiles()
        #expect(sink1.bodies == ["line 1", "line 2", "line 3", "b 1", "b 2"])
        dir.append("a.log", lines(4...5))
        dir.append("b.log", lines(3...3, prefix: "b"))
        let sink2 = RecordingConsumer()
        let r2 = FileLogReceiver(fileLogConfig(dir) { $0.storageDirectory = storage }, settings: receiverSettings(), next: sink2)
        try await r2.loadCheckpoints()
        await r2.poll()
        #expect(sink2.bodies == ["line 4", "line 5", "b 3"])
        await r2.closeFiles()
    }

    /// The full component lifecycle: start polls, shutdown finishes and checkpoints, start resumes.
    @Test func startAndShutdownResume() async throws {
        let dir = TempDir()
        let storage = dir.file("storage")
        dir.write("a.log", lines(1...3))
        let config = fileLogConfig(dir) {
            $0.storageDirectory = storage
            $0.pollInterval = .milliseconds(10)
        }
        let sink = RecordingConsumer()
        let r1 = FileLogReceiver(config, settings: receiverSettings(), next: sink)
        try await r1.start()
        #expect(await eventually { sink.bodies.count == 3 })
        await r1.shutdown()
        dir.append("a.log", lines(4...6))
        let r2 = FileLogReceiver(config, settings: receiverSettings(), next: sink)
        try await r2.start()
        #expect(await eventually { sink.bodies.count == 6 })
        try await Task.sleep(for: .milliseconds(50))
        await r2.shutdown()
        #expect(sink.bodies == (1...6).map { "line \($0)" })
    }

    /// At-least-once: a refused batch is not checkpointed and comes again on the next poll.
    @Test func refusedBatchIsReadAgain() async throws {
        let dir = TempDir()
        dir.write("a.log", lines(1...2))
        let sink = RecordingConsumer()
        sink.failNext([.overloaded("full")])
        let storage = dir.file("storage")
        let r = FileLogReceiver(fileLogConfig(dir) { $0.storageDirectory = storage }, settings: receiverSettings(), next: sink)
        try await r.loadCheckpoints()
        await r.poll()
        #expect(sink.bodies.isEmpty)
        let checkpoint = (try? String(contentsOfFile: storage + "/filelog_filelog.json", encoding: .utf8)) ?? ""
        #expect(!checkpoint.contains("\"offset\":14"))
        await r.poll()
        #expect(sink.bodies == ["line 1", "line 2"])
        #expect(try String(contentsOfFile: storage + "/filelog_filelog.json", encoding: .utf8).contains("\"offset\":14"))
        await r.closeFiles()
    }

    /// A refused batch from a file renamed away keeps that file open; it is finished before the new file.
    @Test func refusedBatchOfRotatedFileIsRetriedInOrder() async {
        let dir = TempDir()
        dir.write("app.log", lines(1...3))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir, include: ["app.log"]), settings: receiverSettings(), next: sink)
        await r.poll()
        dir.append("app.log", lines(4...4))
        dir.rename("app.log", "app.log.1")
        dir.write("app.log", lines(5...5))
        sink.failNext([.overloaded("full")])
        await r.poll()
        #expect(sink.bodies == ["line 1", "line 2", "line 3"])
        await r.poll()
        #expect(sink.bodies == (1...5).map { "line \($0)" })
        await r.closeFiles()
    }

    /// A line longer than max_log_size is split into max_log_size pieces.
    @Test func longLineIsSplit() async {
        let dir = TempDir()
        let long = String(repeating: "abcdefghij", count: 5)  // 50 bytes
        dir.write("a.log", "short\n" + long + "\nend\n")
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir) { $0.maxLogSize = 16 }, settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(sink.bodies == ["short", "abcdefghijabcdef", "ghijabcdefghijab", "cdefghijabcdefgh", "ij", "end"])
        await r.closeFiles()
    }

    @Test func multilineLineStartPattern() async throws {
        let dir = TempDir()
        dir.write("a.log", "2024 start one\n  at a\n  at b\n2024 start two\n2024 three\n  tail")
        let clock = ManualClock()
        let sink = RecordingConsumer()
        let r = FileLogReceiver(
            fileLogConfig(dir) { $0.multiline = .lineStart(try! CompiledRegex("^2024 ")) }, settings: receiverSettings(), next: sink, clock: clock)
        await r.poll()
        #expect(sink.bodies == ["2024 start one\n  at a\n  at b", "2024 start two"])
        // The last entry stays open until force_flush_period passes without new bytes.
        clock.advance(by: .milliseconds(499))
        await r.poll()
        #expect(sink.bodies.count == 2)
        clock.advance(by: .milliseconds(1))
        await r.poll()
        #expect(sink.bodies.last == "2024 three\n  tail")
        await r.closeFiles()
    }

    @Test func multilineLineEndPattern() async {
        let dir = TempDir()
        dir.write("a.log", "a\nb;\nc;\nd\n")
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir) { $0.multiline = .lineEnd(try! CompiledRegex(";$")) }, settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(sink.bodies == ["a\nb;", "c;"])
        await r.closeFiles()
    }

    @Test func invalidUTF8IsKeptWithReplacementCharacters() async {
        let dir = TempDir()
        dir.write("a.log", Array("ok ".utf8) + [0xC3, 0x28, 0xFF] + Array(" end\n".utf8))
        let sink = RecordingConsumer()
        let r = FileLogReceiver(fileLogConfig(dir), settings: receiverSettings(), next: sink)
        await r.poll()
        #expect(sink.bodies == ["ok \u{FFFD}(\u{FFFD} end"])
        await r.closeFiles()
        let raw = RecordingConsumer()
        let n = FileLogReceiver(fileLogConfig(dir) { $0.encoding = .nop }, settings: receiverSettings(), next: raw)
        await n.poll()
        #expect(raw.logRecords.first?.body == .bytes(Array("ok ".utf8) + [0xC3, 0x28, 0xFF] + Array(" end".utf8)))
        await n.closeFiles()
    }

    @Test func jsonAndRegexParsersFromYAML() async throws {
        let dir = TempDir()
        dir.write("j.log", #"{"level":"error","msg":"boom","ts":1700000000.5,"n":3,"nested":{"a":[1,true,null]}}"# + "\nnot json\n")
        dir.write("r.log", "2024-11-25 10:20:30.123 WARN disk full\n")
        let (jc, jd) = parseFileLog(
            """
            include: [\(dir.path)/j.log]
            start_at: beginning
            operators:
              - type: json_parser
                timestamp: {parse_from: attributes.ts, layout_type: epoch, layout: s}
                severity: {parse_from: attributes.level}
            """)
        #expect(jd.isEmpty)
        let sink = RecordingConsumer()
        let r = FileLogReceiver(jc, settings: receiverSettings(), next: sink)
        await r.poll()
        let recs = sink.logRecords
        #expect(recs.count == 2)  // on_error: send keeps the unparsable line
        #expect(recs[0].attributes[key: "msg"] == .string("boom") && recs[0].attributes[key: "n"] == .int(3))
        #expect(recs[0].attributes[key: "nested"] == .kvlist([KeyValue("a", .array([.int(1), .bool(true), .empty]))]))
        #expect(recs[0].timeUnixNano == 1_700_000_000_500_000_000)
        #expect(recs[0].severityNumber == .error && recs[0].severityText == "error")
        #expect(recs[1].body == .string("not json") && recs[1].attributes.count == 1)
        await r.closeFiles()

        let (rc, rd) = parseFileLog(
            """
            include: [\(dir.path)/r.log]
            start_at: beginning
            include_file_name: false
            operators:
              - type: regex_parser
                regex: '^(?P<time>\\S+ \\S+) (?P<sev>\\w+) (?P<msg>.*)$'
                timestamp: {parse_from: attributes.time, layout: '%Y-%m-%d %H:%M:%S.%L'}
                severity: {parse_from: attributes.sev}
            """)
        #expect(rd.isEmpty)
        let sink2 = RecordingConsumer()
        let r2 = FileLogReceiver(rc, settings: receiverSettings(), next: sink2)
        await r2.poll()
        let rec = try #require(sink2.logRecords.first)
        #expect(rec.attributes.map(\.key) == ["time", "sev", "msg"])
        #expect(rec.attributes[key: "msg"] == .string("disk full"))
        #expect(rec.timeUnixNano == 1_732_530_030_123_000_000)
        #expect(rec.severityNumber == .warn)
        await r2.closeFiles()
    }

    @Test func configErrors() {
        let (_, d) = parseFileLog(
            """
            include: [relative/*.log]
            storage: file_storage
            start_at: middle
            multiline: {line_start_pattern: "(", line_end_pattern: x}
            operators:
              - {type: regex_parser, regex: "(?P<a>x"}
              - {type: csv_parser}
            encodng: nop
            """)
        let text = d.joined(separator: "\n")
        #expect(text.contains("absolute path glob"))
        #expect(text.contains("storage extensions are not supported"))
        #expect(text.contains("'middle' is not one of"))
        #expect(text.contains("exactly one of line_start_pattern"))
        #expect(text.contains("invalid regular expression"))
        #expect(text.contains("'csv_parser' is not one of"))
        #expect(text.contains("unknown key 'encodng'"))
        let (ok, none) = parseFileLog("include: [/var/log/*.log]")
        #expect(none.isEmpty && ok.startAt == .end && ok.pollInterval == .milliseconds(200) && ok.fingerprintSize == 1024)
        #expect(ok.maxLogSize == 1 << 20 && ok.includeFileName && !ok.includeFilePath)
    }

    @Test func strptimeAndEpochLayouts() throws {
        let l = try StrptimeLayout("%d/%b/%Y:%H:%M:%S %z")
        #expect(l.parse("25/Nov/2024:10:20:30 +0100") == 1_732_526_430 * 1_000_000_000)
        #expect(l.parse("25/Nov/2024:10:20:30") == nil)
        #expect(try StrptimeLayout("%Y-%m-%dT%H:%M:%S.%f%z").parse("2024-11-25T10:20:30.000000123Z") == 1_732_530_030_000_000_123)
        #expect(throws: (any Error).self) { try StrptimeLayout("%Q") }
    }
}
