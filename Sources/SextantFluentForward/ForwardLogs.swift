import SextantModel

/// The mapping between Forward events and OTLP log records.
///
/// Inbound (as the OTel Collector's `fluentforward` receiver): the record's `log` value becomes the
/// body, or its `message` value when there is no `log` (the other one, if both exist, stays an
/// attribute, so nothing is lost); every other key becomes an attribute with its msgpack value
/// (maps → kvlist, arrays → array, bin → bytes, nil → empty); the tag becomes the attribute
/// `fluent.tag`; the event time becomes `time_unix_nano`.
///
/// Outbound: the body goes under `bodyKey` (`log` by default), then the record's attributes, then the
/// resource's attributes, all at the top level of the record (the first of a key wins, so a record
/// attribute beats a resource one; values keep their structure: kvlist → map); `fluent.tag` is not copied into the
/// record but picks the frame's tag. The time is sent as EventTime: `time_unix_nano`, else
/// `observed_time_unix_nano`, else the current time.
public enum ForwardLogs {
    public static let tagAttribute = "fluent.tag"

    /// One log record from one event.
    public static func logRecord(_ entry: ForwardEntry, tag: String, observedTimeUnixNano: UInt64) -> LogRecord {
        var attributes = entry.record
        var body: AnyValue?
        if let i = attributes.firstIndex(where: { $0.key == "log" }) ?? attributes.firstIndex(where: { $0.key == "message" }) {
            body = attributes.remove(at: i).value
        }
        attributes.append(KeyValue(tagAttribute, .string(tag)))
        return LogRecord(timeUnixNano: entry.timeUnixNano, observedTimeUnixNano: observedTimeUnixNano, body: body, attributes: attributes)
    }

    /// All events of a frame as one `LogsData` (one resource, one scope).
    public static func logs(_ events: ForwardEvents, observedTimeUnixNano: UInt64) -> LogsData {
        let records = events.entries.map { logRecord($0, tag: events.tag, observedTimeUnixNano: observedTimeUnixNano) }
        return LogsData(resourceLogs: [ResourceLogs(scopeLogs: [ScopeLogs(logRecords: records)])])
    }

    /// Entry streams grouped by tag, in order of first appearance.
    public struct TaggedStream: Sendable, Equatable {
        public var tag: String
        public var stream: [UInt8]
        public var count: Int
    }

    /// Encodes log records as PackedForward entry streams, one per tag (`fluent.tag` or `defaultTag`).
    public static func entryStreams(_ logs: LogsData, defaultTag: String, bodyKey: String = "log", nowUnixNano: UInt64) -> [TaggedStream] {
        var tags: [String] = []
        var writers: [MessagePackWriter] = []
        var counts: [Int] = []
        var index: [String: Int] = [:]
        for rl in logs.resourceLogs {
            for sl in rl.scopeLogs {
                for lr in sl.logRecords {
                    var tag = defaultTag
                    if case .string(let t)? = lr.attributes[key: tagAttribute], !t.isEmpty { tag = t }
                    let i: Int
                    if let j = index[tag] {
                        i = j
                    } else {
                        i = tags.count
                        index[tag] = i
                        tags.append(tag)
                        writers.append(MessagePackWriter(capacity: 4096))
                        counts.append(0)
                    }
                    appendEntry(lr, resource: rl.resource.attributes, bodyKey: bodyKey, nowUnixNano: nowUnixNano, to: &writers[i])
                    counts[i] += 1
                }
            }
        }
        return tags.indices.map { TaggedStream(tag: tags[$0], stream: writers[$0].bytes, count: counts[$0]) }
    }

    static func appendEntry(_ lr: LogRecord, resource: [KeyValue], bodyKey: String, nowUnixNano: UInt64, to w: inout MessagePackWriter) {
        let time = lr.timeUnixNano != 0 ? lr.timeUnixNano : lr.observedTimeUnixNano != 0 ? lr.observedTimeUnixNano : nowUnixNano
        // Keys in output order, later duplicates dropped: body, record attributes, then resource ones.
        var fields: [KeyValue] = []
        var seen: Set<String> = [tagAttribute]
        if let body = lr.body {
            fields.append(KeyValue(bodyKey, body))
            seen.insert(bodyKey)
        }
        for kv in lr.attributes where seen.insert(kv.key).inserted { fields.append(kv) }
        for kv in resource where seen.insert(kv.key).inserted { fields.append(kv) }
        ForwardCodec.appendEntry(to: &w, timeUnixNano: time) { w in
            w.writeMapHeader(fields.count)
            for kv in fields {
                w.write(kv.key)
                w.write(kv.value)
            }
        }
    }
}
