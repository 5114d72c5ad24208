import SextantModel
import SextantOTLP
import SextantPipeline

/// The stanza operators the `filelog` receiver runs on each entry, in order. Parsers write what they
/// find into the record's attributes (stanza's default `parse_to: attributes`).
///
/// Supported: `json_parser` (a JSON object → attributes) and `regex_parser` (named groups → string
/// attributes), each with optional `parse_from` (`body` or `attributes.NAME`), `timestamp`
/// (`parse_from`, `layout_type: epoch|strptime`, `layout`), `severity` (`parse_from`; level names
/// mapped as stanza's default preset) and `on_error` (`send`, `send_quiet`, `drop`, `drop_quiet`).
public struct LogOperator: Sendable {
    public enum Kind: Sendable {
        case json
        case regex(CompiledRegex, groups: [String])
    }

    public enum Field: Sendable, Equatable {
        case body
        case attribute(String)

        static func parse(_ s: String) -> Field? {
            if s == "body" { return .body }
            if s.hasPrefix("attributes.") && s.count > 11 { return .attribute(String(s.dropFirst(11))) }
            if s.hasPrefix("attributes[\"") && s.hasSuffix("\"]") && s.count > 14 { return .attribute(String(s.dropFirst(12).dropLast(2))) }
            return nil
        }
    }

    public var id: String
    public var kind: Kind
    public var parseFrom: Field = .body
    public var timestamp: (field: Field, layout: TimestampLayout)?
    public var severityFrom: Field?
    public var dropOnError = false
    public var quiet = false

    /// Reads one entry of `operators`; `nil` (with an error recorded) when it cannot run.
    static func parse(_ r: inout ConfigReader) -> LogOperator? {
        let type = r.choice("type", ["json_parser", "regex_parser"], default: "")
        let id = r.string("id", default: type)
        var kind: Kind?
        switch type {
        case "json_parser":
            kind = .json
        case "regex_parser":
            guard let pattern = r.optionalString("regex") else {
                r.error(nil, "\(r.path): regex_parser needs regex")
                return nil
            }
            do {
                let re = try CompiledRegex(pattern)
                let groups = namedGroups(pattern)
                if groups.isEmpty { r.error("regex", "\(r.qualified("regex")) has no named groups (?P<name>...)") }
                kind = .regex(re, groups: groups)
            } catch {
                r.error("regex", "\(r.qualified("regex")): invalid regular expression: \(error)")
            }
        default:
            if !r.has("type") { r.error(nil, "\(r.path) needs type (json_parser or regex_parser)") }
        }
        var op = LogOperator(id: id, kind: kind ?? .json)
        if let f = r.optionalString("parse_from") {
            if let field = Field.parse(f) { op.parseFrom = field } else { r.error("parse_from", "\(r.qualified("parse_from")): use body or attributes.NAME") }
        }
        if r.has("parse_to") {
            let to = r.string("parse_to", default: "attributes")
            if to != "attributes" { r.error("parse_to", "\(r.qualified("parse_to")): only attributes is supported") }
        }
        switch r.choice("on_error", ["send", "send_quiet", "drop", "drop_quiet"], default: "send") {
        case "drop": op.dropOnError = true
        case "drop_quiet": (op.dropOnError, op.quiet) = (true, true)
        case "send_quiet": op.quiet = true
        default: break
        }
        if r.has("timestamp") {
            var t = r.section("timestamp")
            let from = t.string("parse_from", default: "")
            let layoutType = t.choice("layout_type", ["epoch", "strptime"], default: "strptime")
            let layout = t.optionalString("layout")
            if let field = Field.parse(from) {
                switch layoutType {
                case "epoch":
                    let l = layout ?? "s"
                    if let unit = TimestampLayout.EpochUnit(rawValue: l) {
                        op.timestamp = (field, .epoch(unit))
                    } else {
                        t.error("layout", "\(t.qualified("layout")): epoch layouts are s, ms, us, ns, s.ms, s.us, s.ns")
                    }
                default:
                    if let layout {
                        do { op.timestamp = (field, .strptime(try StrptimeLayout(layout))) } catch {
                            t.error("layout", "\(t.qualified("layout")): \(error)")
                        }
                    } else {
                        t.error(nil, "\(t.path) needs layout for layout_type strptime")
                    }
                }
            } else {
                t.error("parse_from", "\(t.qualified("parse_from")) must be body or attributes.NAME")
            }
            t.finish()
        }
        if r.has("severity") {
            var s = r.section("severity")
            let from = s.string("parse_from", default: "")
            if let field = Field.parse(from) { op.severityFrom = field } else {
                s.error("parse_from", "\(s.qualified("parse_from")) must be body or attributes.NAME")
            }
            s.finish()
        }
        return kind == nil ? nil : op
    }

