import SextantModel

/// Query-parameter parsing, after jaeger-query's `cmd/query/app/query_parser.go`; error messages
/// read as jaeger-query's do.
extension JaegerQueryAPI {
    /// Decoded query parameters, in request order.
    struct Parameters {
        var pairs: [(String, String)]

        init(_ pairs: [(String, String)]) { self.pairs = pairs }

        /// The first value of `name`, like Go's `FormValue`; `nil` when absent.
        func first(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }

        /// The first value of `name` unless absent or empty (jaeger treats both as unset).
        func nonEmpty(_ name: String) -> String? { first(name).flatMap { $0.isEmpty ? nil : $0 } }

        func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
    }

    struct ParameterError: Error {
        var message: String

        static let serviceRequired = ParameterError(message: "parameter 'service' is required")

        static func parse(_ name: String, _ detail: String) -> ParameterError {
            ParameterError(message: "unable to parse param '\(name)': \(detail)")
        }
    }

    /// A parsed `/api/traces` request: a search, or a list of trace IDs.
    struct Search {
        var query: TraceQuery
        var traceIDs: [TraceID] = []

        init(_ p: Parameters, now: UInt64) throws(ParameterError) {
            let nowMicros = now / 1000
            // start: given, else `lookback` (or jaeger-query's two days) before now.
            var startMin: UInt64
            if let start = p.nonEmpty("start") {
                startMin = try Self.micros(start, "start")
            } else if let lookback = p.nonEmpty("lookback"), lookback != "custom" {
                do {
                    let nanos = try GoDuration.parse(lookback, extraUnits: true)
                    startMin = Self.before(nowMicros, UInt64(max(nanos, 0) / 1000))
                } catch {
                    throw .parse("lookback", error.message)
                }
            } else {
                startMin = Self.before(nowMicros, JaegerQueryAPI.defaultLookbackMicros)
            }
            var startMax = nowMicros
            if let end = p.nonEmpty("end") { startMax = try Self.micros(end, "end") }
            if startMin > startMax { startMin = startMax &+ 1 }  // an empty range, kept well-formed

            let tags = try Self.tags(simple: p.all("tag"), structured: p.all("tags"))

            var limit = JaegerQueryAPI.defaultLimit
            if let text = p.nonEmpty("limit") {
                guard let n = Int32(text) else {
                    throw ParameterError(message: "strconv.ParseInt: parsing \(goQuote(text)): \(Self.intFailure(text))")
                }
                limit = Int(n)
            }
            let minDuration = try Self.duration(p, "minDuration")
            let maxDuration = try Self.duration(p, "maxDuration")

            for text in p.all("traceID") {
                do {
                    traceIDs.append(try parseTraceID(text))
                } catch {
                    throw ParameterError(message: "cannot parse traceID param: \(error.message)")
                }
            }
            let service = p.first("service") ?? ""
            if traceIDs.isEmpty && service.isEmpty { throw .serviceRequired }
            if minDuration != 0 && maxDuration != 0 && maxDuration < minDuration {
                throw ParameterError(message: "'maxDuration' should be greater than 'minDuration'")
            }
            query = TraceQuery(
                service: service, operation: p.nonEmpty("operation"), tags: tags, startMin: startMin, startMax: startMax,
                durationMin: minDuration == 0 ? nil : minDuration, durationMax: maxDuration == 0 ? nil : maxDuration,
                limit: limit)
        }

        static func before(_ time: UInt64, _ span: UInt64) -> UInt64 { time > span ? time - span : 0 }

        /// Unix microseconds, a signed decimal as Go's `ParseInt`; times before 1970 clamp to 0.
        static func micros(_ text: String, _ name: String) throws(ParameterError) -> UInt64 {
            guard let v = Int64(text) else {
                throw .parse(name, "strconv.ParseInt: parsing \(goQuote(text)): \(intFailure(text))")
            }
            return UInt64(max(v, 0))
        }

        static func intFailure(_ text: String) -> String {
            let digits = text.drop { $0 == "+" || $0 == "-" }
            return !digits.isEmpty && digits.allSatisfy(\.isASCIIDigit) ? "value out of range" : "invalid syntax"
        }

        /// A Go duration in microseconds; 0 when absent (jaeger: unset). Negative durations are
        /// refused: no span has one, so they could only ever select nothing.
        static func duration(_ p: Parameters, _ name: String) throws(ParameterError) -> UInt64 {
            guard let text = p.nonEmpty(name) else { return 0 }
            let nanos: Int64
            do {
                nanos = try GoDuration.parse(text)
            } catch {
                throw .parse(name, error.message)
            }
            guard nanos >= 0 else { throw .parse(name, "negative duration \(goQuote(text))") }
            return UInt64(nanos / 1000)
        }

