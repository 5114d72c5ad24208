#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What opening a write-ahead log found on disk.
public struct WALRecoveryReport: Sendable, Equatable {
    /// Records waiting for delivery (appended, not acknowledged).
    public var pendingRecords = 0
    /// Of those, records already handed out before the restart: delivered again, possibly duplicated downstream.
    public var redeliveredRecords = 0
    /// Damaged regions detected and skipped: torn or corrupt records, bad segment headers, an unreadable cursor.
    public var corruptions = 0
    /// Bytes in the skipped regions.
    public var skippedBytes = 0
    /// Records known to be lost in skipped regions (sequence gaps between intact records). Records in a
    /// torn tail leave no trace and are not counted here; with `fsync` none of them was acknowledged.
    public var lostRecords = 0

    public init() {}
}

/// A single-directory write-ahead log of opaque records: the on-disk half of the durable sending queue.
///
/// Layout of `directory`:
/// - `NNNNNNNNNNNNNNNNNNNN.wal`, segments named after their first sequence number (20 digits, so names
///   sort numerically): an 8-byte magic, then records `[u32 length][u32 crc32c][u64 seq][u32 tag][payload]`
///   (little-endian; the CRC-32C covers length, seq, tag and payload).
/// - `cursor`: two 32-byte slots `[u64 generation][u64 acked][u64 read][u32 crc32c][u32 0]` written
///   alternately, so a torn cursor write leaves the previous one readable. `acked` is the first sequence
///   number not yet acknowledged (everything below is done), `read` the first not yet handed out.
/// - `acks`: `[u64 seq][u32 crc32c]` for each record acknowledged out of order (above the watermark,
///   e.g. by a parallel consumer or `drop_oldest` while an older record is still in flight), so a
///   restart does not deliver it again; emptied whenever no such record is left.
/// - `LOCK`: held with `flock` while open, so two processes never share a queue.
///
/// Appends go straight to the file with `pwrite` (no user-space buffer), so after `kill -9` everything
/// appended is in the page cache; `sync()` makes it survive a power loss too. Recovery scans every
/// segment, verifies each record, skips and counts damaged regions (resynchronising on the next intact
/// record), truncates a torn tail, and resumes after the acknowledged watermark. It never refuses to
/// open because of damaged data; only I/O errors (permissions, a locked directory) fail `init`.
///
/// Not thread-safe: the durable queue confines it to one I/O thread.
final class WriteAheadLog {
    struct Options: Sendable {
        /// `fsync` in `sync()`, at segment roll-over and after recovery; off leaves durability to the OS.
        var fsync = true
        /// A segment is closed once it holds this many bytes and a new one is started.
        var segmentSize = 8 << 20
    }

    /// A record handed out by `next()`.
    struct Record {
        var seq: UInt64
        var tag: UInt32
        var payload: [UInt8]
        /// Handed out before the last restart too.
        var redelivered: Bool
    }

    static let headerSize = 20
    static let magic: [UInt8] = Array("SXTWAL01".utf8)
    private static let cursorSlotSize = 32
    /// Bounds the length a (possibly garbage) header may claim before we even look at the checksum.
    static let maxRecordSize = 1 << 30

    private struct Entry {
        var seq: UInt64
        var tag: UInt32
        var segment: UInt64
        var offset: Int64
        var length: Int
        var acked = false
        var redelivered = false
        var framed: Int { WriteAheadLog.headerSize + length }
    }

    private struct Segment {
        var firstSeq: UInt64
        var path: String
        var fd: Int32
        var size: Int64
        var lastSeq: UInt64?
    }

    let directory: String
    private let options: Options
    private var lockFD: Int32 = -1
    private var cursorFD: Int32 = -1
    private var acksFD: Int32 = -1
    private var acksSize: Int64 = 0
    /// The largest sequence number in `acks` (it may be emptied once the watermark is past it).
    private var acksMax: UInt64?
    /// Entries at or after `head` that are acknowledged (acknowledged out of order).
    private var pendingAcks = 0
    private var cursorGeneration: UInt64 = 0
    private var segments: [Segment] = []
    private var entries: [Entry] = []
    private var head = 0
    private var readIndex = 0
    private var unsynced = false
    private var isClosed = false

    /// The sequence number the next append gets.
    private(set) var nextSeq: UInt64 = 0
    /// Framed bytes of the records not yet acknowledged (what `max_size` bounds).
    private(set) var usedBytes = 0
    /// What recovery found.
    private(set) var report = WALRecoveryReport()

