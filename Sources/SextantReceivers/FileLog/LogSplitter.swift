/// Cuts file bytes into log entries, as the OTel filelog receiver's split functions do:
/// - one entry per LF-terminated line (a CR before the LF is dropped; empty lines are skipped);
/// - a line longer than `maxLogSize` is split into pieces of `maxLogSize` bytes (each its own entry);
/// - with `multiline`, lines are joined (with their original separators) into entries that begin at a
///   line matching `line_start_pattern` or end at one matching `line_end_pattern`; an entry that would
///   grow past `maxLogSize` is emitted as it stands;
/// - an unterminated last line (and an open multiline entry) is held back unless `flushTail`.
struct LogSplitter: Sendable {
    let maxLogSize: Int
    let multiline: FileLogReceiverConfig.Multiline?

    /// The entries found in `data` (at most `maxEntries`), as ranges of `data`, and how many leading
    /// bytes they account for: everything before `consumed` is emitted or skipped, nothing after it is.
    func split(_ data: UnsafeBufferPointer<UInt8>, flushTail: Bool, maxEntries: Int) -> (entries: [Range<Int>], consumed: Int) {
        var entries: [Range<Int>] = []
        var consumed = 0
        var record: (start: Int, end: Int, next: Int)?
        var pos = 0
        func emit() {
            if let r = record {
                entries.append(r.start..<r.end)
                consumed = r.next
                record = nil
            }
        }
        while entries.count < maxEntries && pos < data.count {
            let searchEnd = min(data.count, pos + maxLogSize + 1)
            var lineEnd: Int
            var next: Int
            var terminated = false
            if let nl = firstLF(data, pos, searchEnd) {
                lineEnd = nl
                next = nl + 1
                terminated = true
            } else if data.count - pos >= maxLogSize {
                lineEnd = pos + maxLogSize
                next = lineEnd
            } else if flushTail {
                lineEnd = data.count
                next = data.count
            } else {
                break
            }
            if terminated && lineEnd > pos && data[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            switch multiline {
            case nil:
                if lineEnd > pos { entries.append(pos..<lineEnd) }
                consumed = next
            case .lineStart(let re)?:
                if record != nil && re.contains(text(data, pos, lineEnd)) { emit() }
                if let r = record, lineEnd - r.start > maxLogSize { emit() }
                if entries.count >= maxEntries { break }
                if record == nil { record = (pos, lineEnd, next) } else { record!.end = lineEnd; record!.next = next }
            case .lineEnd(let re)?:
                if let r = record, lineEnd - r.start > maxLogSize { emit() }
                if entries.count >= maxEntries { break }
                if record == nil { record = (pos, lineEnd, next) } else { record!.end = lineEnd; record!.next = next }
                if re.contains(text(data, pos, lineEnd)) { emit() }
            }
            pos = next
        }
        if flushTail && pos >= data.count && entries.count < maxEntries { emit() }
        return (entries, consumed)
    }

    private func firstLF(_ data: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        var i = from
        while i < to {
            if data[i] == 0x0A { return i }
            i += 1
        }
        return nil
    }

    private func text(_ data: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: data[from..<to]), as: UTF8.self)
    }
}
