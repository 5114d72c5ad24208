#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time, for timestamps that leave the process (OTLP times are Unix nanoseconds).
public enum SystemTime {
    public static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static func nowSeconds() -> Int { Int(nowNanos() / 1_000_000_000) }

    /// `2006-01-02T15-04-05.000` in UTC: the timestamp lumberjack puts in rotated file names.
    public static func rotationStamp(_ nanos: UInt64) -> String {
        var t = time_t(nanos / 1_000_000_000)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func p(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let ms = Int32((nanos / 1_000_000) % 1000)
        return "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1, 2))-\(p(tmv.tm_mday, 2))T\(p(tmv.tm_hour, 2))-\(p(tmv.tm_min, 2))-\(p(tmv.tm_sec, 2)).\(p(ms, 3))"
    }
}
