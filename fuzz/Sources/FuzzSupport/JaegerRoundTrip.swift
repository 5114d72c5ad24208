import SextantJaeger
import SextantModel
import SextantThrift

/// Decodes `bytes` as a bare `Batch` (collector HTTP body) and as an `Agent.emitBatch` message
/// (agent UDP datagram) in one Thrift protocol; re-encodes what decodes in both protocols, and
/// translates it to OTLP and back to Jaeger (what the jaeger exporter sends).
public enum JaegerRoundTrip {
    public static func run(_ bytes: UnsafeRawBufferPointer, protocol kind: ThriftProtocolKind) {
        var batches: [JaegerBatch] = []
        if let batch = try? JaegerThrift.decodeBatch(bytes, protocol: kind) {
            batches.append(batch)
            for target in ThriftProtocolKind.allCases {
                _ = reDecode(
                    "JaegerThrift.decodeBatch(encodeBatch(_, \(target))) of a \(kind) Batch",
                    JaegerThrift.encodeBatch(batch, protocol: target)
                ) { try JaegerThrift.decodeBatch($0, protocol: target) }
            }
        }
        if let emitted = try? JaegerThrift.decodeAgentMessage(bytes, protocol: kind) {
            batches += emitted
            for batch in emitted {
                for target in ThriftProtocolKind.allCases {
                    _ = reDecode(
                        "JaegerThrift.decodeAgentMessage(encodeAgentEmitBatch(_, \(target))) of a \(kind) emitBatch",
                        JaegerThrift.encodeAgentEmitBatch(batch, protocol: target, seqID: 1)
                    ) { try JaegerThrift.decodeAgentMessage($0, protocol: target) }
                }
            }
        }
        guard !batches.isEmpty else { return }

        let outcome = JaegerTranslator.toTraces(batches)
        for batch in JaegerTranslator.fromTraces(outcome.traces) {
            _ = reDecode(
                "JaegerThrift.decodeBatch(encodeBatch(fromTraces(toTraces(_)), \(kind))) of a \(kind) message",
                JaegerThrift.encodeBatch(batch, protocol: kind)
            ) { try JaegerThrift.decodeBatch($0, protocol: kind) }
        }
    }
}
