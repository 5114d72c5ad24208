import FuzzSupport
import SextantEnvoyAccessLog
import SextantModel

/// Envoy/Istio access-log lines (Envoy default text, Istio text, Istio JSON) as the envoyaccesslog
/// processor parses a log body: the line, its attributes and its trace context. A line parsed with every
/// format must parse to the same entry when only the format it matched is allowed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    _ = RFC3339.parse(Substring(line))
    _ = TraceContextHeaders.traceparent(line)
    _ = TraceContextHeaders.b3Single(line)
    _ = EnvoyAccessLogEntry.splitHostPort(line)
    guard let entry = EnvoyAccessLogParser.parse(line) else { return 0 }
    let alone = EnvoyAccessLogParser.parse(line, formats: [entry.format])
    roundTripCheck(alone == entry, "parse(line, formats: [\(entry.format)]) differs from parse(line)", "\(entry)\n\(String(describing: alone))")
    let attributes = entry.attributes
    _ = TraceContextHeaders.find { key in
        for kv in attributes where kv.key == key { if case .string(let s) = kv.value { return s } }
        return nil
    }
    return 0
}

runLibFuzzer(fuzz)
