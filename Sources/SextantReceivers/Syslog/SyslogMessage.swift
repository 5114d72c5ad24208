import SextantModel

/// One parsed syslog message: the fields of RFC 5424 §6 (RFC 3164 §4.1 fills the subset it has).
/// Absent fields (RFC 5424's NILVALUE `-`) are `nil`.
public struct SyslogMessage: Sendable, Equatable {
    /// `PRI` (RFC 5424 §6.2.1): facility × 8 + severity, 0–191.
    public var priority: Int
    /// `VERSION`; `nil` for RFC 3164.
    public var version: Int?
    /// Unix nanoseconds; `nil` when the message carries no time.
    public var timestamp: UInt64?
    public var hostname: String?
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    /// SD-ID → (PARAM-NAME → PARAM-VALUE), escapes resolved, in message order.
    public var structuredData: [(id: String, params: [(name: String, value: String)])]?
    /// MSG (BOM removed); `nil` when absent.
    public var message: String?

    public var facility: Int { priority / 8 }
    public var severity: Int { priority % 8 }

    public init(priority: Int) { self.priority = priority }

    public static func == (a: SyslogMessage, b: SyslogMessage) -> Bool {
        func sd(_ m: SyslogMessage) -> [String]? {
            m.structuredData?.map { e in e.id + "|" + e.params.map { "\($0.name)=\($0.value)" }.joined(separator: "|") }
        }
        return a.priority == b.priority && a.version == b.version && a.timestamp == b.timestamp && a.hostname == b.hostname
            && a.appName == b.appName && a.procID == b.procID && a.msgID == b.msgID && sd(a) == sd(b) && a.message == b.message
    }
}

/// Why a syslog message could not be parsed; `offset` is the byte position of the problem.
public struct SyslogParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid syslog message at byte \(offset): \(reason)" }
}

/// The syslog dialects the receiver parses (the OTel receiver's `protocol` values).
public enum SyslogProtocol: String, Sendable {
    case rfc5424
    case rfc3164
}

/// Syslog parsers for RFC 5424 (strict, per its §6 ABNF) and RFC 3164 (BSD, tolerant as relays are, §4.3).
public enum SyslogParser {
    public static func parse(_ bytes: [UInt8], protocol p: SyslogProtocol, location: SyslogTimeZone = .utc, now: UInt64 = 0) throws(SyslogParseError)
        -> SyslogMessage
    {
        switch p {
        case .rfc5424: return try parse5424(bytes)
        case .rfc3164: return try parse3164(bytes, location: location, now: now)
        }
    }

    // MARK: RFC 5424

    /// RFC 5424 §6: `HEADER SP STRUCTURED-DATA [SP MSG]`.
    public static func parse5424(_ bytes: [UInt8]) throws(SyslogParseError) -> SyslogMessage {
        var c = SyslogCursor(bytes)
        var m = SyslogMessage(priority: try c.pri())
        // VERSION = NONZERO-DIGIT 0*2DIGIT (§6.2.2)
        guard let v = c.digits(max: 3), v.text.first != UInt8(ascii: "0") else { throw c.fail("VERSION must be 1 to 3 digits, not starting with 0") }
        m.version = v.value
        try c.space("VERSION")
        m.timestamp = try timestamp5424(&c)
        try c.space("TIMESTAMP")
        m.hostname = try c.headerField("HOSTNAME", max: 255)
        try c.space("HOSTNAME")
        m.appName = try c.headerField("APP-NAME", max: 48)
        try c.space("APP-NAME")
        m.procID = try c.headerField("PROCID", max: 128)
        try c.space("PROCID")
        m.msgID = try c.headerField("MSGID", max: 32)
        try c.space("MSGID")
        m.structuredData = try structuredData(&c)
        if c.atEnd { return m }
        try c.space("STRUCTURED-DATA")
        m.message = c.message()
        return m
    }

