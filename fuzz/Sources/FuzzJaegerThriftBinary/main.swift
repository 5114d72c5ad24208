import FuzzSupport
import SextantThrift

/// jaeger.thrift in the binary protocol: `Batch`, `Agent.emitBatch`, translation to OTLP and back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    JaegerRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), protocol: .binary)
    return 0
}

runLibFuzzer(fuzz)
