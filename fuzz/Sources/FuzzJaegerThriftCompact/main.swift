import FuzzSupport
import SextantThrift

/// jaeger.thrift in the compact protocol: `Batch`, `Agent.emitBatch`, translation to OTLP and back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    JaegerRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), protocol: .compact)
    return 0
}

runLibFuzzer(fuzz)