    /// §6.2.3: NILVALUE or `FULL-DATE "T" FULL-TIME` (RFC 3339 with at most 6 fraction digits, no leap seconds).
    static func timestamp5424(_ c: inout SyslogCursor) throws(SyslogParseError) -> UInt64? {
        if c.peek == UInt8(ascii: "-") {
            c.pos += 1
            return nil
        }
        let start = c.pos
        func num(_ n: Int, _ what: String) throws(SyslogParseError) -> Int {
            guard let d = c.digits(exactly: n) else { throw c.fail("TIMESTAMP: expected \(n)-digit \(what)") }
            return d
        }
        func lit(_ ch: Character) throws(SyslogParseError) {
            guard c.peek == ch.asciiValue else { throw c.fail("TIMESTAMP: expected '\(ch)'") }
            c.pos += 1
        }
        let year = try num(4, "year")
        try lit("-")
        let month = try num(2, "month")
        try lit("-")
        let day = try num(2, "day")
        try lit("T")
        let hour = try num(2, "hour")
        try lit(":")
        let minute = try num(2, "minute")
        try lit(":")
        let second = try num(2, "second")
        var nanos = 0
        if c.peek == UInt8(ascii: ".") {
            c.pos += 1
            var n = 0
            var scale = 100_000_000
            while let d = c.peek, d >= 0x30, d <= 0x39 {
                n += 1
                guard n <= 6 else { throw c.fail("TIMESTAMP: more than 6 fraction digits") }
                nanos += Int(d - 0x30) * scale
                scale /= 10
                c.pos += 1
            }
            guard n > 0 else { throw c.fail("TIMESTAMP: empty fraction") }
        }
        var offsetSeconds = 0
        switch c.peek {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            c.pos += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = c.peek == UInt8(ascii: "-") ? -1 : 1
            c.pos += 1
            let oh = try num(2, "offset hours")
            try lit(":")
            let om = try num(2, "offset minutes")
            guard oh <= 23, om <= 59 else { throw c.fail("TIMESTAMP: offset out of range") }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        default:
            throw c.fail("TIMESTAMP: expected 'Z' or a numeric offset")
        }
        guard (1...12).contains(month), (1...CivilTime.daysIn(month: month, year: year)).contains(day), hour <= 23, minute <= 59,
            second <= 59
        else { throw SyslogParseError(offset: start, reason: "TIMESTAMP: date or time out of range") }
        let secs = CivilTime.unixSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second) - offsetSeconds
        guard secs >= 0 else { throw SyslogParseError(offset: start, reason: "TIMESTAMP: before 1970") }
        // Unix nanoseconds end in 2554; a later 4-digit year would overflow.
        let (ns, overflow) = UInt64(secs).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, ns <= UInt64.max - UInt64(nanos) else {
            throw SyslogParseError(offset: start, reason: "TIMESTAMP: after 2554 (beyond 64-bit Unix nanoseconds)")
        }
        return ns + UInt64(nanos)
    }

    /// §6.3: NILVALUE or one or more `"[" SD-ID *(SP SD-PARAM) "]"`; PARAM-VALUE escapes `\"`, `\\`, `\]` (§6.3.3).
    static func structuredData(_ c: inout SyslogCursor) throws(SyslogParseError) -> [(id: String, params: [(name: String, value: String)])]? {
        if c.peek == UInt8(ascii: "-") {
            c.pos += 1
            return nil
        }
        guard c.peek == UInt8(ascii: "[") else { throw c.fail("STRUCTURED-DATA: expected '-' or '['") }
        var elements: [(id: String, params: [(name: String, value: String)])] = []
        while c.peek == UInt8(ascii: "[") {
            c.pos += 1
            let id = try c.sdName("SD-ID")
            var params: [(name: String, value: String)] = []
            while c.peek == UInt8(ascii: " ") {
                c.pos += 1
                let name = try c.sdName("PARAM-NAME")
                guard c.peek == UInt8(ascii: "=") else { throw c.fail("SD-PARAM: expected '='") }
                c.pos += 1
                guard c.peek == UInt8(ascii: "\"") else { throw c.fail("SD-PARAM: expected '\"'") }
                c.pos += 1
                var value: [UInt8] = []
                while true {
                    guard let b = c.peek else { throw c.fail("PARAM-VALUE: unterminated") }
                    c.pos += 1
                    if b == UInt8(ascii: "\"") { break }
                    if b == UInt8(ascii: "\\"), let n = c.peek, n == UInt8(ascii: "\"") || n == UInt8(ascii: "\\") || n == UInt8(ascii: "]") {
                        value.append(n)
                        c.pos += 1
                        continue
                    }
                    // §6.3.3: a backslash before any other character is kept as is.
                    value.append(b)
                }
                params.append((name, String(decoding: value, as: UTF8.self)))
            }
            guard c.peek == UInt8(ascii: "]") else { throw c.fail("SD-ELEMENT: expected ']' or ' '") }
            c.pos += 1
            elements.append((id, params))
        }
        return elements
    }

    // MARK: RFC 3164

    /// RFC 3164 §4.1: `<PRI>TIMESTAMP SP HOSTNAME SP TAG[PID]: CONTENT`. As a relay does (§4.3.2), a message
    /// whose TIMESTAMP is missing or malformed keeps everything after PRI as its MSG. The year, absent from
    /// the format, is the current one in `location`, or the previous one for a date more than a week ahead.
    public static func parse3164(_ bytes: [UInt8], location: SyslogTimeZone = .utc, now: UInt64 = 0) throws(SyslogParseError) -> SyslogMessage {
        var c = SyslogCursor(bytes)
        var m = SyslogMessage(priority: try c.pri())
        let afterPRI = c.pos
        guard let ts = timestamp3164(&c, location: location, now: now) else {
            c.pos = afterPRI
            m.message = c.message()
            return m
        }
        m.timestamp = ts
        // HOSTNAME: printable ASCII up to the next space.
        let hostStart = c.pos
        while let b = c.peek, b > 0x20, b < 0x7F { c.pos += 1 }
        if c.pos > hostStart && c.peek == UInt8(ascii: " ") {
            m.hostname = c.text(hostStart, c.pos)
            c.pos += 1
        } else {
            c.pos = hostStart
        }
        // TAG (§4.1.3): up to 32 alphanumeric-ish characters ended by '[', ':' or a space.
        let tagStart = c.pos
        while let b = c.peek, b > 0x20, b < 0x7F, b != UInt8(ascii: "["), b != UInt8(ascii: ":"), c.pos - tagStart < 48 { c.pos += 1 }
        let tagEnd = c.pos
        if tagEnd > tagStart, let b = c.peek, b == UInt8(ascii: "[") || b == UInt8(ascii: ":") {
            var pid: String?
            if b == UInt8(ascii: "[") {
                let pidStart = c.pos + 1
                var p = pidStart
                while p < bytes.count, bytes[p] != UInt8(ascii: "]"), bytes[p] > 0x20 { p += 1 }
                if p < bytes.count, bytes[p] == UInt8(ascii: "]"), p > pidStart {
                    pid = c.text(pidStart, p)
                    c.pos = p + 1
                }
            }
            if c.peek == UInt8(ascii: ":") {
                m.appName = c.text(tagStart, tagEnd)
                m.procID = pid
                c.pos += 1
                if c.peek == UInt8(ascii: " ") { c.pos += 1 }
            } else {
                c.pos = tagStart
            }
        } else {
            c.pos = tagStart
        }
        m.message = c.message()
        return m
    }

    /// §4.1.2: `Mmm dd hh:mm:ss ` (day space- or zero-padded). Leaves the cursor after the trailing space.
    static func timestamp3164(_ c: inout SyslogCursor, location: SyslogTimeZone, now: UInt64) -> UInt64? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let b = c.bytes
        let p = c.pos
        guard p + 16 <= b.count, b[p + 3] == 0x20, b[p + 6] == 0x20, b[p + 9] == UInt8(ascii: ":"), b[p + 12] == UInt8(ascii: ":"),
            b[p + 15] == 0x20
        else { return nil }
        guard let month = months.firstIndex(where: { Array($0.utf8) == Array(b[p..<p + 3]) }) else { return nil }
        func two(_ i: Int, spaceOK: Bool = false) -> Int? {
            let hi = b[i], lo = b[i + 1]
            guard lo >= 0x30, lo <= 0x39 else { return nil }
            if spaceOK && hi == 0x20 { return Int(lo - 0x30) }
            guard hi >= 0x30, hi <= 0x39 else { return nil }
            return Int(hi - 0x30) * 10 + Int(lo - 0x30)
        }
        guard let day = two(p + 4, spaceOK: true), let h = two(p + 7), let mi = two(p + 10), let s = two(p + 13), day >= 1, day <= 31,
            h <= 23, mi <= 59, s <= 60
        else { return nil }
        let nowSecs = Int(now / 1_000_000_000)
        var year = CivilTime.civil(fromUnix: nowSecs + location.offset(atUTC: nowSecs)).year
        func resolve(_ y: Int) -> Int? {
            guard day <= CivilTime.daysIn(month: month + 1, year: y) else { return nil }
            let local = CivilTime.unixSeconds(year: y, month: month + 1, day: day, hour: h, minute: mi, second: min(s, 59))
            return local - location.offset(atLocal: local)
        }
        guard var secs = resolve(year) else { return nil }
        if secs > nowSecs + 7 * 86_400, let prev = resolve(year - 1) {
            year -= 1
            secs = prev
        }
        guard secs >= 0 else { return nil }
        c.pos = p + 16
        return UInt64(secs) * 1_000_000_000
    }
}