    /// Names of `(?P<name>…)` / `(?<name>…)` groups, in pattern order.
    static func namedGroups(_ pattern: String) -> [String] {
        var names: [String] = []
        let b = Array(pattern.utf8)
        var i = 0
        while i + 3 < b.count {
            if b[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if b[i] == UInt8(ascii: "("), b[i + 1] == UInt8(ascii: "?") {
                var j = i + 2
                if b[j] == UInt8(ascii: "P") { j += 1 }
                if j < b.count, b[j] == UInt8(ascii: "<"), j + 1 < b.count, b[j + 1] != UInt8(ascii: "="), b[j + 1] != UInt8(ascii: "!") {
                    let start = j + 1
                    var k = start
                    while k < b.count, b[k] != UInt8(ascii: ">") { k += 1 }
                    names.append(String(decoding: b[start..<k], as: UTF8.self))
                    i = k
                }
            }
            i += 1
        }
        return names
    }

    /// Runs the operator on `record`. Returns the error text when parsing failed (the record is then
    /// left as it was).
    func apply(to record: inout LogRecord) -> String? {
        guard let input = value(parseFrom, in: record) else { return "\(id): field to parse is missing" }
        guard case .string(let text) = input else { return "\(id): field to parse is not a string" }
        switch kind {
        case .json:
            do {
                let obj = try JSONValue.parseObject(text)
                for kv in obj { record.attributes.set(kv.key, kv.value) }
            } catch {
                return "\(id): \(error)"
            }
        case .regex(let re, let groups):
            guard let m = re.firstMatch(text) else { return "\(id): regex pattern does not match" }
            for g in groups {
                if let sub = m.output[g]?.substring { record.attributes.set(g, .string(String(sub))) }
            }
        }
        if let (field, layout) = timestamp {
            guard let v = value(field, in: record) else { return "\(id): timestamp field is missing" }
            guard let t = layout.parse(v) else { return "\(id): timestamp '\(v.asString)' does not match the layout" }
            record.timeUnixNano = t
        }
        if let severityFrom, let v = value(severityFrom, in: record) {
            if let (n, text) = Self.severity(v.asString) {
                record.severityNumber = n
                record.severityText = text
            }
        }
        return nil
    }

    private func value(_ f: Field, in record: LogRecord) -> AnyValue? {
        switch f {
        case .body: return record.body
        case .attribute(let name): return record.attributes[key: name]
        }
    }

    /// Stanza's default severity preset, by level name (case-insensitive).
    static func severity(_ s: String) -> (SeverityNumber, String)? {
        let table: [String: Int32] = [
            "trace": 1, "trace2": 2, "trace3": 3, "trace4": 4, "debug": 5, "debug2": 6, "debug3": 7, "debug4": 8,
            "info": 9, "info2": 10, "info3": 11, "info4": 12, "notice": 10, "warn": 13, "warning": 13, "warn2": 14, "warn3": 15,
            "warn4": 16, "error": 17, "err": 17, "error2": 18, "error3": 19, "error4": 20, "critical": 18, "crit": 18,
            "fatal": 21, "alert": 19, "emergency": 21, "emerg": 21, "fatal2": 22, "fatal3": 23, "fatal4": 24,
        ]
        guard let n = table[s.lowercased()] else { return nil }
        return (SeverityNumber(rawValue: n), s)
    }
}

/// How a `timestamp` block reads time.
public enum TimestampLayout: Sendable {
    public enum EpochUnit: String, Sendable {
        case s, ms, us, ns
        case sms = "s.ms", sus = "s.us", sns = "s.ns"
    }

