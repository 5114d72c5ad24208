import FuzzSupport
import SextantSyslog

/// Syslog messages as the syslog receiver parses them: RFC 5424 (strict) and RFC 3164 (tolerant, in
/// UTC and in a zone with daylight saving time). An RFC 5424 message that parses is written back out
/// (RFC 5424 §6 ABNF) and must parse to an equal message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: size))
    if let m = try? SyslogParser.parse(bytes, protocol: .rfc5424) {
        check(m)
        roundTripCheck(m.version.map { (1...999).contains($0) } ?? false, "RFC 5424 version \(String(describing: m.version))")
        let text = render5424(m)
        let again = reDecode("SyslogParser.parse5424(render(_))", text) { try SyslogParser.parse5424($0) }
        roundTripCheck(again == m, "RFC 5424 message changed on re-parse", "\(m)\n\(again)\n\(hexDump(text))")
    }
    for zone in [SyslogTimeZone.utc, Zones.berlin] {
        if let m = try? SyslogParser.parse(bytes, protocol: .rfc3164, location: zone, now: 1_764_000_000_000_000_000) { check(m) }
    }
    return 0
}

enum Zones {
    static let berlin = SyslogTimeZone(identifier: "Europe/Berlin") ?? .utc
}

func check(_ m: SyslogMessage) {
    roundTripCheck((0...191).contains(m.priority), "PRI \(m.priority) out of 0...191")
}

/// `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP BOM MSG]` (RFC 5424 §6).
func render5424(_ m: SyslogMessage) -> [UInt8] {
    var s = "<\(m.priority)>\(m.version ?? 1) \(m.timestamp.map(rfc3339) ?? "-") \(m.hostname ?? "-") \(m.appName ?? "-") "
    s += "\(m.procID ?? "-") \(m.msgID ?? "-") "
    if let sd = m.structuredData {
        for e in sd {
            s += "[" + e.id
            for p in e.params {
                var v = ""
                for ch in p.value {
                    if ch == "\"" || ch == "\\" || ch == "]" { v.append("\\") }
                    v.append(ch)
                }
                s += " \(p.name)=\"\(v)\""
            }
            s += "]"
        }
    } else {
        s += "-"
    }
    // §6.4: a BOM marks MSG as UTF-8; the parser drops exactly one, so a MSG starting with one survives.
    if let msg = m.message { s += " \u{FEFF}" + msg }
    return Array(s.utf8)
}

/// Unix nanoseconds as `YYYY-MM-DDThh:mm:ss.ffffffZ` (civil from days, proleptic Gregorian).
func rfc3339(_ nanos: UInt64) -> String {
    let secs = Int(nanos / 1_000_000_000)
    let micros = Int(nanos % 1_000_000_000) / 1000
    let days = secs / 86_400
    let rem = secs % 86_400
    let z = days + 719_468
    let era = z / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(rem / 3600, 2)):\(pad(rem % 3600 / 60, 2)):\(pad(rem % 60, 2)).\(pad(micros, 6))Z"
}

runLibFuzzer(fuzz)