        /// `tag=key:value` pairs, then `tags` objects (JSON, or logfmt as Grafana sends); a key given
        /// twice keeps its first place and its last value.
        static func tags(simple: [String], structured: [String]) throws(ParameterError) -> [(String, String)] {
            var out: [(String, String)] = []
            func add(_ key: String, _ value: String) {
                if let i = out.firstIndex(where: { $0.0 == key }) { out[i].1 = value } else { out.append((key, value)) }
            }
            for tag in simple {
                guard let colon = tag.firstIndex(of: ":") else {
                    throw ParameterError(message: "malformed 'tag' parameter, expecting key:value, received: \(tag)")
                }
                add(String(tag[..<colon]), String(tag[tag.index(after: colon)...]))
            }
            for text in structured {
                let trimmed = text.drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
                if trimmed.hasPrefix("{") {
                    do {
                        for (k, v) in try TagsObject.parseJSON(text) { add(k, v) }
                    } catch {
                        throw ParameterError(message: "malformed 'tags' parameter, cannot unmarshal JSON: \(error.message)")
                    }
                } else {
                    do {
                        for (k, v) in try TagsObject.parseLogfmt(text) { add(k, v) }
                    } catch {
                        throw ParameterError(message: "malformed 'tags' parameter, cannot parse logfmt: \(error.message)")
                    }
                }
            }
            return out
        }
    }

    /// Jaeger's `model.TraceIDFromString`: up to 32 hex digits, leading zeros optional; the last 16
    /// are the low half.
    static func parseTraceID(_ text: String) throws(ParameterError) -> TraceID {
        let digits = Array(text.utf8)
        if digits.count > 32 {
            throw ParameterError(message: "TraceID cannot be longer than 32 hex characters: \(text)")
        }
        func parse(_ part: ArraySlice<UInt8>) throws(ParameterError) -> UInt64 {
            guard let v = Hex.parseUInt64(part) else {
                throw ParameterError(message: "strconv.ParseUint: parsing \(goQuote(String(decoding: part, as: UTF8.self))): invalid syntax")
            }
            return v
        }
        if digits.count > 16 {
            return TraceID(high: try parse(digits[..<(digits.count - 16)]), low: try parse(digits[(digits.count - 16)...]))
        }
        return TraceID(high: 0, low: try parse(digits[...]))
    }

