#if canImport(Glibc)
import Glibc
#endif
import Logging
import SextantExporters
import SextantModel
import SextantOTLP
import SextantPipeline
import SextantTesting
import Testing

@Suite struct FileExporterTests {
    func tempDir() -> String {
        var template = Array("/tmp/sextant-file-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!
        return String(cString: p)
    }

    func exporter(_ yaml: String) throws -> FileExporter {
        let d = Diagnostics()
        let node = try #require(YAMLLoader.parse(yaml, file: "t.yaml", diagnostics: d))
        var r = ConfigReader(node, path: "exporters::file", diagnostics: d)
        let config = FileExporterFactory().parseConfig(&r)
        r.finish()
        #expect(d.errors.isEmpty, "\(d.errors)")
        let settings = ComponentSettings(id: ComponentID(type: "file"), kind: .exporter, logger: Logger(label: "t"), telemetry: SelfTelemetry())
        return try FileExporterFactory().makeExporter(settings, config: config, signals: [.traces]) as! FileExporter
    }

    func files(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    @Test func writesOneJSONLinePerBatchThatDecodes() async throws {
        let dir = tempDir()
        let e = try exporter("path: \(dir)/sub/out.jsonl\nsending_queue: {num_consumers: 4}")
        try await e.start()
        for i in 0..<20 { try await e.consume(TestData.traces(5, firstSpan: UInt64(i * 5 + 1))) }
        await e.shutdown()
        let bytes = try #require(FileText.readBytes("\(dir)/sub/out.jsonl"))
        let lines = bytes.split(separator: UInt8(ascii: "\n"))
        #expect(lines.count == 20)
        var ids: [UInt64] = []
        for line in lines { ids += try OTLPJSON.decodeTraces(Array(line)).data.resourceSpans[0].scopeSpans[0].spans.map(\.spanID.value) }
        #expect(ids.sorted() == Array(1...100))
    }

    @Test func protoFormatIsLengthPrefixed() async throws {
        let dir = tempDir()
        let e = try exporter("path: \(dir)/out.binpb\nformat: proto")
        try await e.start()
        try await e.consume(TestData.traces(3))
        await e.shutdown()
        let bytes = try #require(FileText.readBytes("\(dir)/out.binpb"))
        let n = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        #expect(bytes.count == n + 4)
        #expect(try OTLPProtobuf.decodeTraces(Array(bytes[4...])).data.spanCount == 3)
    }

    @Test func rotatesBySizeAndKeepsMaxBackups() async throws {
        let dir = tempDir()
        let e = try exporter(
            "path: \(dir)/t.jsonl\nrotation: {max_megabytes: 1, max_backups: 2}\nsending_queue: {enabled: false}")
        try await e.start()
        // ~100 KiB per batch → a rotation about every 10 batches.
        let big = String(repeating: "x", count: 100 << 10)
        for i in 0..<45 {
            guard case .traces(var t) = TestData.traces(1, firstSpan: UInt64(i + 1)) else { return }
            t.resourceSpans[0].scopeSpans[0].spans[0].name = big
            try await e.consume(.traces(t))
            try await Task.sleep(for: .milliseconds(2))  // distinct millisecond timestamps in backup names
        }
        await e.shutdown()
        let names = files(dir)
        #expect(names.contains("t.jsonl"))
        let backups = names.filter { $0 != "t.jsonl" }
        #expect(backups.count == 2, "\(names)")
        #expect(backups.allSatisfy { $0.hasPrefix("t-") && $0.hasSuffix(".jsonl") })
        var st = stat()
        for n in names {
            stat("\(dir)/\(n)", &st)
            #expect(Int(st.st_size) <= 1 << 20)
        }
    }
}
