import FuzzSupport
import SextantPrometheus
import SextantSnappy

/// Prometheus remote write 1.0 bodies: Snappy block decompression, then `WriteRequest` protobuf.
///
/// Each input is decompressed (bounded as the receiver bounds it) and also taken as an uncompressed
/// `WriteRequest`, so the protobuf decoder is reached without the fuzzer having to find valid Snappy.
/// Round trips: Snappy `decompress(compress(x)) == x` for the input and for what it decompresses to;
/// `WriteRequest.decode(encode(r))` decodes again and re-encodes to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    snappyRoundTrip(raw, "the input")
    if let body = try? Snappy.decompress(raw, maxLength: 1 << 22) {
        let declared = try? Snappy.decompressedLength(raw)
        roundTripCheck(declared == body.count, "Snappy.decompress gave \(body.count) bytes, the preamble says \(String(describing: declared))")
        body.withUnsafeBytes { snappyRoundTrip($0, "a decompressed body") }
        body.withUnsafeBytes { writeRequest($0) }
    }
    writeRequest(raw)
    return 0
}

func snappyRoundTrip(_ raw: UnsafeRawBufferPointer, _ what: String) {
    let compressed = Snappy.compress(raw)
    let back = reDecode("Snappy.decompress(Snappy.compress(_)) of \(what)", compressed) {
        try Snappy.decompress($0, maxLength: max(raw.count, 1))
    }
    roundTripCheck(back.elementsEqual(raw), "Snappy.decompress(Snappy.compress(_)) of \(what) differs", hexDump([UInt8](raw)))
}

func writeRequest(_ raw: UnsafeRawBufferPointer) {
    guard let request = try? RemoteWrite.WriteRequest.decode(raw) else { return }
    let encoded = request.encode()
    let again = reDecode("WriteRequest.decode(encode(_))", encoded) { try RemoteWrite.WriteRequest.decode($0) }
    let reEncoded = again.encode()
    roundTripCheck(reEncoded == encoded, "WriteRequest.encode(decode(encode(_))) differs", "\(hexDump(encoded))\n\(hexDump(reEncoded))")
    // What the exporter does to a large request: the parts must hold every series and decode.
    let parts = RemoteWrite.split(request, maxBytes: 512)
    roundTripCheck(
        parts.reduce(0) { $0 + $1.timeseries.count } == request.timeseries.count
            && parts.reduce(0) { $0 + $1.metadata.count } == request.metadata.count,
        "WriteRequest.split lost series or metadata")
    for part in parts {
        _ = reDecode("WriteRequest.decode(Snappy.decompress(Snappy.compress(encode(split(_)))))", Snappy.compress(part.encode())) {
            try RemoteWrite.WriteRequest.decode(Snappy.decompress($0, maxLength: 1 << 22))
        }
    }
}

runLibFuzzer(fuzz)
