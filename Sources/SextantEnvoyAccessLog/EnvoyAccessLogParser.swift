import SextantModel
import SextantOTLP

/// Parses Envoy and Istio access-log lines (formats in `EnvoyAccessLogFormat`).
///
/// The text formats are positional: a `[START_TIME]`, then space-separated fields, some in double
/// quotes (which may hold spaces). The number of fields and which of them are quoted tell Envoy's
/// default format (12 fields after the time) from Istio's (21). Envoy does not escape quotes inside
/// quoted fields, so a quoted field ends at a `"` followed by a space or the end of the line.
public enum EnvoyAccessLogParser {
    /// Parses `line` as the first of `formats` that fits it; `nil` when none does.
    public static func parse(_ line: some StringProtocol, formats: [EnvoyAccessLogFormat] = EnvoyAccessLogFormat.allCases)
        -> EnvoyAccessLogEntry?
    {
        var text = Substring(line)
        while let last = text.last, last == "\n" || last == "\r" || last == " " { text.removeLast() }
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        guard let first = text.first else { return nil }
        if first == "{" {
            guard formats.contains(.istioJSON) else { return nil }
            return parseJSON(text)
        }
        guard first == "[", formats.contains(.envoyDefault) || formats.contains(.istioText),
            let fields = tokenize(text)
        else { return nil }
        if fields.tokens.count == 12 && formats.contains(.envoyDefault) && fields.quotedMatch(envoyQuoted) {
            return envoyDefault(fields)
        }
        if fields.tokens.count == 21 && formats.contains(.istioText) && fields.quotedMatch(istioQuoted) {
            return istioText(fields)
        }
        return nil
    }

    // MARK: Text formats

    private struct Fields {
        var start: Substring
        var tokens: [Substring]
        var quoted: [Bool]

        func quotedMatch(_ pattern: [Bool]) -> Bool { quoted == pattern }
    }

    // Which fields after `[START_TIME]` are double-quoted.
    private static let envoyQuoted = [true, false, false, false, false, false, false, true, true, true, true, true]
    private static let istioQuoted = [
        true, false, false, false, false, true, false, false, false, false, true, true, true, true, true, false, false, false,
        false, false, false,
    ]

    /// Splits on the UTF-8 view: `[`, `]`, `"` and space are ASCII, so byte positions are valid
    /// string indices, and no grapheme breaking is needed.
    private static func tokenize(_ text: Substring) -> Fields? {
        let u = text.utf8
        let space = UInt8(ascii: " ")
        let quote = UInt8(ascii: "\"")
        guard let close = u.firstIndex(of: UInt8(ascii: "]")) else { return nil }
        let start = text[u.index(after: u.startIndex)..<close]
        var tokens: [Substring] = []
        var quoted: [Bool] = []
        tokens.reserveCapacity(21)
        quoted.reserveCapacity(21)
        var i = u.index(after: close)
        let end = u.endIndex
        while i < end {
            if u[i] == space {
                i = u.index(after: i)
                continue
            }
            if tokens.count > 32 { return nil }
            if u[i] == quote {
                let contentStart = u.index(after: i)
                var j = contentStart
                var found: String.Index?
                while j < end {
                    if u[j] == quote {
                        let next = u.index(after: j)
                        if next == end || u[next] == space {
                            found = j
                            break
                        }
                    }
                    j = u.index(after: j)
                }
                guard let closing = found else { return nil }
                tokens.append(text[contentStart..<closing])
                quoted.append(true)
                i = u.index(after: closing)
            } else {
                var j = i
                while j < end && u[j] != space { j = u.index(after: j) }
                tokens.append(text[i..<j])
                quoted.append(false)
                i = j
            }
        }
        return Fields(start: start, tokens: tokens, quoted: quoted)
    }

    private static func value(_ s: Substring) -> String? { s == "-" || s.isEmpty ? nil : String(s) }

    /// An integer field; `-` is absent, anything else non-numeric makes the line unparseable.
    private static func integer(_ s: Substring) -> Int64?? {
        if s == "-" || s.isEmpty { return .some(nil) }
        guard let v = Int64(s) else { return nil }
        return .some(v)
    }

