import FuzzSupport

/// Zipkin v2 protobuf `ListOfSpans`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    ZipkinRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), as: .proto)
    return 0
}

runLibFuzzer(fuzz)
