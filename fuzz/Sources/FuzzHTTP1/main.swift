import FuzzSupport
import SextantHTTP1

/// The proxy's HTTP/1 parser (requests from downstream, responses from upstream): see `fuzzHTTP1`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzHTTP1(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

runLibFuzzer(fuzz)
