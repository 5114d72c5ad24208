import SextantModel

// logs.proto in the OTLP JSON encoding.
extension OTLPJSON {
    // MARK: Decoding

    static func decodeLogsData(_ r: inout JSONReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> LogsData {
        var data = LogsData()
        var recordIndex = 0
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            guard key.is("resourceLogs", or: "resource_logs") else {
                try r.skipValue()
                continue
            }
            var array = try r.beginArray()
            while try r.nextElement(&array) {
                var rl = ResourceLogs()
                var rlObject = try r.beginObject()
                while let k = try r.nextKey(&rlObject) {
                    if try r.consumeNull() { continue }
                    if k.is("resource") {
                        rl.resource = try decodeResource(&r)
                    } else if k.is("scopeLogs", or: "scope_logs") {
                        var slArray = try r.beginArray()
                        while try r.nextElement(&slArray) {
                            rl.scopeLogs.append(try decodeScopeLogs(&r, &recordIndex, &rejections))
                        }
                    } else if k.is("schemaUrl", or: "schema_url") {
                        rl.schemaURL = try r.readString()
                    } else {
                        try r.skipValue()
                    }
                }
                data.resourceLogs.append(rl)
            }
        }
        return data
    }

    static func decodeScopeLogs(
        _ r: inout JSONReader, _ recordIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ScopeLogs {
        var sl = ScopeLogs()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("scope") {
                sl.scope = try decodeScope(&r)
            } else if key.is("logRecords", or: "log_records") {
                var array = try r.beginArray()
                while try r.nextElement(&array) {
                    var problem: String?
                    let record = try decodeLogRecord(&r, &problem)
                    if let problem {
                        rejections.reject(1, "log record \(recordIndex): \(problem)")
                    } else {
                        sl.logRecords.append(record)
                    }
                    recordIndex += 1
                }
            } else if key.is("schemaUrl", or: "schema_url") {
                sl.schemaURL = try r.readString()
            } else {
                try r.skipValue()
            }
        }
        return sl
    }

    static func decodeLogRecord(_ r: inout JSONReader, _ problem: inout String?) throws(OTLPDecodingError) -> LogRecord {
        var record = LogRecord()
        var traceID = WireID()
        var spanID = WireID()
        var object = try r.beginObject()
        while let key = try r.nextKey(&object) {
            if try r.consumeNull() { continue }
            if key.is("timeUnixNano", or: "time_unix_nano") {
                record.timeUnixNano = try r.readUInt64()
            } else if key.is("observedTimeUnixNano", or: "observed_time_unix_nano") {
                record.observedTimeUnixNano = try r.readUInt64()
            } else if key.is("severityNumber", or: "severity_number") {
                record.severityNumber = SeverityNumber(rawValue: try r.readEnum(severityNumber))
            } else if key.is("severityText", or: "severity_text") {
                record.severityText = try r.readString()
            } else if key.is("body") {
                record.body = try decodeAnyValue(&r, depth: 0)
            } else if key.is("attributes") {
                record.attributes = try decodeKeyValues(&r)
            } else if key.is("droppedAttributesCount", or: "dropped_attributes_count") {
                record.droppedAttributesCount = try r.readUInt32()
            } else if key.is("flags") {
                record.flags = try r.readUInt32()
            } else if key.is("traceId", or: "trace_id") {
                traceID = try r.readID()
            } else if key.is("spanId", or: "span_id") {
                spanID = try r.readID()
            } else if key.is("eventName", or: "event_name") {
                record.eventName = try r.readString()
            } else {
                try r.skipValue()
            }
        }
        problem = IDRules.apply(traceID, spanID, to: &record)
        return record
    }

    /// `SEVERITY_NUMBER_<RANGE>[2-4]` names (logs.proto `SeverityNumber`).
    static func severityNumber(_ name: String) -> Int32? {
        let prefix = "SEVERITY_NUMBER_"
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        if rest == "UNSPECIFIED" { return 0 }
        let ranges = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        for (i, range) in ranges.enumerated() where rest.hasPrefix(range) {
            let sub = rest.dropFirst(range.count)
            let base = Int32(i * 4 + 1)
            switch sub {
            case "": return base
            case "2": return base + 1
            case "3": return base + 2
            case "4": return base + 3
            default: return nil
            }
        }
        return nil
    }

    // MARK: Encoding (members in field-number order)

    static func encodeLogsData(_ data: LogsData, _ w: inout JSONWriter) {
        w.beginObject()
        if !data.resourceLogs.isEmpty {
            w.key("resourceLogs")
            w.beginArray()
            for rl in data.resourceLogs {
                w.element()
                w.beginObject()
                encodeResourceField(rl.resource, &w)
                if !rl.scopeLogs.isEmpty {
                    w.key("scopeLogs")
                    w.beginArray()
                    for sl in rl.scopeLogs {
                        w.element()
                        w.beginObject()
                        encodeScopeField(sl.scope, &w)
                        if !sl.logRecords.isEmpty {
                            w.key("logRecords")
                            w.beginArray()
                            for record in sl.logRecords {
                                w.element()
                                encodeLogRecord(record, &w)
                            }
                            w.endArray()
                        }
                        w.stringField("schemaUrl", sl.schemaURL)
                        w.endObject()
                    }
                    w.endArray()
                }
                w.stringField("schemaUrl", rl.schemaURL)
                w.endObject()
            }
            w.endArray()
        }
        w.endObject()
    }

    static func encodeLogRecord(_ record: LogRecord, _ w: inout JSONWriter) {
        w.beginObject()
        w.uint64Field("timeUnixNano", record.timeUnixNano)
        w.int32Field("severityNumber", record.severityNumber.rawValue)
        w.stringField("severityText", record.severityText)
        if let body = record.body {
            w.key("body")
            encodeAnyValue(body, &w)
        }
        encodeKeyValuesField("attributes", record.attributes, &w)
        w.int32Field("droppedAttributesCount", record.droppedAttributesCount)
        w.int32Field("flags", record.flags)
        if let traceID = record.traceID {
            w.key("traceId")
            w.traceID(traceID)
        }
        if let spanID = record.spanID {
            w.key("spanId")
            w.spanID(spanID)
        }
        w.uint64Field("observedTimeUnixNano", record.observedTimeUnixNano)
        w.stringField("eventName", record.eventName)
        w.endObject()
    }
}