    /// `"METHOD PATH PROTOCOL"` (all `-` for TCP connections).
    private static func requestLine(_ s: Substring, into e: inout EnvoyAccessLogEntry) {
        let parts = s.split(separator: " ", omittingEmptySubsequences: true)
        guard !parts.isEmpty else { return }
        e.method = value(parts[0])
        if parts.count >= 3 {
            e.path = value(s[parts[1].startIndex..<parts[parts.count - 2].endIndex])
            e.protocol = value(parts[parts.count - 1])
        } else if parts.count == 2 {
            e.path = value(parts[1])
        }
    }

    private static func common(_ f: Fields, _ format: EnvoyAccessLogFormat) -> EnvoyAccessLogEntry? {
        var e = EnvoyAccessLogEntry(format: format)
        if f.start != "-" {
            guard let t = RFC3339.parse(f.start) else { return nil }
            e.startTimeUnixNano = t
        }
        requestLine(f.tokens[0], into: &e)
        guard let code = integer(f.tokens[1]) else { return nil }
        e.responseCode = code
        e.responseFlags = flags(f.tokens[2])
        return e
    }

    private static func flags(_ s: Substring) -> [String] {
        guard s != "-" else { return [] }
        return s.split(separator: ",").map { String($0) }
    }

    private static func envoyDefault(_ f: Fields) -> EnvoyAccessLogEntry? {
        guard var e = common(f, .envoyDefault) else { return nil }
        let t = f.tokens
        guard let rx = integer(t[3]), let tx = integer(t[4]), let d = integer(t[5]), let ust = integer(t[6]) else { return nil }
        (e.bytesReceived, e.bytesSent, e.durationMillis, e.upstreamServiceTimeMillis) = (rx, tx, d, ust)
        e.forwardedFor = value(t[7])
        e.userAgent = value(t[8])
        e.requestID = value(t[9])
        e.authority = value(t[10])
        e.upstreamHost = value(t[11])
        return e
    }

    private static func istioText(_ f: Fields) -> EnvoyAccessLogEntry? {
        guard var e = common(f, .istioText) else { return nil }
        let t = f.tokens
        e.responseCodeDetails = value(t[3])
        e.connectionTerminationDetails = value(t[4])
        e.upstreamTransportFailureReason = value(t[5])
        guard let rx = integer(t[6]), let tx = integer(t[7]), let d = integer(t[8]), let ust = integer(t[9]) else { return nil }
        (e.bytesReceived, e.bytesSent, e.durationMillis, e.upstreamServiceTimeMillis) = (rx, tx, d, ust)
        e.forwardedFor = value(t[10])
        e.userAgent = value(t[11])
        e.requestID = value(t[12])
        e.authority = value(t[13])
        e.upstreamHost = value(t[14])
        e.upstreamCluster = value(t[15])
        e.upstreamLocalAddress = value(t[16])
        e.downstreamLocalAddress = value(t[17])
        e.downstreamRemoteAddress = value(t[18])
        e.requestedServerName = value(t[19])
        e.routeName = value(t[20])
        return e
    }

    // MARK: JSON

    /// A JSON scalar as text, with whether it was a number.
    private enum Scalar {
        case text(String)
        case number(String)
        case null
    }

