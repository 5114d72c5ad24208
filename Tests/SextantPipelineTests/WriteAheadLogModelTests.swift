#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing

@testable import SextantPipeline

/// SplitMix64: a tiny seeded generator, so every history can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A fresh empty directory under /tmp, removed (with its files) by `remove()`.
struct ScratchDirectory {
    let path: String

    init(_ prefix: String) {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    func remove() {
        for sub in (try? POSIXFile.list(path)) ?? [] {
            let p = path + "/" + sub
            for f in (try? POSIXFile.list(p)) ?? [] { unlink(p + "/" + f) }
            rmdir(p)
            unlink(p)
        }
        rmdir(path)
    }
}

/// Model-checks `WriteAheadLog` against a plain in-memory model: random histories of append, read,
/// acknowledge (in any order), drop-oldest, sync, clean reopen and crash (the object dropped without
/// closing, then optionally the newest segment's tail cut off or one of its bytes flipped) followed
/// by recovery. After every recovery the log must hand out exactly the records the model predicts —
/// every record not acknowledged before the crash and not destroyed by the damage, in append order,
/// each with its exact payload and its "handed out before" flag — and nothing acknowledged (in order
/// or not) or invented. Byte accounting (`usedBytes`) is checked after every step.
@Suite struct WriteAheadLogModelTests {
    /// One appended record as the model knows it.
    struct Appended {
        var id: UInt64
        var seq: UInt64
        var payload: [UInt8]
        var framed: Int { WriteAheadLog.headerSize + payload.count }
    }

    struct Model {
        /// Every record appended since the last restart or still pending from before, in append order.
        var records: [Appended] = []
        /// Records handed out in this incarnation, in order; `available[0..<readCount]`.
        var available: [Appended] = []
        var readCount = 0
        var acked: Set<UInt64> = []
        /// `readPosition` as last persisted (by next/ack/drop/recovery): ids below it were handed out.
        var persistedRead: UInt64 = 0
        /// The persisted read position found by the last recovery: records below it are flagged redelivered.
        var redeliveredBelow: UInt64 = 0
        var nextID: UInt64 = 0

        var unackedBytes: Int { available.filter { !acked.contains($0.id) }.reduce(0) { $0 + $1.framed } }
        var firstUnreadID: UInt64 { readCount < available.count ? available[readCount].id : nextID }
        /// The persisted watermark: the first record of this incarnation not acknowledged.
        var watermark: UInt64 { available.first { !acked.contains($0.id) }?.id ?? nextID }
    }

    static let seeds: [UInt64] = Array(1...40)