    /// Go's `strconv.Quote` for the texts in messages (ASCII control characters escaped).
    static func goQuote(_ s: String) -> String {
        var w = JSONWriter()
        w.string(s)
        return w.text
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Go's `time.ParseDuration` (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`), in nanoseconds.
enum GoDuration {
    struct Failure: Error {
        var message: String
    }

    static let units: [String: Int64] = [
        "ns": 1, "us": 1_000, "\u{00B5}s": 1_000, "\u{03BC}s": 1_000, "ms": 1_000_000,
        "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]
    /// Days and weeks, which the Jaeger UI's `lookback` uses and Go does not parse.
    static let extraUnits: [String: Int64] = ["d": 86_400_000_000_000, "w": 604_800_000_000_000]

    static func parse(_ text: String, extraUnits: Bool = false) throws(Failure) -> Int64 {
        let quoted = JaegerQueryAPI.goQuote(text)
        let invalid = Failure(message: "time: invalid duration \(quoted)")
        var s = Substring(text)
        var negative = false
        if let c = s.first, c == "-" || c == "+" {
            negative = c == "-"
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        if s.isEmpty { throw invalid }
        var total = 0.0
        while !s.isEmpty {
            let whole = s.prefix { $0.isASCIIDigit }
            s = s.dropFirst(whole.count)
            var fraction: Substring = ""
            if s.first == "." {
                s = s.dropFirst()
                fraction = s.prefix { $0.isASCIIDigit }
                s = s.dropFirst(fraction.count)
            }
            if whole.isEmpty && fraction.isEmpty { throw invalid }
            let unitText = s.prefix { $0 != "." && !$0.isASCIIDigit }
            s = s.dropFirst(unitText.count)
            if unitText.isEmpty { throw Failure(message: "time: missing unit in duration \(quoted)") }
            guard let unit = units[String(unitText)] ?? (extraUnits ? Self.extraUnits[String(unitText)] : nil) else {
                throw Failure(message: "time: unknown unit \(JaegerQueryAPI.goQuote(String(unitText))) in duration \(quoted)")
            }
            total += (Double("\(whole.isEmpty ? "0" : whole).\(fraction.isEmpty ? "0" : fraction)") ?? 0) * Double(unit)
            if total > Double(Int64.max) { throw invalid }
        }
        let nanos = Int64(total.rounded(.towardZero))
        return negative ? -nanos : nanos
    }
}

/// The `tags` parameter: a flat JSON object of strings, or logfmt.
enum TagsObject {
    struct Failure: Error {
        var message: String
    }

    /// A JSON object whose values are strings (`null` reads as ""), as Go unmarshals into
    /// `map[string]string`.
    static func parseJSON(_ text: String) throws(Failure) -> [(String, String)] {
        var p = Reader(Array(text.utf8))
        var out: [(String, String)] = []
        p.skipSpace()
        try p.expect(UInt8(ascii: "{"))
        p.skipSpace()
        if p.peek == UInt8(ascii: "}") {
            p.i += 1
        } else {
            while true {
                p.skipSpace()
                let key = try p.string()
                p.skipSpace()
                try p.expect(UInt8(ascii: ":"))
                p.skipSpace()
                if p.peek == UInt8(ascii: "\"") {
                    out.append((key, try p.string()))
                } else if p.consume("null") {
                    out.append((key, ""))
                } else {
                    throw Failure(message: "value of \(JaegerQueryAPI.goQuote(key)) is not a string")
                }
                p.skipSpace()
                if p.peek == UInt8(ascii: ",") {
                    p.i += 1
                    continue
                }
                try p.expect(UInt8(ascii: "}"))
                break
            }
        }
        p.skipSpace()
        if p.i != p.bytes.count { throw Failure(message: "invalid character after top-level value") }
        return out
    }

    /// `key=value` pairs separated by spaces; a value may be double-quoted with JSON escapes.
    static func parseLogfmt(_ text: String) throws(Failure) -> [(String, String)] {
        var p = Reader(Array(text.utf8))
        var out: [(String, String)] = []
        while true {
            p.skipSpace()
            guard let c = p.peek else { break }
            if c == UInt8(ascii: "=") || c == UInt8(ascii: "\"") { throw Failure(message: "unexpected character at offset \(p.i)") }
            let keyStart = p.i
            while let c = p.peek, c != UInt8(ascii: "="), !Reader.isSpace(c), c != UInt8(ascii: "\"") { p.i += 1 }
            let key = String(decoding: p.bytes[keyStart..<p.i], as: UTF8.self)
            guard p.peek == UInt8(ascii: "=") else { throw Failure(message: "expecting key=value, received: \(key)") }
            p.i += 1
            if p.peek == UInt8(ascii: "\"") {
                out.append((key, try p.string()))
                if let c = p.peek, !Reader.isSpace(c) { throw Failure(message: "unexpected character at offset \(p.i)") }
            } else {
                let valueStart = p.i
                while let c = p.peek, !Reader.isSpace(c) { p.i += 1 }
                out.append((key, String(decoding: p.bytes[valueStart..<p.i], as: UTF8.self)))
            }
        }
        return out
    }

    struct Reader {
        var bytes: [UInt8]
        var i = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

        static func isSpace(_ c: UInt8) -> Bool {
            c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r")
        }

        mutating func skipSpace() {
            while let c = peek, Self.isSpace(c) { i += 1 }
        }

        mutating func expect(_ c: UInt8) throws(Failure) {
            guard peek == c else {
                let found = peek.map { "invalid character '\(String(UnicodeScalar($0)))'" } ?? "unexpected end of JSON input"
                throw Failure(message: "\(found), expecting '\(String(UnicodeScalar(c)))'")
            }
            i += 1
        }

        mutating func consume(_ word: StaticString) -> Bool {
            let w = word.withUTF8Buffer { Array($0) }
            guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
            i += w.count
            return true
        }

        /// A JSON string at the cursor, with its escapes.
        mutating func string() throws(Failure) -> String {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            while true {
                guard let c = peek else { throw Failure(message: "unexpected end of JSON input") }
                i += 1
                switch c {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw Failure(message: "unexpected end of JSON input") }
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar), consume("\\u") {
                            let low = try hex4()
                            if (0xDC00..<0xE000).contains(low) { scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00) }
                        }
                        out.append(contentsOf: String(UnicodeScalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
                    default:
                        throw Failure(message: "invalid escape '\\\(String(UnicodeScalar(e)))' in string")
                    }
                default:
                    if c < 0x20 { throw Failure(message: "invalid control character in string") }
                    out.append(c)
                }
            }
        }

        private mutating func hex4() throws(Failure) -> UInt32 {
            guard bytes.count - i >= 4 else { throw Failure(message: "unexpected end of JSON input") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let d = Hex.value(of: bytes[i]) else { throw Failure(message: "invalid \\u escape in string") }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }
    }
}