    case epoch(EpochUnit)
    case strptime(StrptimeLayout)

    /// Unix nanoseconds, or `nil` when the value does not fit the layout.
    func parse(_ v: AnyValue) -> UInt64? {
        switch self {
        case .epoch(let unit):
            let d: Double
            switch v {
            case .int(let i): d = Double(i)
            case .double(let x): d = x
            case .string(let s): guard let x = Double(s) else { return nil }; d = x
            default: return nil
            }
            guard d >= 0 else { return nil }
            if case .int(let i) = v {
                switch unit {
                case .s: return UInt64(i) * 1_000_000_000
                case .ms: return UInt64(i) * 1_000_000
                case .us: return UInt64(i) * 1_000
                case .ns: return UInt64(i)
                default: break
                }
            }
            let scale: Double
            switch unit {
            case .s, .sms, .sus, .sns: scale = 1e9
            case .ms: scale = 1e6
            case .us: scale = 1e3
            case .ns: scale = 1
            }
            return UInt64((d * scale).rounded())
        case .strptime(let layout):
            guard case .string(let s) = v else { return nil }
            return layout.parse(s)
        }
    }
}

/// A `strptime` layout: `%Y %m %d %e %H %M %S %f %L %z %Z %b %h %a %y %j %T %F %%` and literal text.
/// `%f` takes up to 9 fraction digits, `%L` 3; `%z` reads `Z`, `±hh:mm` or `±hhmm`; without a zone
/// the time is UTC.
public struct StrptimeLayout: Sendable {
    enum Piece: Sendable, Equatable { case literal(UInt8), year, year2, month, monthName, day, hour, minute, second, fraction(Int), zone, zoneName, weekday }
    let pieces: [Piece]

    struct LayoutError: Error, CustomStringConvertible { var description: String }

    public init(_ layout: String) throws {
        var p: [Piece] = []
        var it = Array(layout.utf8).makeIterator()
        while let b = it.next() {
            guard b == UInt8(ascii: "%") else {
                p.append(.literal(b))
                continue
            }
            guard let d = it.next() else { throw LayoutError(description: "layout ends with '%'") }
            switch d {
            case UInt8(ascii: "Y"): p.append(.year)
            case UInt8(ascii: "y"): p.append(.year2)
            case UInt8(ascii: "m"): p.append(.month)
            case UInt8(ascii: "b"), UInt8(ascii: "h"): p.append(.monthName)
            case UInt8(ascii: "d"), UInt8(ascii: "e"): p.append(.day)
            case UInt8(ascii: "H"): p.append(.hour)
            case UInt8(ascii: "M"): p.append(.minute)
            case UInt8(ascii: "S"): p.append(.second)
            case UInt8(ascii: "f"): p.append(.fraction(9))
            case UInt8(ascii: "L"): p.append(.fraction(3))
            case UInt8(ascii: "z"): p.append(.zone)
            case UInt8(ascii: "Z"): p.append(.zoneName)
            case UInt8(ascii: "a"): p.append(.weekday)
            case UInt8(ascii: "T"): p += [.hour, .literal(UInt8(ascii: ":")), .minute, .literal(UInt8(ascii: ":")), .second]
            case UInt8(ascii: "F"): p += [.year, .literal(UInt8(ascii: "-")), .month, .literal(UInt8(ascii: "-")), .day]
            case UInt8(ascii: "%"): p.append(.literal(UInt8(ascii: "%")))
            default: throw LayoutError(description: "unsupported directive %\(Character(Unicode.Scalar(d)))")
            }
        }
        pieces = p
    }

