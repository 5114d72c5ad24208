import FuzzSupport
import SextantPrometheus

/// OpenMetrics 1.0 text scrapes (parser, scrape assembly, re-rendering in both formats).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    PrometheusRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), as: .openMetrics)
    return 0
}

runLibFuzzer(fuzz)
