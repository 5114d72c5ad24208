import SextantThrift

/// jaeger.thrift on the wire, in both Thrift protocols.
///
/// - The collector's HTTP endpoint (`POST /api/traces`, `application/x-thrift`, port 14268) takes a
///   bare binary-protocol `Batch` struct: ``decodeBatch(_:protocol:)``.
/// - The agent's UDP ports take one `Agent.emitBatch(1: Batch batch)` oneway message per datagram
///   (agent.thrift): compact protocol on 6831, binary on 6832: ``decodeAgentMessage(_:protocol:)``.
///
/// Decoding enforces the IDL's `required` fields and field types (the reference Go reader would
/// fail the required check too) and skips unknown fields. Encoding writes fields in id order, the
/// way the generated code of the reference libraries does, so output is byte-identical to theirs.
public enum JaegerThrift {
    /// The agent method clients call (agent.thrift `service Agent`).
    public static let emitBatchMethod = "emitBatch"

    // MARK: Decoding

    /// Decodes a bare `Batch` struct, e.g. an HTTP collector request body.
    public static func decodeBatch(_ bytes: UnsafeRawBufferPointer, protocol kind: ThriftProtocolKind) throws(ThriftError) -> JaegerBatch {
        switch kind {
        case .binary:
            var r = ThriftBinaryReader(bytes)
            return try decodeWholeBatch(&r)
        case .compact:
            var r = ThriftCompactReader(bytes)
            return try decodeWholeBatch(&r)
        }
    }

    /// Decodes an `emitBatch` message, e.g. one agent UDP datagram. An `emitBatch_args` without
    /// its batch yields no batches.
    public static func decodeAgentMessage(_ bytes: UnsafeRawBufferPointer, protocol kind: ThriftProtocolKind) throws(ThriftError) -> [JaegerBatch] {
        switch kind {
        case .binary:
            var r = ThriftBinaryReader(bytes)
            return try decodeEmitBatch(&r)
        case .compact:
            var r = ThriftCompactReader(bytes)
            return try decodeEmitBatch(&r)
        }
    }

    public static func decodeBatch(_ bytes: [UInt8], protocol kind: ThriftProtocolKind) throws(ThriftError) -> JaegerBatch {
        try withBytes(bytes) { (b) throws(ThriftError) in try decodeBatch(b, protocol: kind) }
    }

    public static func decodeAgentMessage(_ bytes: [UInt8], protocol kind: ThriftProtocolKind) throws(ThriftError) -> [JaegerBatch] {
        try withBytes(bytes) { (b) throws(ThriftError) in try decodeAgentMessage(b, protocol: kind) }
    }

    private static func withBytes<T>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ThriftError) -> T) throws(ThriftError) -> T {
        let result: Result<T, ThriftError> = bytes.withUnsafeBytes { raw in
            do throws(ThriftError) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    static func decodeWholeBatch<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> JaegerBatch {
        let batch = try readBatch(&r)
        try expectEnd(r, after: "Batch")
        return batch
    }

    static func decodeEmitBatch<R: ThriftReader>(_ r: inout R) throws(ThriftError) -> [JaegerBatch] {
        let start = r.offset
        let header = try r.readMessageBegin()
        guard header.name == emitBatchMethod else {
            throw ThriftError(
                .unexpectedMessage, "agent method \"\(header.name)\" is not supported (expected \(emitBatchMethod))", offset: start)
        }
        // Clients send emitBatch as oneway; accept call too, as the Go agent's processor does not check.
        guard header.type == .oneway || header.type == .call else {
            throw ThriftError(.unexpectedMessage, "emitBatch message of type \(header.type), expected oneway", offset: start)
        }
        var batches: [JaegerBatch] = []
        try r.readStructBegin()
        while let field = try r.readFieldBegin() {
            if field.id == 1 {
                try expect(field, .struct, "batch", in: "emitBatch_args", r)
                batches.append(try readBatch(&r))
            } else {
                try r.skip(field.type)
            }
            r.readFieldEnd()
        }
        r.readStructEnd()
        r.readMessageEnd()
        try expectEnd(r, after: "emitBatch message")
        return batches
    }

    // MARK: Encoding

    /// Encodes a bare `Batch` struct (the HTTP collector body when `protocol` is `.binary`).
    public static func encodeBatch(_ batch: JaegerBatch, protocol kind: ThriftProtocolKind) -> [UInt8] {
        switch kind {
        case .binary:
            var w = ThriftBinaryWriter(reservingCapacity: estimatedSize(batch))
            writeBatch(batch, &w)
            return w.bytes
        case .compact:
            var w = ThriftCompactWriter(reservingCapacity: estimatedSize(batch))
            writeBatch(batch, &w)
            return w.bytes
        }
    }

    /// Encodes `Agent.emitBatch(batch)` as a oneway message, what a client sends to an agent.
    public static func encodeAgentEmitBatch(_ batch: JaegerBatch, protocol kind: ThriftProtocolKind, seqID: Int32) -> [UInt8] {
        switch kind {
        case .binary:
            var w = ThriftBinaryWriter(reservingCapacity: estimatedSize(batch) + 32)
            writeEmitBatch(batch, seqID: seqID, &w)
            return w.bytes
        case .compact:
            var w = ThriftCompactWriter(reservingCapacity: estimatedSize(batch) + 32)
            writeEmitBatch(batch, seqID: seqID, &w)
            return w.bytes
        }
    }

    static func writeEmitBatch<W: ThriftWriter>(_ batch: JaegerBatch, seqID: Int32, _ w: inout W) {
        w.writeMessageBegin(ThriftMessageHeader(name: emitBatchMethod, type: .oneway, seqID: seqID))
        w.writeStructBegin()  // emitBatch_args
        w.writeFieldBegin(.struct, id: 1)
        writeBatch(batch, &w)
        w.writeFieldEnd()
        w.writeFieldStop()
        w.writeStructEnd()
        w.writeMessageEnd()
    }

    private static func estimatedSize(_ batch: JaegerBatch) -> Int { 64 + batch.spans.count * 256 }

    // MARK: Helpers

    static func expect<R: ThriftReader>(
        _ field: ThriftFieldHeader, _ type: ThriftType, _ name: StaticString, in owner: StaticString, _ r: R
    ) throws(ThriftError) {
        guard field.type == type else {
            throw r.error(.unexpectedFieldType, "field \(field.id) (\(name)) of \(owner) has type \(field.type), expected \(type)")
        }
    }

    static func missing(_ name: StaticString, in owner: StaticString, structStart: Int) -> ThriftError {
        ThriftError(.missingRequiredField, "required field \(name) of \(owner) is missing", offset: structStart)
    }

    private static func expectEnd<R: ThriftReader>(_ r: R, after what: StaticString) throws(ThriftError) {
        guard r.remaining == 0 else {
            throw r.error(.trailingBytes, "\(r.remaining) unexpected bytes after the \(what)")
        }
    }
}