    /// The first sequence number not yet acknowledged: everything below it is done.
    var ackedWatermark: UInt64 { head < entries.count ? entries[head].seq : nextSeq }
    private var readPosition: UInt64 { readIndex < entries.count ? entries[readIndex].seq : nextSeq }
    private var cursorPath: String { directory + "/cursor" }
    private var acksPath: String { directory + "/acks" }
    private static let ackRecordSize = 12

    /// Opens (creating if needed) the log in `directory` and recovers its state.
    init(directory: String, options: Options = Options()) throws {
        self.directory = directory
        self.options = options
        do {
            try POSIXFile.makeDirectories(directory)
            lockFD = try POSIXFile.open(directory + "/LOCK", create: true)
            guard POSIXFile.tryLock(lockFD) else { throw StorageError("\(directory) is in use by another process (LOCK is held)") }
            cursorFD = try POSIXFile.open(cursorPath, create: true)
            acksFD = try POSIXFile.open(acksPath, create: true)
            try recover()
        } catch {
            closeFiles()
            throw error
        }
    }

    /// Closes the files without syncing or writing anything: to the files, dropping the object is a crash.
    deinit { closeFiles() }

    private func closeFiles() {
        for s in segments { POSIXFile.close(s.fd) }
        segments = []
        if cursorFD >= 0 { POSIXFile.close(cursorFD) }
        if acksFD >= 0 { POSIXFile.close(acksFD) }
        acksFD = -1
        if lockFD >= 0 { POSIXFile.close(lockFD) }
        cursorFD = -1
        lockFD = -1
    }

    /// Syncs and closes. The object must not be used afterwards.
    func close() throws {
        guard !isClosed else { return }
        isClosed = true
        defer { closeFiles() }
        try sync()
    }

    // MARK: Appending