    public func parse(_ text: String) -> UInt64? {
        let b = Array(text.utf8)
        var i = 0
        var (year, month, day, hour, minute, second, nanos, offset) = (1970, 1, 1, 0, 0, 0, 0, 0)
        func number(_ maxDigits: Int) -> Int? {
            while i < b.count, b[i] == 0x20, maxDigits == 2 { i += 1 }  // %e and friends may be space-padded
            let start = i
            var v = 0
            while i < b.count, i - start < maxDigits, b[i] >= 0x30, b[i] <= 0x39 {
                v = v * 10 + Int(b[i] - 0x30)
                i += 1
            }
            return i > start ? v : nil
        }
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        for piece in pieces {
            switch piece {
            case .literal(let c):
                guard i < b.count, b[i] == c else { return nil }
                i += 1
            case .year: guard let v = number(4) else { return nil }; year = v
            case .year2: guard let v = number(2) else { return nil }; year = v < 69 ? 2000 + v : 1900 + v
            case .month: guard let v = number(2) else { return nil }; month = v
            case .day: guard let v = number(2) else { return nil }; day = v
            case .hour: guard let v = number(2) else { return nil }; hour = v
            case .minute: guard let v = number(2) else { return nil }; minute = v
            case .second: guard let v = number(2) else { return nil }; second = v
            case .fraction(let maxDigits):
                let start = i
                guard let v = number(maxDigits) else { return nil }
                var n = v
                for _ in 0..<(9 - (i - start)) { n *= 10 }
                nanos = n
            case .monthName, .weekday:
                guard i + 3 <= b.count else { return nil }
                let word = String(decoding: b[i..<i + 3], as: UTF8.self).lowercased()
                i += 3
                if piece == .monthName {
                    guard let m = months.firstIndex(of: word) else { return nil }
                    month = m + 1
                }
                while i < b.count, (b[i] | 0x20) >= UInt8(ascii: "a"), (b[i] | 0x20) <= UInt8(ascii: "z") { i += 1 }
            case .zone:
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: "Z") {
                    i += 1
                    continue
                }
                guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let hh = number(2) else { return nil }
                if i < b.count, b[i] == UInt8(ascii: ":") { i += 1 }
                guard let mm = number(2) else { return nil }
                offset = sign * (hh * 3600 + mm * 60)
            case .zoneName:
                // Only UTC-equivalent names carry no offset we could know without a tz database.
                while i < b.count, b[i] > 0x20 { i += 1 }
            }
        }
        guard i == b.count, (1...12).contains(month), day >= 1, day <= CivilTime.daysIn(month: month, year: year), hour <= 23,
            minute <= 59, second <= 60
        else { return nil }
        let secs = CivilTime.unixSeconds(year: year, month: month, day: day, hour: hour, minute: minute, second: min(second, 59)) - offset
        guard secs >= 0 else { return nil }
        return UInt64(secs) * 1_000_000_000 + UInt64(nanos)
    }
}

/// JSON text → OTLP `AnyValue`s, on the project's strict RFC 8259 reader. Integers that fit Int64 stay
/// integers; other numbers become doubles.
enum JSONValue {
    static func parseObject(_ text: String) throws -> [KeyValue] {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBytes { raw in
            var r = JSONReader(UnsafeRawBufferPointer(raw))
            guard r.peek() == UInt8(ascii: "{") else { throw r.error("expected a JSON object") }
            guard case .kvlist(let kv) = try value(&r) else { return [] }
            try r.finish()
            return kv
        }
    }

    static func value(_ r: inout JSONReader) throws -> AnyValue {
        switch r.peek() {
        case UInt8(ascii: "{"):
            var o = try r.beginObject()
            var kv: [KeyValue] = []
            while let k = try r.nextKey(&o) {
                let name = k.unescaped ?? String(decoding: UnsafeBufferPointer(start: k.start, count: k.count), as: UTF8.self)
                kv.append(KeyValue(name, try value(&r)))
            }
            return .kvlist(kv)
        case UInt8(ascii: "["):
            var a = try r.beginArray()
            var items: [AnyValue] = []
            while try r.nextElement(&a) { items.append(try value(&r)) }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try r.readString())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try r.readBool())
        case UInt8(ascii: "n"):
            _ = try r.consumeNull()
            return .empty
        default:
            let t = try r.readNumberToken()
            let s = String(decoding: UnsafeBufferPointer(start: t.start, count: t.count), as: UTF8.self)
            if t.isInteger, let i = Int64(s) { return .int(i) }
            return .double(Double(s) ?? 0)
        }
    }
}