    @Test(arguments: seeds) func randomHistoriesMatchTheModel(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let dir = ScratchDirectory("sextant-wal-model")
        defer { dir.remove() }
        let options = WriteAheadLog.Options(fsync: seed % 8 == 0, segmentSize: 1024 + Int(seed % 4) * 1024)
        var wal: WriteAheadLog? = try WriteAheadLog(directory: dir.path, options: options)
        var model = Model()
        var crashes = 0

        func payload(_ id: UInt64) -> [UInt8] {
            let size = Int.random(in: 0...100, using: &rng) < 90 ? Int.random(in: 0...200, using: &rng) : Int.random(in: 200...3000, using: &rng)
            var p = (0..<8).map { UInt8(truncatingIfNeeded: id >> (8 * $0)) }
            for _ in 0..<size { p.append(UInt8.random(in: 0...255, using: &rng)) }
            return p
        }

        /// Restarts the log and checks that recovery matches the model; `lost` are ids the damage destroyed.
        func restart(lost: Set<UInt64>, damageDetectable: Bool) throws {
            let watermark = model.watermark
            let read = model.persistedRead
            wal = nil
            wal = try WriteAheadLog(directory: dir.path, options: options)
            let report = wal!.report
            let acked = model.acked
            model.records.removeAll { lost.contains($0.id) || $0.id < watermark || acked.contains($0.id) }
            model.available = model.records
            model.readCount = 0
            model.acked = []
            model.redeliveredBelow = read
            model.persistedRead = model.firstUnreadID
            #expect(report.pendingRecords == model.available.count, "seed \(seed): pending after recovery")
            #expect(report.redeliveredRecords == model.available.count { $0.id < read }, "seed \(seed): redelivered after recovery")
            if damageDetectable { #expect(report.corruptions > 0, "seed \(seed): damage not detected") }
            if !damageDetectable { #expect(report.corruptions == 0, "seed \(seed): corruption reported without damage") }
        }

        for step in 0..<400 {
            let op = Int.random(in: 0..<100, using: &rng)
            switch op {
            case 0..<40:
                let id = model.nextID
                let p = payload(id)
                let seq = try wal!.append(p, tag: UInt32(truncatingIfNeeded: id))
                if let last = model.records.last { #expect(seq > last.seq, "seed \(seed) step \(step): sequence numbers must grow") }
                model.nextID += 1
                let a = Appended(id: id, seq: seq, payload: p)
                model.records.append(a)
                model.available.append(a)
            case 40..<65:
                let got = try wal!.next()
                if model.readCount < model.available.count {
                    let want = model.available[model.readCount]
                    model.readCount += 1
                    #expect(got?.seq == want.seq, "seed \(seed) step \(step): next() out of order")
                    #expect(got?.payload == want.payload, "seed \(seed) step \(step): payload differs")
                    #expect(got?.tag == UInt32(truncatingIfNeeded: want.id))
                    #expect(got?.redelivered == (want.id < model.redeliveredBelow), "seed \(seed) step \(step): redelivered flag")
                } else {
                    #expect(got == nil, "seed \(seed) step \(step): invented record \(String(describing: got?.seq))")
                }
                model.persistedRead = model.firstUnreadID
            case 65..<85:
                let candidates = model.available[0..<model.readCount].filter { !model.acked.contains($0.id) }
                guard let pick = candidates.randomElement(using: &rng) else { continue }
                try wal!.ack(pick.seq)
                model.acked.insert(pick.id)
                model.persistedRead = model.firstUnreadID
            case 85..<88:
                let tag = try wal!.dropOldestUnread()
                if model.readCount < model.available.count {
                    let dropped = model.available[model.readCount]
                    model.readCount += 1
                    model.acked.insert(dropped.id)
                    #expect(tag == UInt32(truncatingIfNeeded: dropped.id))
                } else {
                    #expect(tag == nil)
                }
                model.persistedRead = model.firstUnreadID
            case 88..<91:
                try wal!.sync()
            case 91..<93:
                try wal!.close()
                try restart(lost: [], damageDetectable: false)
            default:
                crashes += 1
                let (lost, detectable) = try damageNewestSegment(dir.path, model: model, rng: &rng, wal: &wal)
                try restart(lost: lost, damageDetectable: detectable)
            }
            #expect(wal!.usedBytes == model.unackedBytes, "seed \(seed) step \(step): usedBytes")
        }
        // Finally: drain and acknowledge everything; only the active segment may remain.
        for r in model.available[0..<model.readCount] where !model.acked.contains(r.id) { try wal!.ack(r.seq) }
        while let r = try wal!.next() { try wal!.ack(r.seq) }
        #expect(wal!.usedBytes == 0)
        #expect(try POSIXFile.list(dir.path).filter { $0.hasSuffix(".wal") }.count == 1)
        #expect(crashes > 0)
    }

    @Test func anUnreadableCursorMeansRedeliveryNotLoss() throws {
        let dir = ScratchDirectory("sextant-wal-cursor")
        defer { dir.remove() }
        var wal: WriteAheadLog? = try WriteAheadLog(directory: dir.path)
        for i in 0..<5 { try wal!.append([UInt8(i)], tag: 0) }
        for _ in 0..<3 { _ = try wal!.next() }
        try wal!.ack(0)
        try wal!.ack(1)
        wal = nil  // crash
        let fd = try POSIXFile.open(dir.path + "/cursor", create: false)
        try POSIXFile.write(fd, dir.path + "/cursor", [UInt8](repeating: 0xA5, count: 64), offset: 0)
        POSIXFile.close(fd)
        wal = try WriteAheadLog(directory: dir.path)
        #expect(wal!.report.corruptions == 1)
        #expect(wal!.report.pendingRecords == 5)  // the acknowledged two come back: duplicates, not loss
        var payloads: [[UInt8]] = []
        while let r = try wal!.next() { payloads.append(r.payload) }
        #expect(payloads == [[0], [1], [2], [3], [4]])
    }

    /// Drops the log (a crash), then damages the newest segment file: nothing (1/2), its tail cut off
    /// (1/4) or one byte flipped (1/4). Returns the ids destroyed and whether recovery must notice.
    func damageNewestSegment(
        _ dir: String, model: Model, rng: inout SeededGenerator, wal: inout WriteAheadLog?
    ) throws -> (Set<UInt64>, Bool) {
        wal = nil
        let kind = Int.random(in: 0..<4, using: &rng)
        guard kind >= 2, let name = try POSIXFile.list(dir).filter({ $0.hasSuffix(".wal") }).max() else { return ([], false) }
        let path = dir + "/" + name
        let fd = try POSIXFile.open(path, create: false)
        defer { close(fd) }
        let size = Int(try POSIXFile.size(fd, path))
        // The newest segment holds the most recent records: walk back over their sizes.
        var inFile: [(Appended, start: Int)] = []
        var end = size
        for r in model.records.reversed() {
            if end == WriteAheadLog.magic.count || end - r.framed < WriteAheadLog.magic.count { break }
            end -= r.framed
            inFile.insert((r, end), at: 0)
        }
        if end != WriteAheadLog.magic.count { inFile = [] }  // the records in this file are not (all) known: leave it
        guard size > 0 else { return ([], false) }
        if kind == 2 {
            let cut = Int.random(in: 1...min(size, 300), using: &rng)
            try POSIXFile.truncate(fd, path, to: Int64(size - cut))
            let lost = Set(inFile.filter { $0.start + $0.0.framed > size - cut }.map(\.0.id))
            let onBoundary = size - cut == WriteAheadLog.magic.count || inFile.contains { $0.start + $0.0.framed == size - cut }
            // A cut inside the magic leaves a short file: damage too, unless nothing is left at all.
            let detectable = size - cut == 0 ? false : !onBoundary || size - cut < WriteAheadLog.magic.count
            return (lost, detectable)
        }
        let at = Int.random(in: 0..<size, using: &rng)
        var byte = try POSIXFile.read(fd, path, offset: Int64(at), count: 1)
        byte[0] ^= UInt8.random(in: 1...255, using: &rng)
        try POSIXFile.write(fd, path, byte, offset: Int64(at))
        if at < WriteAheadLog.magic.count { return (Set(inFile.map(\.0.id)), true) }
        return (Set(inFile.filter { $0.start <= at && at < $0.start + $0.0.framed }.map(\.0.id)), true)
    }
}
