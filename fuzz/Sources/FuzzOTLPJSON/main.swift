import FuzzSupport

/// OTLP JSON: the three export requests, the export response and `google.rpc.Status`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    OTLPRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), as: .json)
    return 0
}

runLibFuzzer(fuzz)
