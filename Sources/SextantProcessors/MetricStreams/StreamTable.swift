/// Per-stream state with bounded memory: entries not seen for `expiry` are forgotten, and at most
/// `maxStreams` entries are kept (new streams beyond it are refused, so that streams already
/// tracked keep their continuity).
///
/// Expiry is exact on lookup (an entry idle for longer than `expiry` reads as absent) and memory is
/// reclaimed by a sweep that runs at most once per `sweepInterval`, from the caller's own
/// operations, so no background task is needed and tests drive time with a manual clock.
struct StreamTable<Instant: InstantProtocol, Value> where Instant.Duration == Duration {
    private struct Entry {
        var value: Value
        var lastSeen: Instant
    }

    private var entries: [StreamKey: Entry] = [:]
    /// 0 means no limit.
    let maxStreams: Int
    /// `.zero` means entries never expire.
    let expiry: Duration
    private var lastSweep: Instant?

    init(maxStreams: Int, expiry: Duration) {
        self.maxStreams = maxStreams
        self.expiry = expiry
    }

    var count: Int { entries.count }

    /// How often a sweep may run: often enough that expired entries do not linger much past their
    /// expiry, rarely enough that sweeping a large table stays negligible.
    private var sweepInterval: Duration {
        min(expiry, max(expiry / 8, .seconds(1)))
    }

    private func expired(_ e: Entry, now: Instant) -> Bool {
        expiry > .zero && e.lastSeen.duration(to: now) > expiry
    }

    /// The live value for `key`; an expired entry is removed and reads as `nil`.
    mutating func value(for key: StreamKey, now: Instant) -> Value? {
        guard let e = entries[key] else { return nil }
        if expired(e, now: now) {
            entries[key] = nil
            return nil
        }
        return e.value
    }

    /// Whether `key` has a live entry.
    mutating func contains(_ key: StreamKey, now: Instant) -> Bool { value(for: key, now: now) != nil }

    /// Stores `value` for `key` and marks it seen. Returns `false` (storing nothing) when `key` is
    /// new and the table is full even after removing expired entries.
    @discardableResult
    mutating func set(_ key: StreamKey, _ value: Value, now: Instant) -> Bool {
        if entries[key] == nil, maxStreams > 0, entries.count >= maxStreams {
            sweep(now: now)
            if entries.count >= maxStreams { return false }
        }
        entries[key] = Entry(value: value, lastSeen: now)
        return true
    }

    /// Forgets `key`; returns its value.
    @discardableResult
    mutating func remove(_ key: StreamKey) -> Value? { entries.removeValue(forKey: key)?.value }

    /// Removes expired entries when a sweep is due (at most once per interval), calling `onExpire`
    /// with each removed value. Returns how many were removed.
    @discardableResult
    mutating func sweep(now: Instant, onExpire: (StreamKey, Value) -> Void = { _, _ in }) -> Int {
        guard expiry > .zero else { return 0 }
        if let last = lastSweep, last.duration(to: now) < sweepInterval { return 0 }
        lastSweep = now
        let gone = entries.compactMap { k, e in expired(e, now: now) ? k : nil }
        for k in gone { onExpire(k, entries.removeValue(forKey: k)!.value) }
        return gone.count
    }
}