    /// An Istio JSON line: one flat object. Values are strings, numbers or `null`; an object or
    /// array value is kept as its JSON text in `extra`. A line with none of Istio's keys is not
    /// an Istio access log.
    private static func parseJSON(_ text: Substring) -> EnvoyAccessLogEntry? {
        var bytes = Array(text.utf8)
        let pairs: [(String, Scalar)]? = bytes.withUnsafeMutableBytes { raw -> [(String, Scalar)]? in
            var r = JSONReader(UnsafeRawBufferPointer(raw))
            var out: [(String, Scalar)] = []
            do {
                var object = try r.beginObject()
                while let key = try r.nextKey(&object) {
                    let name = key.unescaped ?? String(decoding: UnsafeBufferPointer(start: key.start, count: key.count), as: UTF8.self)
                    switch r.peek() {
                    case UInt8(ascii: "\""): out.append((name, .text(try r.readString())))
                    case UInt8(ascii: "n"):
                        _ = try r.consumeNull()
                        out.append((name, .null))
                    case UInt8(ascii: "t"), UInt8(ascii: "f"): out.append((name, .text(try r.readBool() ? "true" : "false")))
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        let from = r.pos
                        try r.skipValue()
                        let slice = raw[from..<r.pos]
                        out.append((name, .text(String(decoding: slice, as: UTF8.self).trimmingWhitespace)))
                    default:
                        let token = try r.readNumberToken()
                        out.append((name, .number(String(decoding: UnsafeBufferPointer(start: token.start, count: token.count), as: UTF8.self))))
                    }
                }
                try r.finish()
            } catch {
                return nil
            }
            return out
        }
        bytes.removeAll()
        guard let pairs, pairs.contains(where: { istioJSONKeys.contains($0.0) }) else { return nil }
        var e = EnvoyAccessLogEntry(format: .istioJSON)
        for (key, v) in pairs {
            let s: String?
            switch v {
            case .text(let t): s = t == "-" || t.isEmpty ? nil : t
            case .number(let n): s = n
            case .null: s = nil
            }
            func int() -> Int64?? {
                guard let s else { return .some(nil) }
                if let i = Int64(s) { return .some(i) }
                // Typed JSON formats may print integral numbers as `12.0`.
                if let d = Double(s), d.rounded() == d, abs(d) < 9e18 { return .some(Int64(d)) }
                return nil
            }
            switch key {
            case "start_time":
                if let s {
                    guard let t = RFC3339.parse(Substring(s)) else { return nil }
                    e.startTimeUnixNano = t
                }
            case "method": e.method = s
            case "path": e.path = s
            case "protocol": e.protocol = s
            case "response_code":
                guard let v = int() else { return nil }
                e.responseCode = v
            case "response_flags": e.responseFlags = s.map { flags(Substring($0)) } ?? []
            case "response_code_details": e.responseCodeDetails = s
            case "connection_termination_details": e.connectionTerminationDetails = s
            case "upstream_transport_failure_reason": e.upstreamTransportFailureReason = s
            case "bytes_received":
                guard let v = int() else { return nil }
                e.bytesReceived = v
            case "bytes_sent":
                guard let v = int() else { return nil }
                e.bytesSent = v
            case "duration":
                guard let v = int() else { return nil }
                e.durationMillis = v
            case "upstream_service_time":
                guard let v = int() else { return nil }
                e.upstreamServiceTimeMillis = v
            case "x_forwarded_for": e.forwardedFor = s
            case "user_agent": e.userAgent = s
            case "request_id": e.requestID = s
            case "authority": e.authority = s
            case "upstream_host": e.upstreamHost = s
            case "upstream_cluster": e.upstreamCluster = s
            case "upstream_local_address": e.upstreamLocalAddress = s
            case "downstream_local_address": e.downstreamLocalAddress = s
            case "downstream_remote_address": e.downstreamRemoteAddress = s
            case "requested_server_name": e.requestedServerName = s
            case "route_name": e.routeName = s
            default:
                if let s { e.extra.append((key, s)) }
            }
        }
        return e
    }

    /// The keys of Istio's JSON access log (`EnvoyJSONLogFormatIstio`).
    public static let istioJSONKeys: Set<String> = [
        "start_time", "route_name", "method", "path", "protocol", "response_code", "response_flags", "response_code_details",
        "connection_termination_details", "upstream_transport_failure_reason", "bytes_received", "bytes_sent", "duration",
        "upstream_service_time", "x_forwarded_for", "user_agent", "request_id", "authority", "upstream_host", "upstream_cluster",
        "upstream_local_address", "downstream_local_address", "downstream_remote_address", "requested_server_name",
    ]
}

/// RFC 3339 timestamps (§5.6), as Envoy prints `%START_TIME%` (`2016-04-15T20:17:00.310Z`).
public enum RFC3339 {
    /// Unix nanoseconds; `nil` for anything that is not a valid RFC 3339 date-time from 1970 on.
    public static func parse(_ s: Substring) -> UInt64? {
        let b = Array(s.utf8)
        func digits(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= b.count else { return nil }
            var v = 0
            for i in at..<at + n {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
            let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == UInt8(ascii: " "),
            let hour = digits(11, 2), b[13] == UInt8(ascii: ":"), let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60, second <= 60,
            year >= 1970
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var n = 0
            var scale = 100_000_000
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if n < 9 { nanos += Int(b[i] - 0x30) * scale }
                scale /= 10
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2), oh < 24, om < 60
            else { return nil }
            offset = (oh * 60 + om) * 60 * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        default:
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset
        guard seconds >= 0 else { return nil }
        // Unix nanoseconds end in 2554; a later 4-digit year would overflow.
        let (ns, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, ns <= UInt64.max - UInt64(nanos) else { return nil }
        return ns + UInt64(nanos)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}
