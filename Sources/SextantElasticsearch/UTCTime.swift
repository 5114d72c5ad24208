/// A UTC calendar time from Unix nanoseconds (proleptic Gregorian, H. Hinnant's `civil_from_days`).
public struct UTCTime: Sendable, Equatable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var nanosecond: Int

    public init(unixNano: UInt64) {
        let seconds = Int(unixNano / 1_000_000_000)
        nanosecond = Int(unixNano % 1_000_000_000)
        let days = seconds / 86400
        let rest = seconds % 86400
        hour = rest / 3600
        minute = rest % 3600 / 60
        second = rest % 60
        let z = days + 719468
        let era = z / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// RFC 3339 with nanoseconds, `2024-05-01T12:00:00.123456789Z` (Elasticsearch's
    /// `strict_date_optional_time_nanos` accepts it for `date` and `date_nanos` fields).
    public var rfc3339Nano: String {
        var s = ""
        s.reserveCapacity(30)
        pad(&s, year, 4)
        s += "-"
        pad(&s, month, 2)
        s += "-"
        pad(&s, day, 2)
        s += "T"
        pad(&s, hour, 2)
        s += ":"
        pad(&s, minute, 2)
        s += ":"
        pad(&s, second, 2)
        s += "."
        pad(&s, nanosecond, 9)
        s += "Z"
        return s
    }

    private func pad(_ s: inout String, _ v: Int, _ width: Int) {
        let d = String(v)
        if d.count < width { s += String(repeating: "0", count: width - d.count) }
        s += d
    }
}