/// A byte cursor over one message.
struct SyslogCursor {
    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }
    var atEnd: Bool { pos >= bytes.count }

    func fail(_ reason: String) -> SyslogParseError { SyslogParseError(offset: pos, reason: reason) }

    func text(_ from: Int, _ to: Int) -> String { String(decoding: bytes[from..<to], as: UTF8.self) }

    /// `"<" PRIVAL ">"`, PRIVAL 0–191 without leading zeros except "0" itself (RFC 5424 §6.2.1).
    mutating func pri() throws(SyslogParseError) -> Int {
        guard peek == UInt8(ascii: "<") else { throw fail("expected '<' starting PRI") }
        pos += 1
        guard let d = digits(max: 3), d.value <= 191, d.text.count == 1 || d.text.first != UInt8(ascii: "0") else {
            throw fail("PRI must be 0 to 191")
        }
        guard peek == UInt8(ascii: ">") else { throw fail("expected '>' ending PRI") }
        pos += 1
        return d.value
    }

    mutating func digits(max: Int) -> (value: Int, text: ArraySlice<UInt8>)? {
        let start = pos
        var v = 0
        while pos - start < max, let b = peek, b >= 0x30, b <= 0x39 {
            v = v * 10 + Int(b - 0x30)
            pos += 1
        }
        return pos > start ? (v, bytes[start..<pos]) : nil
    }

    mutating func digits(exactly n: Int) -> Int? {
        let start = pos
        guard let d = digits(max: n), pos - start == n else {
            pos = start
            return nil
        }
        return d.value
    }

    mutating func space(_ after: String) throws(SyslogParseError) {
        guard peek == 0x20 else { throw fail("expected a space after \(after)") }
        pos += 1
    }

    /// NILVALUE or 1*max PRINTUSASCII (§6.2.4–6.2.7).
    mutating func headerField(_ name: String, max: Int) throws(SyslogParseError) -> String? {
        let start = pos
        while let b = peek, b >= 33, b <= 126 { pos += 1 }
        guard pos > start else { throw fail("\(name) must be '-' or 1 to \(max) printable ASCII characters") }
        guard pos - start <= max else { throw SyslogParseError(offset: start, reason: "\(name) longer than \(max) characters") }
        if pos - start == 1 && bytes[start] == UInt8(ascii: "-") { return nil }
        return text(start, pos)
    }

    /// SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']', '"' (§6.3.2).
    mutating func sdName(_ what: String) throws(SyslogParseError) -> String {
        let start = pos
        while let b = peek, b >= 33, b <= 126, b != UInt8(ascii: "="), b != UInt8(ascii: "]"), b != UInt8(ascii: "\"") { pos += 1 }
        guard pos > start, pos - start <= 32 else { throw SyslogParseError(offset: start, reason: "\(what) must be 1 to 32 printable ASCII characters") }
        return text(start, pos)
    }

    /// The rest as MSG: a UTF-8 BOM is dropped (§6.4); invalid UTF-8 becomes U+FFFD; `nil` when empty.
    mutating func message() -> String? {
        var start = pos
        if bytes.count - start >= 3 && bytes[start] == 0xEF && bytes[start + 1] == 0xBB && bytes[start + 2] == 0xBF { start += 3 }
        pos = bytes.count
        return start < bytes.count ? text(start, bytes.count) : nil
    }
}

/// Proleptic Gregorian calendar arithmetic (days from civil, after H. Hinnant's public-domain algorithm).
enum CivilTime {
    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func unixSeconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> Int {
        daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    }

    static func civil(fromUnix secs: Int) -> (year: Int, month: Int, day: Int) {
        let z0 = (secs >= 0 ? secs : secs - 86_399) / 86_400 + 719_468
        let era = (z0 >= 0 ? z0 : z0 - 146_096) / 146_097
        let doe = z0 - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
