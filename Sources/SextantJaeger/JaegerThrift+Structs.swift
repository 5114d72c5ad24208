import SextantThrift

/// Readers and writers for each jaeger.thrift struct, generic over the protocol so each is
/// specialised once per protocol. Field ids and `required`ness follow the IDL.
extension JaegerThrift {
    // MARK: Batch

    static func readBatch<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerBatch {
        let start = r.offset
        try r.readStructBegin()
        var process: JaegerProcess?
        var spans: [JaegerSpan]?
        var seqNo: Int64?
        var stats: JaegerClientStats?
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .struct, "process", in: "Batch", r)
                process = try readProcess(&r)
            case 2:
                try expect(field, .list, "spans", in: "Batch", r)
                spans = try readList(&r, "spans", in: "Batch", minimumElementSize: 17) { (r) throws(ThriftError) in try readSpan(&r) }
            case 3:
                try expect(field, .i64, "seqNo", in: "Batch", r)
                seqNo = try r.readI64()
            case 4:
                try expect(field, .struct, "stats", in: "Batch", r)
                stats = try readClientStats(&r)
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let process else { throw missing("process", in: "Batch", structStart: start) }
        guard let spans else { throw missing("spans", in: "Batch", structStart: start) }
        return JaegerBatch(process: process, spans: spans, seqNo: seqNo, stats: stats)
    }

    static func writeBatch<W: ThriftWriter>(_ batch: JaegerBatch, _ w: inout W) {
        w.writeStructBegin()
        w.writeFieldBegin(.struct, id: 1)
        writeProcess(batch.process, &w)
        w.writeFieldEnd()
        w.writeFieldBegin(.list, id: 2)
        w.writeListBegin(.struct, count: batch.spans.count)
        for span in batch.spans { writeSpan(span, &w) }
        w.writeListEnd()
        w.writeFieldEnd()
        if let seqNo = batch.seqNo {
            w.writeFieldBegin(.i64, id: 3)
            w.writeI64(seqNo)
            w.writeFieldEnd()
        }
        if let stats = batch.stats {
            w.writeFieldBegin(.struct, id: 4)
            writeClientStats(stats, &w)
            w.writeFieldEnd()
        }
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: Process

    static func readProcess<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerProcess {
        let start = r.offset
        try r.readStructBegin()
        var serviceName: String?
        var tags: [JaegerTag] = []
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .binary, "serviceName", in: "Process", r)
                serviceName = try r.readString()
            case 2:
                try expect(field, .list, "tags", in: "Process", r)
                tags = try readTags(&r, in: "Process")
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let serviceName else { throw missing("serviceName", in: "Process", structStart: start) }
        return JaegerProcess(serviceName: serviceName, tags: tags)
    }

    static func writeProcess<W: ThriftWriter>(_ process: JaegerProcess, _ w: inout W) {
        w.writeStructBegin()
        w.writeFieldBegin(.binary, id: 1)
        w.writeString(process.serviceName)
        w.writeFieldEnd()
        if !process.tags.isEmpty {
            w.writeFieldBegin(.list, id: 2)
            writeTags(process.tags, &w)
            w.writeFieldEnd()
        }
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: Span

    /// The bits of `Span`'s required fields, to report the first one missing.
    private struct SpanFields: OptionSet {
        let rawValue: UInt16
        static let traceIdLow = SpanFields(rawValue: 1 << 1)
        static let traceIdHigh = SpanFields(rawValue: 1 << 2)
        static let spanId = SpanFields(rawValue: 1 << 3)
        static let parentSpanId = SpanFields(rawValue: 1 << 4)
        static let operationName = SpanFields(rawValue: 1 << 5)
        static let flags = SpanFields(rawValue: 1 << 7)
        static let startTime = SpanFields(rawValue: 1 << 8)
        static let duration = SpanFields(rawValue: 1 << 9)
        static let required: SpanFields = [.traceIdLow, .traceIdHigh, .spanId, .parentSpanId, .operationName, .flags, .startTime, .duration]
    }

    static func readSpan<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerSpan {
        let start = r.offset
        try r.readStructBegin()
        var span = JaegerSpan(traceIdLow: 0, spanId: 0, operationName: "")
        var seen: SpanFields = []
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .i64, "traceIdLow", in: "Span", r)
                span.traceIdLow = try r.readI64()
                seen.insert(.traceIdLow)
            case 2:
                try expect(field, .i64, "traceIdHigh", in: "Span", r)
                span.traceIdHigh = try r.readI64()
                seen.insert(.traceIdHigh)
            case 3:
                try expect(field, .i64, "spanId", in: "Span", r)
                span.spanId = try r.readI64()
                seen.insert(.spanId)
            case 4:
                try expect(field, .i64, "parentSpanId", in: "Span", r)
                span.parentSpanId = try r.readI64()
                seen.insert(.parentSpanId)
            case 5:
                try expect(field, .binary, "operationName", in: "Span", r)
                span.operationName = try r.readString()
                seen.insert(.operationName)
            case 6:
                try expect(field, .list, "references", in: "Span", r)
                span.references = try readList(&r, "references", in: "Span", minimumElementSize: 9) { (r) throws(ThriftError) in try readSpanRef(&r) }
            case 7:
                try expect(field, .i32, "flags", in: "Span", r)
                span.flags = try r.readI32()
                seen.insert(.flags)
            case 8:
                try expect(field, .i64, "startTime", in: "Span", r)
                span.startTime = try r.readI64()
                seen.insert(.startTime)
            case 9:
                try expect(field, .i64, "duration", in: "Span", r)
                span.duration = try r.readI64()
                seen.insert(.duration)
            case 10:
                try expect(field, .list, "tags", in: "Span", r)
                span.tags = try readTags(&r, in: "Span")
            case 11:
                try expect(field, .list, "logs", in: "Span", r)
                span.logs = try readList(&r, "logs", in: "Span", minimumElementSize: 5) { (r) throws(ThriftError) in try readLog(&r) }
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        if !seen.isSuperset(of: .required) {
            let names: [(SpanFields, StaticString)] = [
                (.traceIdLow, "traceIdLow"), (.traceIdHigh, "traceIdHigh"), (.spanId, "spanId"), (.parentSpanId, "parentSpanId"),
                (.operationName, "operationName"), (.flags, "flags"), (.startTime, "startTime"), (.duration, "duration"),
            ]
            for (bit, name) in names where !seen.contains(bit) { throw missing(name, in: "Span", structStart: start) }
        }
        return span
    }

    static func writeSpan<W: ThriftWriter>(_ span: JaegerSpan, _ w: inout W) {
        w.writeStructBegin()
        writeI64Field(1, span.traceIdLow, &w)
        writeI64Field(2, span.traceIdHigh, &w)
        writeI64Field(3, span.spanId, &w)
        writeI64Field(4, span.parentSpanId, &w)
        w.writeFieldBegin(.binary, id: 5)
        w.writeString(span.operationName)
        w.writeFieldEnd()
        if !span.references.isEmpty {
            w.writeFieldBegin(.list, id: 6)
            w.writeListBegin(.struct, count: span.references.count)
            for ref in span.references { writeSpanRef(ref, &w) }
            w.writeListEnd()
            w.writeFieldEnd()
        }
        w.writeFieldBegin(.i32, id: 7)
        w.writeI32(span.flags)
        w.writeFieldEnd()
        writeI64Field(8, span.startTime, &w)
        writeI64Field(9, span.duration, &w)
        if !span.tags.isEmpty {
            w.writeFieldBegin(.list, id: 10)
            writeTags(span.tags, &w)
            w.writeFieldEnd()
        }
        if !span.logs.isEmpty {
            w.writeFieldBegin(.list, id: 11)
            w.writeListBegin(.struct, count: span.logs.count)
            for log in span.logs { writeLog(log, &w) }
            w.writeListEnd()
            w.writeFieldEnd()
        }
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: Tag

    static func readTag<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerTag {
        let start = r.offset
        try r.readStructBegin()
        var key: String?
        var vType: JaegerTagType?
        var tag = JaegerTag(key: "", vType: .string)
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .binary, "key", in: "Tag", r)
                key = try r.readString()
            case 2:
                try expect(field, .i32, "vType", in: "Tag", r)
                vType = JaegerTagType(rawValue: try r.readI32())
            case 3:
                try expect(field, .binary, "vStr", in: "Tag", r)
                tag.vStr = try r.readString()
            case 4:
                try expect(field, .double, "vDouble", in: "Tag", r)
                tag.vDouble = try r.readDouble()
            case 5:
                try expect(field, .bool, "vBool", in: "Tag", r)
                tag.vBool = try r.readBool()
            case 6:
                try expect(field, .i64, "vLong", in: "Tag", r)
                tag.vLong = try r.readI64()
            case 7:
                try expect(field, .binary, "vBinary", in: "Tag", r)
                tag.vBinary = try r.readBinary()
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let key else { throw missing("key", in: "Tag", structStart: start) }
        guard let vType else { throw missing("vType", in: "Tag", structStart: start) }
        tag.key = key
        tag.vType = vType
        return tag
    }

    static func readTags<R: ThriftReader>(_ r: inout R, in owner: StaticString) throws(ThriftError) -> [JaegerTag] {
        try readList(&r, "tags", in: owner, minimumElementSize: 5) { (r) throws(ThriftError) in try readTag(&r) }
    }

    static func writeTags<W: ThriftWriter>(_ tags: [JaegerTag], _ w: inout W) {
        w.writeListBegin(.struct, count: tags.count)
        for tag in tags { writeTag(tag, &w) }
        w.writeListEnd()
    }

    static func writeTag<W: ThriftWriter>(_ tag: JaegerTag, _ w: inout W) {
        w.writeStructBegin()
        w.writeFieldBegin(.binary, id: 1)
        w.writeString(tag.key)
        w.writeFieldEnd()
        w.writeFieldBegin(.i32, id: 2)
        w.writeI32(tag.vType.rawValue)
        w.writeFieldEnd()
        if let v = tag.vStr {
            w.writeFieldBegin(.binary, id: 3)
            w.writeString(v)
            w.writeFieldEnd()
        }
        if let v = tag.vDouble {
            w.writeFieldBegin(.double, id: 4)
            w.writeDouble(v)
            w.writeFieldEnd()
        }
        if let v = tag.vBool {
            w.writeFieldBegin(.bool, id: 5)
            w.writeBool(v)
            w.writeFieldEnd()
        }
        if let v = tag.vLong { writeI64Field(6, v, &w) }
        if let v = tag.vBinary {
            w.writeFieldBegin(.binary, id: 7)
            w.writeBinary(v)
            w.writeFieldEnd()
        }
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: Log

    static func readLog<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerLog {
        let start = r.offset
        try r.readStructBegin()
        var timestamp: Int64?
        var fields: [JaegerTag]?
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .i64, "timestamp", in: "Log", r)
                timestamp = try r.readI64()
            case 2:
                try expect(field, .list, "fields", in: "Log", r)
                fields = try readList(&r, "fields", in: "Log", minimumElementSize: 5) { (r) throws(ThriftError) in try readTag(&r) }
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let timestamp else { throw missing("timestamp", in: "Log", structStart: start) }
        guard let fields else { throw missing("fields", in: "Log", structStart: start) }
        return JaegerLog(timestamp: timestamp, fields: fields)
    }

    static func writeLog<W: ThriftWriter>(_ log: JaegerLog, _ w: inout W) {
        w.writeStructBegin()
        writeI64Field(1, log.timestamp, &w)
        w.writeFieldBegin(.list, id: 2)
        writeTags(log.fields, &w)
        w.writeFieldEnd()
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: SpanRef

    static func readSpanRef<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerSpanRef {
        let start = r.offset
        try r.readStructBegin()
        var refType: JaegerSpanRefType?
        var traceIdLow: Int64?
        var traceIdHigh: Int64?
        var spanId: Int64?
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .i32, "refType", in: "SpanRef", r)
                refType = JaegerSpanRefType(rawValue: try r.readI32())
            case 2:
                try expect(field, .i64, "traceIdLow", in: "SpanRef", r)
                traceIdLow = try r.readI64()
            case 3:
                try expect(field, .i64, "traceIdHigh", in: "SpanRef", r)
                traceIdHigh = try r.readI64()
            case 4:
                try expect(field, .i64, "spanId", in: "SpanRef", r)
                spanId = try r.readI64()
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let refType else { throw missing("refType", in: "SpanRef", structStart: start) }
        guard let traceIdLow else { throw missing("traceIdLow", in: "SpanRef", structStart: start) }
        guard let traceIdHigh else { throw missing("traceIdHigh", in: "SpanRef", structStart: start) }
        guard let spanId else { throw missing("spanId", in: "SpanRef", structStart: start) }
        return JaegerSpanRef(refType: refType, traceIdLow: traceIdLow, traceIdHigh: traceIdHigh, spanId: spanId)
    }

    static func writeSpanRef<W: ThriftWriter>(_ ref: JaegerSpanRef, _ w: inout W) {
        w.writeStructBegin()
        w.writeFieldBegin(.i32, id: 1)
        w.writeI32(ref.refType.rawValue)
        w.writeFieldEnd()
        writeI64Field(2, ref.traceIdLow, &w)
        writeI64Field(3, ref.traceIdHigh, &w)
        writeI64Field(4, ref.spanId, &w)
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: ClientStats

    static func readClientStats<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerClientStats {
        let start = r.offset
        try r.readStructBegin()
        var values: [Int64?] = [nil, nil, nil]
        while let field = try r.readFieldBegin() {
            switch field.id {
            case 1:
                try expect(field, .i64, "fullQueueDroppedSpans", in: "ClientStats", r)
                values[0] = try r.readI64()
            case 2:
                try expect(field, .i64, "tooLargeDroppedSpans", in: "ClientStats", r)
                values[1] = try r.readI64()
            case 3:
                try expect(field, .i64, "failedToEmitSpans", in: "ClientStats", r)
                values[2] = try r.readI64()
            default:
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        guard let full = values[0] else { throw missing("fullQueueDroppedSpans", in: "ClientStats", structStart: start) }
        guard let tooLarge = values[1] else { throw missing("tooLargeDroppedSpans", in: "ClientStats", structStart: start) }
        guard let failed = values[2] else { throw missing("failedToEmitSpans", in: "ClientStats", structStart: start) }
        return JaegerClientStats(fullQueueDroppedSpans: full, tooLargeDroppedSpans: tooLarge, failedToEmitSpans: failed)
    }

    static func writeClientStats<W: ThriftWriter>(_ stats: JaegerClientStats, _ w: inout W) {
        w.writeStructBegin()
        writeI64Field(1, stats.fullQueueDroppedSpans, &w)
        writeI64Field(2, stats.tooLargeDroppedSpans, &w)
        writeI64Field(3, stats.failedToEmitSpans, &w)
        w.writeFieldStop()
        w.writeStructEnd()
    }

    // MARK: Shared

    /// A `list<struct>`. The reader has checked the count against the bytes left at one byte per
    /// struct; the reservation assumes `minimumElementSize` (the smallest compact encoding of the
    /// element's required fields), so a lying count costs little memory before decoding fails.
    static func readList<R: ThriftReader, T>(
        _ r: inout R, _ name: StaticString, in owner: StaticString, minimumElementSize: Int,
        _ element: (inout R) throws(ThriftError) -> T
    ) throws(ThriftError) -> [T] {
        let header = try r.readListBegin()
        guard header.elementType == .struct || header.count == 0 else {
            throw r.error(.unexpectedFieldType, "\(owner).\(name) is a list of \(header.elementType), expected struct")
        }
        var out: [T] = []
        out.reserveCapacity(min(header.count, r.remaining / minimumElementSize))
        for _ in 0..<header.count { out.append(try element(&r)) }
        r.readListEnd()
        return out
    }

    @inline(__always)
    static func writeI64Field<W: ThriftWriter>(_ id: Int16, _ value: Int64, _ w: inout W) {
        w.writeFieldBegin(.i64, id: id)
        w.writeI64(value)
        w.writeFieldEnd()
    }
}
