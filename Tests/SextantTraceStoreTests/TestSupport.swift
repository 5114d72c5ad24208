import SextantModel
import SextantTraceStore

/// 2023-11-14T22:13:20Z in unix microseconds: the base of every test timestamp.
let t0: UInt64 = 1_700_000_000_000_000

/// A 128-bit trace ID whose hex ends in `n`.
func traceID(_ n: UInt64) -> TraceID { TraceID(high: 0xA1, low: n) }

func span(
    _ trace: UInt64, _ id: UInt64, parent: UInt64? = nil, name: String = "op", kind: SpanKind = .server,
    start: UInt64 = t0, micros: UInt64 = 1000, attributes: [KeyValue] = [], events: [SpanEvent] = [],
    links: [SpanLink] = [], status: SpanStatus = SpanStatus(), flags: UInt32 = 1
) -> Span {
    Span(
        traceID: traceID(trace), spanID: SpanID(id), parentSpanID: parent.map(SpanID.init), flags: flags, name: name, kind: kind,
        startTimeUnixNano: start * 1000, endTimeUnixNano: (start + micros) * 1000, attributes: attributes, events: events,
        links: links, status: status)
}

func resourceSpans(_ service: String, _ spans: [Span], attributes: [KeyValue] = [], scope: InstrumentationScope = InstrumentationScope()) -> ResourceSpans {
    ResourceSpans(
        resource: Resource(attributes: [KeyValue("service.name", .string(service))] + attributes),
        scopeSpans: [ScopeSpans(scope: scope, spans: spans)])
}

func batch(_ service: String, _ spans: [Span], attributes: [KeyValue] = []) -> TracesData {
    TracesData(resourceSpans: [resourceSpans(service, spans, attributes: attributes)])
}

/// Unix nanoseconds one hour after `t0`: "now" in API tests.
let now: UInt64 = (t0 + 3_600_000_000) * 1000

func get(_ path: String, _ query: [(String, String)] = [], _ store: TraceStore) -> (status: Int, body: String) {
    let response = JaegerQueryAPI.handle(path: path, query: query, store: store, now: now)
    return (response.status, String(decoding: response.body, as: UTF8.self))
}

/// A tiny JSON reader, so tests can look into response bodies.
indirect enum JSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        default: return false
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    subscript(index: Int) -> JSON? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }

    var array: [JSON] {
        if case .array(let items) = self { return items }
        return []
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var number: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    static func parse(_ text: String) -> JSON? {
        var reader = Reader(bytes: Array(text.utf8))
        guard let value = reader.value() else { return nil }
        reader.space()
        return reader.i == reader.bytes.count ? value : nil
    }

    private struct Reader {
        var bytes: [UInt8]
        var i = 0

        mutating func space() {
            while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
        }

        mutating func literal(_ word: String) -> Bool {
            let w = Array(word.utf8)
            guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
            i += w.count
            return true
        }

        mutating func value() -> JSON? {
            space()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "\""): return string().map(JSON.string)
            case UInt8(ascii: "["):
                i += 1
                var items: [JSON] = []
                space()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                }
                while true {
                    guard let item = value() else { return nil }
                    items.append(item)
                    space()
                    guard i < bytes.count else { return nil }
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "]") { return .array(items) }
                    if bytes[i - 1] != UInt8(ascii: ",") { return nil }
                }
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, JSON)] = []
                space()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .object(members)
                }
                while true {
                    space()
                    guard let key = string() else { return nil }
                    space()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let item = value() else { return nil }
                    members.append((key, item))
                    space()
                    guard i < bytes.count else { return nil }
                    i += 1
                    if bytes[i - 1] == UInt8(ascii: "}") { return .object(members) }
                    if bytes[i - 1] != UInt8(ascii: ",") { return nil }
                }
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                return Double(String(decoding: bytes[start..<i], as: UTF8.self)).map(JSON.number)
            }
        }

        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    continue
                }
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "u"):
                    guard bytes.count - i >= 4, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16),
                        let scalar = UnicodeScalar(v)
                    else { return nil }
                    out.append(contentsOf: String(scalar).utf8)
                    i += 4
                default: out.append(e)
                }
            }
            return nil
        }
    }
}

/// One trace across two services: `frontend` (server root, then a client call) and `backend`
/// (the server side of the call, with an event, a link and an error), sent in two batches as two
/// processes would.
func twoServiceTrace() -> TracesData {
    let frontend = ResourceSpans(
        resource: Resource(attributes: [KeyValue("service.name", .string("frontend")), KeyValue("host.name", .string("web-1"))]),
        scopeSpans: [
            ScopeSpans(
                scope: InstrumentationScope(name: "io.opentelemetry.http", version: "1.0"),
                spans: [
                    span(7, 0xC1, parent: 0xA1, name: "GET /api", kind: .client, start: t0 + 100, micros: 800),
                    span(
                        7, 0xA1, name: "GET /", kind: .server, start: t0, micros: 1_000,
                        attributes: [KeyValue("http.status_code", .int(200))], status: SpanStatus(code: .ok)),
                ])
        ])
    let backend = ResourceSpans(
        resource: Resource(attributes: [KeyValue("service.name", .string("backend"))]),
        scopeSpans: [
            ScopeSpans(spans: [
                span(
                    7, 0xB1, parent: 0xC1, name: "handle", kind: .server, start: t0 + 150, micros: 600,
                    attributes: [KeyValue("big", .int(1 << 60)), KeyValue("ratio", .double(0.25)), KeyValue("raw", .bytes([0xFF]))],
                    events: [SpanEvent(timeUnixNano: (t0 + 200) * 1000 + 999, name: "cache miss", attributes: [KeyValue("key", .string("u:1"))])],
                    links: [SpanLink(traceID: TraceID(high: 0, low: 0x42), spanID: SpanID(0x43))],
                    status: SpanStatus(code: .error, message: "db down"), flags: 0)
            ])
        ])
    return TracesData(resourceSpans: [frontend, backend])
}

/// `text` without the whitespace outside strings, so goldens can be written readably.
func minify(_ text: String) -> String {
    var out = ""
    var inString = false
    var escaped = false
    for c in text {
        if inString {
            out.append(c)
            if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
        } else if c == "\"" {
            inString = true
            out.append(c)
        } else if !c.isWhitespace {
            out.append(c)
        }
    }
    return out
}
