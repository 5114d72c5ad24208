import FuzzSupport
import SextantPrometheus

/// Prometheus text format 0.0.4 scrapes (parser, scrape assembly, re-rendering in both formats).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    PrometheusRoundTrip.run(UnsafeRawBufferPointer(start: data, count: size), as: .prometheusText)
    return 0
}

runLibFuzzer(fuzz)
