import SextantModel

// logs.proto: LogsData (= ExportLogsServiceRequest) down to LogRecord.
extension OTLPProtobuf {
    // MARK: Decoding

    static func decodeLogsData(_ r: inout ProtoReader, _ rejections: inout Rejections) throws(OTLPDecodingError) -> LogsData {
        var data = LogsData()
        var recordIndex = 0
        while r.hasMore {
            let tag = try r.readTag()
            if tag == 1 << 3 | 2 {
                var rl = try r.readMessage()
                var resourceLogs = ResourceLogs()
                while rl.hasMore {
                    let t = try rl.readTag()
                    switch t {
                    case 1 << 3 | 2:
                        var m = try rl.readMessage()
                        resourceLogs.resource = try decodeResource(&m)
                    case 2 << 3 | 2:
                        var m = try rl.readMessage()
                        resourceLogs.scopeLogs.append(try decodeScopeLogs(&m, &recordIndex, &rejections))
                    case 3 << 3 | 2: resourceLogs.schemaURL = try rl.readString(in: "ResourceLogs")
                    default: try rl.skip(tag: t, in: "ResourceLogs")
                    }
                }
                data.resourceLogs.append(resourceLogs)
            } else {
                try r.skip(tag: tag, in: "ExportLogsServiceRequest")
            }
        }
        return data
    }

    static func decodeScopeLogs(
        _ r: inout ProtoReader, _ recordIndex: inout Int, _ rejections: inout Rejections
    ) throws(OTLPDecodingError) -> ScopeLogs {
        var sl = ScopeLogs()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 2:
                var m = try r.readMessage()
                sl.scope = try decodeScope(&m)
            case 2 << 3 | 2:
                var m = try r.readMessage()
                var problem: String?
                let record = try decodeLogRecord(&m, &problem)
                if let problem {
                    rejections.reject(1, "log record \(recordIndex): \(problem)")
                } else {
                    sl.logRecords.append(record)
                }
                recordIndex += 1
            case 3 << 3 | 2: sl.schemaURL = try r.readString(in: "ScopeLogs")
            default: try r.skip(tag: tag, in: "ScopeLogs")
            }
        }
        return sl
    }

    static func decodeLogRecord(_ r: inout ProtoReader, _ problem: inout String?) throws(OTLPDecodingError) -> LogRecord {
        var record = LogRecord()
        var traceID = WireID()
        var spanID = WireID()
        while r.hasMore {
            let tag = try r.readTag()
            switch tag {
            case 1 << 3 | 1: record.timeUnixNano = try r.readFixed64()
            case 2 << 3 | 0: record.severityNumber = SeverityNumber(rawValue: try r.readInt32())
            case 3 << 3 | 2: record.severityText = try r.readString(in: "LogRecord")
            case 5 << 3 | 2:
                var m = try r.readMessage()
                record.body = try decodeAnyValue(&m, depth: 0)
            case 6 << 3 | 2: try appendKeyValue(&r, to: &record.attributes)
            case 7 << 3 | 0: record.droppedAttributesCount = try r.readUInt32()
            case 8 << 3 | 5: record.flags = try r.readFixed32()
            case 9 << 3 | 2: traceID = try r.readID()
            case 10 << 3 | 2: spanID = try r.readID()
            case 11 << 3 | 1: record.observedTimeUnixNano = try r.readFixed64()
            case 12 << 3 | 2: record.eventName = try r.readString(in: "LogRecord")
            default: try r.skip(tag: tag, in: "LogRecord")
            }
        }
        problem = IDRules.apply(traceID, spanID, to: &record)
        return record
    }

    // MARK: Encoding (fields in descending order; see ProtoWriter)

    static func encodeLogsData(_ data: LogsData, _ w: inout ProtoWriter) {
        for rl in data.resourceLogs.reversed() {
            let mark = w.count
            w.stringField(3, rl.schemaURL)
            for sl in rl.scopeLogs.reversed() {
                let slMark = w.count
                w.stringField(3, sl.schemaURL)
                for record in sl.logRecords.reversed() {
                    let recordMark = w.count
                    encodeLogRecord(record, &w)
                    w.lengthPrefix(2, since: recordMark)
                }
                encodeScope(1, sl.scope, &w)
                w.lengthPrefix(2, since: slMark)
            }
            encodeResource(1, rl.resource, &w)
            w.lengthPrefix(1, since: mark)
        }
    }

    static func encodeLogRecord(_ record: LogRecord, _ w: inout ProtoWriter) {
        w.stringField(12, record.eventName)
        w.fixed64Field(11, record.observedTimeUnixNano)
        if let spanID = record.spanID { w.spanIDField(10, spanID) }
        if let traceID = record.traceID { w.traceIDField(9, traceID) }
        w.fixed32Field(8, record.flags)
        w.uint32Field(7, record.droppedAttributesCount)
        encodeKeyValues(6, record.attributes, &w)
        if let body = record.body {
            let mark = w.count
            encodeAnyValue(body, &w)
            w.lengthPrefix(5, since: mark)
        }
        w.stringField(3, record.severityText)
        w.int32Field(2, record.severityNumber.rawValue)
        w.fixed64Field(1, record.timeUnixNano)
    }
}
