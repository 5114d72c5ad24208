import SextantModel

/// The HTTP JSON API of jaeger-query (`cmd/query/app/http_handler.go`), which the Jaeger UI and
/// Grafana's Jaeger data source read, served from a `TraceStore`. The HTTP server is the caller's;
/// this routes one GET request to a status and a JSON body.
///
/// Every body is jaeger's `structuredResponse`, keys in this order:
/// `{"data":…,"total":n,"limit":0,"offset":0,"errors":null}`; a failure has `"data":null` and
/// `"errors":[{"code":400,"msg":"…"}]`. Routes (under `/api`):
/// - `GET /api/services` → service names, sorted; `total` is their count.
/// - `GET /api/services/{service}/operations` → operation names, sorted (the legacy form).
/// - `GET /api/operations?service=&spanKind=` → `[{"name","spanKind"}]`, sorted by name then kind.
/// - `GET /api/traces?service=&operation=&tag=k:v&tags=&start=&end=&minDuration=&maxDuration=&limit=`
///   → traces, newest first; or `?traceID=…` (repeatable) → those traces, with a
///   `{"msg":"trace not found","traceID":…}` error for each missing one. `tags` is a JSON object
///   of strings, or logfmt (`k=v k2="v 2"`) as Grafana writes it. `start`/`end` are unix µs (default:
///   `lookback` before `now`, else two days before, as jaeger-query; and `now`); durations use Go's
///   syntax (`1.2s`, `100ms`); `lookback` also takes `d` and `w` (the UI sends `2d`, `custom`);
///   `limit` defaults to 100, as jaeger-query's does.
/// - `GET /api/traces/{id}` → one trace (hex, 1–32 digits) or 404 `trace not found`.
/// Anything else is 404.
///
/// Output is deterministic: within a trace spans are sorted by start time and processes are named
/// `p1`… in the order the sorted spans first use them. jaeger-query's adjusters (clock skew, tag
/// sorting, span-ID deduplication) are not applied.
public enum JaegerQueryAPI {
    /// jaeger-query's `defaultQueryLimit`.
    public static let defaultLimit = 100
    /// jaeger-query's `defaultTraceQueryLookbackDuration`: two days, in microseconds.
    public static let defaultLookbackMicros: UInt64 = 2 * 24 * 3600 * 1_000_000

    /// Routes one GET request: `path` as received (a percent-encoded service name in the legacy
    /// operations route is decoded here) and the decoded query parameters in order.
    public static func handle(path: String, query: [(String, String)], store: TraceStore, now: UInt64) -> (status: Int, body: [UInt8]) {
        let parameters = Parameters(query)
        switch path {
        case "/api/services":
            let services = store.services()
            return ok(total: services.count) { w in strings(services, &w) }
        case "/api/operations":
            return operations(parameters, store)
        case "/api/traces":
            return search(parameters, store, now: now)
        default:
            break
        }
        if path.hasPrefix("/api/traces/") {
            let id = path.dropFirst("/api/traces/".count)
            if !id.isEmpty && !id.contains("/") { return trace(String(id), store) }
        }
        if path.hasPrefix("/api/services/") && path.hasSuffix("/operations") {
            let segment = path.dropFirst("/api/services/".count).dropLast("/operations".count)
            if !segment.isEmpty && !segment.contains("/") {
                let names = Set(store.operations(service: queryUnescape(segment)).map(\.name)).sorted()
                return ok(total: names.count) { w in strings(names, &w) }
            }
        }
        return failure(404, "404 page not found")
    }

    // MARK: Handlers

    static func operations(_ parameters: Parameters, _ store: TraceStore) -> (status: Int, body: [UInt8]) {
        let service = parameters.first("service") ?? ""
        guard !service.isEmpty else { return failure(400, ParameterError.serviceRequired.message) }
        let operations = store.operations(service: service, spanKind: parameters.first("spanKind"))
        return ok(total: operations.count) { w in
            w.array(operations) { w, operation in
                w.raw("{")
                w.field("name", operation.name)
                w.field("spanKind", operation.spanKind)
                w.raw("}")
            }
        }
    }

    static func search(_ parameters: Parameters, _ store: TraceStore, now: UInt64) -> (status: Int, body: [UInt8]) {
        let search: Search
        do {
            search = try Search(parameters, now: now)
        } catch {
            return failure(400, error.message)
        }
        var traces: [[StoredSpan]] = []
        var missing: [TraceID] = []
        if search.traceIDs.isEmpty {
            traces = store.findTraces(search.query)
        } else {
            for id in search.traceIDs {
                if let spans = store.trace(id) { traces.append(spans) } else { missing.append(id) }
            }
        }
        return tracesResponse(traces) { w in
            if missing.isEmpty {
                w.raw("null")
                return
            }
            w.array(missing) { w, id in
                w.raw("{")
                w.field("msg", "trace not found")
                w.field("traceID", jaegerTraceID(id))
                w.raw("}")
            }
        }
    }

    static func trace(_ text: String, _ store: TraceStore) -> (status: Int, body: [UInt8]) {
        let id: TraceID
        do {
            id = try parseTraceID(text)
        } catch {
            return failure(400, error.message)
        }
        guard let spans = store.trace(id) else { return failure(404, "trace not found") }
        return tracesResponse([spans]) { w in w.raw("null") }
    }

    // MARK: Envelope

    static func ok(total: Int, data: (inout JSONWriter) -> Void) -> (status: Int, body: [UInt8]) {
        var w = JSONWriter()
        w.raw("{")
        w.key("data")
        data(&w)
        w.key("total")
        w.int(total)
        w.raw(",\"limit\":0,\"offset\":0,\"errors\":null}")
        return (200, w.bytes)
    }

    /// Trace responses carry `total` 0, as jaeger-query's `tracesToResponse` leaves it.
    static func tracesResponse(_ traces: [[StoredSpan]], errors: (inout JSONWriter) -> Void) -> (status: Int, body: [UInt8]) {
        var w = JSONWriter()
        w.raw("{")
        w.key("data")
        renderTraces(traces, &w)
        w.raw(",\"total\":0,\"limit\":0,\"offset\":0")
        w.key("errors")
        errors(&w)
        w.raw("}")
        return (200, w.bytes)
    }

    static func failure(_ status: Int, _ message: String) -> (status: Int, body: [UInt8]) {
        var w = JSONWriter()
        w.raw("{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{")
        w.key("code")
        w.int(status)
        w.field("msg", message)
        w.raw("}]}")
        return (status, w.bytes)
    }

    static func strings(_ values: [String], _ w: inout JSONWriter) {
        w.array(values) { w, value in w.string(value) }
    }

    /// Go's `url.QueryUnescape`, which jaeger-query applies to the service path segment: `%XX`
    /// decoded, `+` as a space; the text unchanged when an escape is malformed.
    static func queryUnescape(_ text: Substring) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "%"):
                guard i + 2 < bytes.count, let hi = Hex.value(of: bytes[i + 1]), let lo = Hex.value(of: bytes[i + 2]) else {
                    return String(text)
                }
                out.append(hi << 4 | lo)
                i += 3
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
                i += 1
            default:
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
