import FuzzSupport
import SextantFluentForward
import SextantModel

/// Fluentd Forward Protocol v1 frames and bare MessagePack.
///
/// Each input goes through: the framer (whole, and again in 7-byte pieces: both must agree), the
/// frame decoder (with an identity "inflate" bounded like the receiver's, so the compressed path's
/// entry-stream decoding is reached too), the handshake decoders and the one-value msgpack decoder.
/// Round trips: msgpack `encode(decode(b))` decodes again and re-encodes to the same bytes; decoded
/// events → `LogsData` → PackedForward frames decode again with the same entry count; handshake
/// messages re-encode to equal messages.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    let bytes = [UInt8](raw)
    framer(raw)
    frame(raw)
    handshake(bytes)
    if let value = try? MessagePack.decode(bytes) {
        let encoded = MessagePack.encode(value)
        let again = reDecode("MessagePack.decode(MessagePack.encode(_))", encoded) { try MessagePack.decode($0) }
        let reEncoded = MessagePack.encode(again)
        roundTripCheck(reEncoded == encoded, "MessagePack.encode is not stable", "\(hexDump(encoded))\n\(hexDump(reEncoded))")
    }
    _ = ForwardCodec.decodeAck(bytes)
    return 0
}

/// The framer must find the same frame boundary whether the bytes arrive at once or in pieces.
func framer(_ raw: UnsafeRawBufferPointer) {
    var whole = MessagePackFramer(maxFrameSize: 1 << 16, maxDepth: 64)
    let atOnce: Result<Int?, MessagePackError> = Result { () throws(MessagePackError) in try whole.next(raw) }
    var pieces = MessagePackFramer(maxFrameSize: 1 << 16, maxDepth: 64)
    var inPieces: Result<Int?, MessagePackError> = .success(nil)
    var end = 0
    while end < raw.count {
        end = min(end + 7, raw.count)
        inPieces = Result { () throws(MessagePackError) in try pieces.next(UnsafeRawBufferPointer(rebasing: raw[0..<end])) }
        if case .success(nil) = inPieces { continue }
        break
    }
    switch (atOnce, inPieces) {
    case (.success(let a), .success(let b)):
        roundTripCheck(a == b, "MessagePackFramer: \(String(describing: a)) at once, \(String(describing: b)) in 7-byte pieces")
        if let n = a {
            roundTripCheck(n > 0 && n <= raw.count, "MessagePackFramer returned frame length \(n) of \(raw.count) bytes")
        }
    case (.failure, .failure): break
    default:
        roundTripCheck(false, "MessagePackFramer: \(atOnce) at once but \(inPieces) in 7-byte pieces")
    }
}

/// The receiver's decode path; re-encodes decoded events the way the fluentforward exporter does.
func frame(_ raw: UnsafeRawBufferPointer) {
    let limits = ForwardLimits(maxDepth: 64, maxDecompressedSize: 1 << 20)
    let identity: ForwardCodec.Inflate = { stream, maxSize in
        guard stream.count <= maxSize else { throw MessagePackError(.unexpectedType, at: 0, "over the limit") }
        return [UInt8](stream)
    }
    guard case .events(let events)? = try? ForwardCodec.decode(raw, limits: limits, inflate: identity) else { return }
    let logs = ForwardLogs.logs(events, observedTimeUnixNano: 1)
    let streams = ForwardLogs.entryStreams(logs, defaultTag: "fuzz", nowUnixNano: 2)
    roundTripCheck(streams.reduce(0) { $0 + $1.count } == events.entries.count, "entryStreams lost entries")
    for s in streams {
        let packed = ForwardCodec.packedForward(tag: s.tag, stream: s.stream, entryCount: s.count, chunk: "c", compressed: false)
        let decoded = reDecode("ForwardCodec.decode(packedForward(entryStreams(logs(_))))", packed) {
            try ForwardCodec.decode($0, limits: limits, inflate: identity)
        }
        guard case .events(let again) = decoded else {
            roundTripCheck(false, "packedForward decoded as a heartbeat")
            return
        }
        roundTripCheck(again.entries.count == s.count && again.tag == s.tag, "packedForward: \(again.entries.count) entries tagged \(again.tag), wrote \(s.count) tagged \(s.tag)")
    }
}

func handshake(_ bytes: [UInt8]) {
    if let m = try? ForwardHandshake.decodeHelo(bytes) {
        let again = reDecode("decodeHelo(encode(_))", ForwardHandshake.encode(m)) { try ForwardHandshake.decodeHelo($0) }
        roundTripCheck(again == m, "HELO \(m) came back as \(again)")
    }
    if let m = try? ForwardHandshake.decodePing(bytes) {
        let again = reDecode("decodePing(encode(_))", ForwardHandshake.encode(m)) { try ForwardHandshake.decodePing($0) }
        roundTripCheck(again == m, "PING \(m) came back as \(again)")
    }
    if let m = try? ForwardHandshake.decodePong(bytes) {
        let again = reDecode("decodePong(encode(_))", ForwardHandshake.encode(m)) { try ForwardHandshake.decodePong($0) }
        roundTripCheck(again == m, "PONG \(m) came back as \(again)")
    }
}

runLibFuzzer(fuzz)