    /// Appends one record, returning its sequence number. On a write error (e.g. a full disk) the
    /// segment is cut back to its previous end, so no partial record stays behind, and the error is thrown.
    @discardableResult
    func append(_ payload: [UInt8], tag: UInt32) throws -> UInt64 {
        precondition(!isClosed, "append on a closed write-ahead log")
        guard payload.count <= Self.maxRecordSize else {
            throw StorageError("record of \(payload.count) bytes exceeds the \(Self.maxRecordSize)-byte limit")
        }
        let framed = Int64(Self.headerSize + payload.count)
        if segments[segments.count - 1].size + framed > Int64(options.segmentSize)
            && segments[segments.count - 1].lastSeq != nil
        {
            try rollSegment()
        }
        let seq = nextSeq
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(framed))
        Self.appendHeader(&bytes, length: payload.count, seq: seq, tag: tag)
        bytes += payload
        let crc = bytes.withUnsafeBytes { b in
            CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: b[0..<4])), UnsafeRawBufferPointer(rebasing: b[8...]))
        }
        Self.put32(&bytes, at: 4, crc)
        let i = segments.count - 1
        let offset = segments[i].size
        do {
            try POSIXFile.write(segments[i].fd, segments[i].path, bytes, offset: offset)
        } catch {
            try? POSIXFile.truncate(segments[i].fd, segments[i].path, to: offset)
            throw error
        }
        segments[i].size += framed
        segments[i].lastSeq = seq
        entries.append(Entry(seq: seq, tag: tag, segment: segments[i].firstSeq, offset: offset, length: payload.count))
        usedBytes += Int(framed)
        nextSeq += 1
        unsynced = true
        return seq
    }

    /// Makes every append so far durable (a no-op without `fsync` or when nothing changed).
    func sync() throws {
        guard unsynced else { return }
        if options.fsync, let s = segments.last { try POSIXFile.sync(s.fd, s.path) }
        unsynced = false
    }

    private func rollSegment() throws {
        try sync()
        try createSegment(firstSeq: nextSeq)
    }

    private func createSegment(firstSeq: UInt64) throws {
        let path = segmentPath(firstSeq)
        POSIXFile.remove(path)
        let fd = try POSIXFile.open(path, create: true)
        do {
            try POSIXFile.write(fd, path, Self.magic, offset: 0)
            if options.fsync {
                try POSIXFile.sync(fd, path)
                try POSIXFile.syncDirectory(directory)
            }
        } catch {
            POSIXFile.close(fd)
            POSIXFile.remove(path)
            throw error
        }
        segments.append(Segment(firstSeq: firstSeq, path: path, fd: fd, size: Int64(Self.magic.count), lastSeq: nil))
    }

    private func segmentPath(_ firstSeq: UInt64) -> String {
        let digits = String(firstSeq)
        return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".wal"
    }

    // MARK: Reading and acknowledging

    /// The oldest record not yet handed out, read back from disk and verified; `nil` when all were.
    /// A record whose bytes no longer verify (damaged after it was written) is skipped and counted.
    func next() throws -> Record? {
        while readIndex < entries.count {
            let e = entries[readIndex]
            var bytes: [UInt8] = []
            if let s = segments.first(where: { $0.firstSeq == e.segment }) {
                bytes = try POSIXFile.read(s.fd, s.path, offset: e.offset, count: e.framed)
            }
            readIndex += 1
            if let parsed = Self.parse(bytes, at: 0, minSeq: e.seq), parsed.seq == e.seq, parsed.length == e.length {
                try writeCursor()
                return Record(seq: e.seq, tag: e.tag, payload: Array(bytes[Self.headerSize...]), redelivered: e.redelivered)
            }
            report.corruptions += 1
            report.skippedBytes += e.framed
            report.lostRecords += 1
            try ack(e.seq)
        }
        return nil
    }

    /// Marks a handed-out record as done. Out-of-order acknowledgements are kept in memory; the
    /// persisted watermark advances over the contiguous prefix, and segments entirely below it are deleted.
    func ack(_ seq: UInt64) throws {
        guard let i = index(of: seq), i < readIndex, !entries[i].acked else { return }
        entries[i].acked = true
        usedBytes -= entries[i].framed
        pendingAcks += 1
        while head < entries.count && entries[head].acked {
            head += 1
            pendingAcks -= 1
        }
        if i >= head {
            try appendAck(seq)
        } else if pendingAcks == 0, acksSize > 0, ackedWatermark > acksMax ?? 0 {
            try POSIXFile.truncate(acksFD, acksPath, to: 0)
            acksSize = 0
            acksMax = nil
        }
        if head > 4096 && head * 2 > entries.count {
            entries.removeFirst(head)
            readIndex -= head
            head = 0
        }
        try writeCursor()
        let watermark = ackedWatermark
        while segments.count > 1, segments[0].lastSeq.map({ $0 < watermark }) ?? true {
            POSIXFile.close(segments[0].fd)
            POSIXFile.remove(segments[0].path)
            segments.removeFirst()
        }
    }

    /// Gives up the oldest record not yet handed out (`when_full: drop_oldest`), returning its tag.
    func dropOldestUnread() throws -> UInt32? {
        guard readIndex < entries.count else { return nil }
        let e = entries[readIndex]
        readIndex += 1
        try ack(e.seq)
        return e.tag
    }

    private func index(of seq: UInt64) -> Int? {
        var lo = head
        var hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].seq < seq { lo = mid + 1 } else { hi = mid }
        }
        return lo < entries.count && entries[lo].seq == seq ? lo : nil
    }

    private func appendAck(_ seq: UInt64) throws {
        var b: [UInt8] = []
        Self.append64(&b, seq)
        Self.append32(&b, CRC32C.checksum(b))
        try POSIXFile.write(acksFD, acksPath, b, offset: acksSize)
        acksSize += Int64(Self.ackRecordSize)
        acksMax = max(acksMax ?? 0, seq)
    }

    /// The out-of-order acknowledgements on disk. A torn last record only means one record is
    /// delivered again, so it is not counted as damage.
    private func readAcks() throws -> Set<UInt64> {
        let size = try POSIXFile.size(acksFD, acksPath)
        let bytes = try POSIXFile.read(acksFD, acksPath, offset: 0, count: Int(size))
        var out: Set<UInt64> = []
        var o = 0
        while o + Self.ackRecordSize <= bytes.count {
            if CRC32C.checksum(bytes[o..<(o + 8)]) == Self.get32(bytes, o + 8) { out.insert(Self.get64(bytes, o)) }
            o += Self.ackRecordSize
        }
        acksSize = Int64(o)
        acksMax = out.max()
        if o != bytes.count { try POSIXFile.truncate(acksFD, acksPath, to: acksSize) }
        return out
    }

    // MARK: Cursor

    private func writeCursor() throws {
        cursorGeneration += 1
        var b: [UInt8] = []
        b.reserveCapacity(Self.cursorSlotSize)
        Self.append64(&b, cursorGeneration)
        Self.append64(&b, ackedWatermark)
        Self.append64(&b, readPosition)
        Self.append32(&b, CRC32C.checksum(b))
        Self.append32(&b, 0)
        try POSIXFile.write(cursorFD, cursorPath, b, offset: Int64(cursorGeneration % 2) * Int64(Self.cursorSlotSize))
    }

    /// The newest intact cursor slot, `nil` for a fresh file, or `.corrupt`.
    private enum CursorState {
        case fresh
        case valid(generation: UInt64, acked: UInt64, read: UInt64)
        case corrupt
    }

    private func readCursor() throws -> CursorState {
        let bytes = try POSIXFile.read(cursorFD, cursorPath, offset: 0, count: 2 * Self.cursorSlotSize)
        if bytes.allSatisfy({ $0 == 0 }) { return .fresh }
        var best: (UInt64, UInt64, UInt64)?
        for slot in 0..<2 {
            let o = slot * Self.cursorSlotSize
            guard bytes.count >= o + Self.cursorSlotSize else { continue }
            let crc = Self.get32(bytes, o + 24)
            guard CRC32C.checksum(bytes[o..<(o + 24)]) == crc else { continue }
            let g = Self.get64(bytes, o)
            if g > (best?.0 ?? 0) { best = (g, Self.get64(bytes, o + 8), Self.get64(bytes, o + 16)) }
        }
        guard let best else { return .corrupt }
        return .valid(generation: best.0, acked: best.1, read: best.2)
    }

    // MARK: Recovery

    private func recover() throws {
        var acked: UInt64 = 0
        var read: UInt64 = 0
        switch try readCursor() {
        case .fresh: break
        case .valid(let g, let a, let r):
            cursorGeneration = g
            acked = a
            read = r
        case .corrupt:
            // Everything still on disk is delivered again: duplicates, never loss.
            report.corruptions += 1
            report.skippedBytes += 2 * Self.cursorSlotSize
        }
        let ackedAbove = try readAcks().filter { $0 >= acked }
        var floor = max(acked, read)
        var lastValid: UInt64?
        let names = try POSIXFile.list(directory).compactMap { name -> UInt64? in
            if name.hasSuffix(".wal.tmp") { POSIXFile.remove(directory + "/" + name) }  // an interrupted rewrite
            guard name.hasSuffix(".wal"), name.utf8.count == 24 else { return nil }
            return UInt64(name.dropLast(4))
        }.sorted()
        for first in names {
            floor = max(floor, first)
            let path = segmentPath(first)
            let fd = try POSIXFile.open(path, create: false)
            let size = try POSIXFile.size(fd, path)
            let bytes = try POSIXFile.read(fd, path, offset: 0, count: Int(size))
            guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
                if !bytes.isEmpty {
                    report.corruptions += 1
                    report.skippedBytes += bytes.count
                }
                POSIXFile.close(fd)
                POSIXFile.remove(path)
                continue
            }
            var offset = Self.magic.count
            var live: [Entry] = []
            var skipped = false
            var damaged = false
            while offset < bytes.count {
                let minSeq = max(first, lastValid.map { $0 + 1 } ?? 0)
                if let r = Self.parse(bytes, at: offset, minSeq: minSeq) {
                    if skipped, let lastValid {
                        // Sequence numbers skipped over inside a damaged region were records; count the live ones.
                        let from = max(lastValid + 1, acked)
                        if r.seq > from { report.lostRecords += Int(r.seq - from) }
                    }
                    skipped = false
                    if r.seq >= acked && !ackedAbove.contains(r.seq) {
                        live.append(
                            Entry(seq: r.seq, tag: r.tag, segment: first, offset: Int64(offset), length: r.length, redelivered: r.seq < read))
                    }
                    lastValid = r.seq
                    offset += Self.headerSize + r.length
                    continue
                }
                report.corruptions += 1
                skipped = true
                damaged = true
                var resume = offset + 1
                while resume < bytes.count && Self.parse(bytes, at: resume, minSeq: minSeq) == nil { resume += 1 }
                report.skippedBytes += resume - offset
                offset = resume
            }
            guard let segmentLast = live.last?.seq else {
                POSIXFile.close(fd)
                POSIXFile.remove(path)
                continue
            }
            if damaged {
                // Rewrite the segment with its intact live records only, so the damage is counted once
                // and not again at every later start.
                POSIXFile.close(fd)
                let (newFD, moved) = try rewriteSegment(path, bytes, live)
                live = moved
                segments.append(Segment(firstSeq: first, path: path, fd: newFD, size: try POSIXFile.size(newFD, path), lastSeq: segmentLast))
            } else {
                segments.append(Segment(firstSeq: first, path: path, fd: fd, size: Int64(bytes.count), lastSeq: segmentLast))
            }
            entries += live
            usedBytes += live.reduce(0) { $0 + $1.framed }
        }
        // Never reuse a sequence number the cursor has seen: a record cut off by a torn tail may have
        // been acknowledged, and a new record under its number would be taken as acknowledged too.
        nextSeq = max(floor, lastValid.map { $0 + 1 } ?? 0, ackedAbove.max().map { $0 + 1 } ?? 0)
        if let m = acksMax, ackedWatermark > m {
            try POSIXFile.truncate(acksFD, acksPath, to: 0)
            acksSize = 0
            acksMax = nil
        }
        try createSegment(firstSeq: nextSeq)
        report.pendingRecords = entries.count
        report.redeliveredRecords = entries.count { $0.redelivered }
        try writeCursor()
        if options.fsync {
            try POSIXFile.sync(cursorFD, cursorPath)
            try POSIXFile.syncDirectory(directory)
        }
    }

    /// Replaces the segment at `path` with the magic and `live`'s records copied from `bytes`
    /// (write to a temporary file, sync, rename), returning the new descriptor and the moved entries.
    private func rewriteSegment(_ path: String, _ bytes: [UInt8], _ live: [Entry]) throws -> (Int32, [Entry]) {
        var out = Self.magic
        var moved = live
        for i in moved.indices {
            let from = Int(moved[i].offset)
            moved[i].offset = Int64(out.count)
            out += bytes[from..<(from + moved[i].framed)]
        }
        let tmp = path + ".tmp"
        POSIXFile.remove(tmp)
        let fd = try POSIXFile.open(tmp, create: true)
        do {
            try POSIXFile.write(fd, tmp, out, offset: 0)
            if options.fsync { try POSIXFile.sync(fd, tmp) }
            try POSIXFile.rename(tmp, to: path)
            if options.fsync { try POSIXFile.syncDirectory(directory) }
        } catch {
            POSIXFile.close(fd)
            POSIXFile.remove(tmp)
            throw error
        }
        return (fd, moved)
    }

    // MARK: Encoding

    /// The record at `offset` if its header is plausible (sequence number at least `minSeq`, length
    /// within the buffer) and its checksum matches.
    private static func parse(_ bytes: [UInt8], at offset: Int, minSeq: UInt64) -> (seq: UInt64, tag: UInt32, length: Int)? {
        guard bytes.count - offset >= headerSize else { return nil }
        let length = Int(get32(bytes, offset))
        guard length <= bytes.count - offset - headerSize else { return nil }
        let seq = get64(bytes, offset + 8)
        guard seq >= minSeq, seq - minSeq < 1 << 40 else { return nil }
        let crc = bytes.withUnsafeBytes { b in
            CRC32C.update(
                CRC32C.update(0, UnsafeRawBufferPointer(rebasing: b[offset..<(offset + 4)])),
                UnsafeRawBufferPointer(rebasing: b[(offset + 8)..<(offset + headerSize + length)]))
        }
        guard crc == get32(bytes, offset + 4) else { return nil }
        return (seq, get32(bytes, offset + 16), length)
    }

    private static func appendHeader(_ b: inout [UInt8], length: Int, seq: UInt64, tag: UInt32) {
        append32(&b, UInt32(length))
        append32(&b, 0)  // checksum, filled in once the payload is there
        append64(&b, seq)
        append32(&b, tag)
    }

    private static func append32(_ b: inout [UInt8], _ v: UInt32) {
        for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }

    private static func append64(_ b: inout [UInt8], _ v: UInt64) {
        for i in 0..<8 { b.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }

    private static func put32(_ b: inout [UInt8], at o: Int, _ v: UInt32) {
        for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    private static func get32(_ b: [UInt8], _ o: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(b[o + i]) << (8 * i) }
        return v
    }

    private static func get64(_ b: [UInt8], _ o: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(b[o + i]) << (8 * i) }
        return v
    }
}
