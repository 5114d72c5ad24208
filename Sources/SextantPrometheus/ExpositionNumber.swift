/// Number tokens of the exposition formats, parsed straight from bytes.
///
/// Values follow Go's `strconv.ParseFloat` as Prometheus uses it (decimal forms, `NaN`, `Inf`/`Infinity`
/// with optional sign, any case); OpenMetrics timestamps are decimal seconds (`realnumber`, OpenMetrics 1.0
/// §ABNF) converted to nanoseconds without going through a `Double` when they have no exponent.
enum ExpositionNumber {
    private static let exactPowers: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
        1e19, 1e20, 1e21, 1e22,
    ]

    @inline(__always)
    private static func lower(_ b: UInt8) -> UInt8 { b | 0x20 }

    /// Whether `p[0..<n]` equals the lowercase ASCII `word`, ignoring case.
    private static func equalsIgnoringCase(_ p: UnsafePointer<UInt8>, _ n: Int, _ word: StaticString) -> Bool {
        guard n == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for i in 0..<n where lower(p[i]) != w[i] { return false }
        return true
    }

    /// A float value token, or nil when it is not one.
    static func parseDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "+") || p[0] == UInt8(ascii: "-") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        guard i < n else { return nil }
        let first = p[i]
        if first > UInt8(ascii: "9") {
            // Specials: Inf, Infinity (signed or not), NaN (unsigned), any case.
            if equalsIgnoringCase(p + i, n - i, "inf") || equalsIgnoringCase(p + i, n - i, "infinity") {
                return negative ? -.infinity : .infinity
            }
            if i == 0 && equalsIgnoringCase(p, n, "nan") { return .nan }
            return nil
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var truncated = false
        var sawDigit = false
        while i < n, p[i] &- UInt8(ascii: "0") < 10 {
            sawDigit = true
            if digits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(p[i] &- UInt8(ascii: "0"))
                if mantissa != 0 { digits += 1 }
            } else {
                exponent += 1
                truncated = truncated || p[i] != UInt8(ascii: "0")
            }
            i += 1
        }
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n, p[i] &- UInt8(ascii: "0") < 10 {
                sawDigit = true
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(p[i] &- UInt8(ascii: "0"))
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else {
                    truncated = truncated || p[i] != UInt8(ascii: "0")
                }
                i += 1
            }
        }
        guard sawDigit else { return nil }
        if i < n, lower(p[i]) == UInt8(ascii: "e") {
            i += 1
            var expNegative = false
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
                expNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            var e = 0
            var expDigits = 0
            while i < n, p[i] &- UInt8(ascii: "0") < 10 {
                if e < 100_000 { e = e * 10 + Int(p[i] &- UInt8(ascii: "0")) }
                expDigits += 1
                i += 1
            }
            guard expDigits > 0 else { return nil }
            exponent += expNegative ? -e : e
        }
        guard i == n else { return nil }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        // Clinger's fast path: both the mantissa and 10^|exponent| are exact doubles, so one IEEE
        // multiplication or division rounds correctly.
        if !truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            var v = Double(mantissa)
            v = exponent >= 0 ? v * exactPowers[exponent] : v / exactPowers[-exponent]
            return negative ? -v : v
        }
        // Rare long or extreme tokens: the grammar is checked above, so the C library's conversion
        // sees a plain decimal number.
        let text = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        return Double(text)
    }

    /// A float value held in a string (`le` and `quantile` label values).
    static func parseDouble(_ s: String) -> Double? {
        var s = s
        return s.withUTF8 { $0.isEmpty ? nil : parseDouble($0.baseAddress!, $0.count) }
    }

    /// A decimal integer (text-format timestamps in milliseconds), or nil on syntax error or overflow.
    static func parseInt64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "+") || p[0] == UInt8(ascii: "-") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        guard i < n else { return nil }
        var v: Int64 = 0
        while i < n {
            let d = p[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            v = s
            i += 1
        }
        return negative ? -v : v
    }

    /// OpenMetrics seconds (`1520879607.789`, `1.5e9`) as Unix nanoseconds, or nil.
    static func parseSecondsAsNanos(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        var intEnd = 0
        var hasExponentOrSpecial = false
        for i in 0..<n {
            let b = p[i]
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || b > UInt8(ascii: "9") { hasExponentOrSpecial = true }
        }
        if hasExponentOrSpecial {
            guard let d = parseDouble(p, n), d.isFinite, abs(d) < 9.2e9 else { return nil }
            return Int64((d * 1e9).rounded())
        }
        var negative = false
        var i = 0
        if n > 0, p[0] == UInt8(ascii: "+") || p[0] == UInt8(ascii: "-") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        let digitsStart = i
        while i < n, p[i] &- UInt8(ascii: "0") < 10 { i += 1 }
        intEnd = i
        guard let seconds = intEnd > digitsStart ? parseInt64(p + digitsStart, intEnd - digitsStart) : 0 else { return nil }
        var fraction: Int64 = 0
        var fractionDigits = 0
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n, p[i] &- UInt8(ascii: "0") < 10 {
                if fractionDigits < 9 {
                    fraction = fraction * 10 + Int64(p[i] &- UInt8(ascii: "0"))
                    fractionDigits += 1
                }
                i += 1
            }
        }
        guard i == n, intEnd > digitsStart || fractionDigits > 0 else { return nil }
        while fractionDigits < 9 {
            fraction *= 10
            fractionDigits += 1
        }
        let (ns, o1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, o2) = ns.addingReportingOverflow(fraction)
        guard !o1, !o2 else { return nil }
        return negative ? -total : total
    }
}
