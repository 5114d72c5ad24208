import SextantModel

extension JaegerTranslator {
    /// Translates OTLP spans to Jaeger: one batch per `ResourceSpans` (the collector's
    /// `ProtoFromTraces`, written as thrift). Resources with neither attributes nor scopes are
    /// skipped. What Jaeger cannot hold is dropped: dropped-counts, schema URLs, scope attributes,
    /// link attributes other than `opentracing.ref_type`, link trace states, trace flags other than
    /// sampled.
    public static func fromTraces(_ traces: TracesData) -> [JaegerBatch] {
        var batches: [JaegerBatch] = []
        batches.reserveCapacity(traces.resourceSpans.count)
        for resourceSpans in traces.resourceSpans {
            if resourceSpans.resource.attributes.isEmpty && resourceSpans.scopeSpans.isEmpty { continue }
            var batch = JaegerBatch(process: process(from: resourceSpans.resource))
            batch.spans.reserveCapacity(resourceSpans.scopeSpans.reduce(0) { $0 + $1.spans.count })
            for scopeSpans in resourceSpans.scopeSpans {
                let scopeTags = tags(from: scopeSpans.scope)
                for span in scopeSpans.spans { batch.spans.append(jaegerSpan(from: span, scopeTags: scopeTags)) }
            }
            batches.append(batch)
        }
        return batches
    }

    // MARK: Process

    static func process(from resource: Resource) -> JaegerProcess {
        if resource.attributes.isEmpty { return JaegerProcess(serviceName: noServiceName) }
        var process = JaegerProcess(serviceName: resource.attributes[key: Key.serviceName]?.stringOrEmpty ?? "")
        for kv in resource.attributes where kv.key != Key.serviceName { process.tags.append(tag(kv.key, kv.value)) }
        return process
    }

    // MARK: Span

    static func tags(from scope: InstrumentationScope) -> [JaegerTag] {
        var tags: [JaegerTag] = []
        if !scope.name.isEmpty { tags.append(.string(Key.scopeName, scope.name)) }
        if !scope.version.isEmpty { tags.append(.string(Key.scopeVersion, scope.version)) }
        return tags
    }

    static func jaegerSpan(from span: Span, scopeTags: [JaegerTag]) -> JaegerSpan {
        let start = Int64(bitPattern: span.startTimeUnixNano)
        let end = Int64(bitPattern: span.endTimeUnixNano)
        return JaegerSpan(
            traceIdLow: Int64(bitPattern: span.traceID.low),
            traceIdHigh: Int64(bitPattern: span.traceID.high),
            spanId: Int64(bitPattern: span.spanID.value),
            parentSpanId: Int64(bitPattern: span.parentSpanID?.value ?? 0),
            operationName: span.name,
            references: references(from: span),
            flags: span.flags & sampledTraceFlag != 0 ? JaegerSpan.sampledFlag : 0,
            startTime: start / 1000,
            duration: (end &- start) / 1000,
            tags: spanTags(span, scopeTags: scopeTags),
            logs: span.events.map(log(from:)))
    }

    /// Scope tags, the attributes, then the tags standing for span fields, in the collector's order
    /// (`getJaegerProtoSpanTags`).
    static func spanTags(_ span: Span, scopeTags: [JaegerTag]) -> [JaegerTag] {
        var tags = scopeTags
        tags.reserveCapacity(scopeTags.count + span.attributes.count + 5)
        for kv in span.attributes { tags.append(tag(kv.key, kv.value)) }
        if let kind = spanKindTag(span.kind) { tags.append(.string(Key.spanKind, kind)) }
        switch span.status.code {
        case .ok: tags.append(.string(Key.statusCode, StatusValue.ok))
        case .error:
            tags.append(.string(Key.statusCode, StatusValue.error))
            tags.append(.bool(Key.error, true))
        default: break
        }
        if !span.status.message.isEmpty { tags.append(.string(Key.statusDescription, span.status.message)) }
        if !span.traceState.isEmpty { tags.append(.string(Key.traceState, span.traceState)) }
        return tags
    }

    static func spanKindTag(_ kind: SpanKind) -> String? {
        switch kind {
        case .client: return "client"
        case .server: return "server"
        case .producer: return "producer"
        case .consumer: return "consumer"
        case .internal: return "internal"
        default: return nil
        }
    }

    /// The parent first, as `CHILD_OF` ("usually backends look for it as the first CHILD_OF"), then
    /// one reference per link, `FOLLOWS_FROM` unless its `opentracing.ref_type` says `child_of`. A
    /// link to the parent itself only sets the parent reference's type
    /// (`makeJaegerProtoReferences`).
    static func references(from span: Span) -> [JaegerSpanRef] {
        let traceIdLow = Int64(bitPattern: span.traceID.low)
        let traceIdHigh = Int64(bitPattern: span.traceID.high)
        var refs: [JaegerSpanRef] = []
        refs.reserveCapacity(span.links.count + 1)
        let parent = span.parentSpanID.flatMap { $0.isValid ? $0 : nil }
        if let parent {
            refs.append(JaegerSpanRef(refType: .childOf, traceIdLow: traceIdLow, traceIdHigh: traceIdHigh, spanId: Int64(bitPattern: parent.value)))
        }
        for link in span.links {
            let refType: JaegerSpanRefType =
                link.attributes[key: Key.refType]?.stringOrEmpty == RefTypeValue.childOf ? .childOf : .followsFrom
            if let parent, link.traceID == span.traceID, link.spanID == parent {
                refs[0].refType = refType
                continue
            }
            refs.append(
                JaegerSpanRef(
                    refType: refType, traceIdLow: Int64(bitPattern: link.traceID.low), traceIdHigh: Int64(bitPattern: link.traceID.high),
                    spanId: Int64(bitPattern: link.spanID.value)))
        }
        return refs
    }

    /// The event name goes first as the `event` field, unless an attribute already has that key.
    static func log(from event: SpanEvent) -> JaegerLog {
        var fields: [JaegerTag] = []
        fields.reserveCapacity(event.attributes.count + 1)
        if !event.name.isEmpty && event.attributes[key: Key.event] == nil { fields.append(.string(Key.event, event.name)) }
        for kv in event.attributes { fields.append(tag(kv.key, kv.value)) }
        return JaegerLog(timestamp: Int64(bitPattern: event.timeUnixNano) / 1000, fields: fields)
    }

    // MARK: Values

    /// Scalars keep their type; arrays and maps become their JSON text, as pdata's `AsString`
    /// renders them; an empty value becomes an empty string.
    static func tag(_ key: String, _ value: AnyValue) -> JaegerTag {
        switch value {
        case .string(let s): return .string(key, s)
        case .int(let i): return .long(key, i)
        case .bool(let b): return .bool(key, b)
        case .double(let d): return .double(key, d)
        case .bytes(let b): return .binary(key, b)
        case .array, .kvlist:
            var json = ""
            JSONText.append(value, to: &json)
            return .string(key, json)
        case .empty: return .string(key, "")
        }
    }
}

/// JSON text of an attribute value the way Go's `encoding/json` writes pdata's `AsRaw()`: map keys
/// sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped, bytes as base64, floats in Go's format.
enum JSONText {
    static func append(_ value: AnyValue, to out: inout String) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += number(d)
        case .bytes(let b): appendString(Base64.encode(b), to: &out)
        case .empty: out += "null"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                append(item, to: &out)
            }
            out += "]"
        case .kvlist(let kvs):
            // A Go map: one value per key (the last), keys in byte order.
            var byKey: [String: AnyValue] = [:]
            for kv in kvs { byKey[kv.key] = kv.value }
            out += "{"
            for (i, key) in byKey.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                append(byKey[key]!, to: &out)
            }
            out += "}"
        }
    }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}": out += unicodeEscape(scalar.value)
            default:
                if scalar.value < 0x20 { out += unicodeEscape(scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        out += "\""
    }

    private static func unicodeEscape(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }

    /// Go's float encoding: shortest round-trip digits, fixed notation for 1e-6 ≤ |x| < 1e21,
    /// otherwise exponent notation with at least two exponent digits trimmed to one (`1e-7`).
    /// NaN and infinities, which JSON cannot hold, are written as strings.
    static func number(_ d: Double) -> String {
        guard d.isFinite else { return "\"\(d)\"" }
        let magnitude = abs(d)
        let text = "\(d)"  // shortest round-trip digits, e.g. "2.5", "1e-07", "1.5e+21"
        if magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21) {
            // Swift already writes at least two exponent digits, like Go's 'e' format; Go's JSON
            // encoder then trims "e-07" to "e-7".
            let tail = Array(text.utf8.suffix(4))
            if tail.count == 4 && tail[0] == UInt8(ascii: "e") && tail[1] == UInt8(ascii: "-") && tail[2] == UInt8(ascii: "0") {
                return String(text.dropLast(2)) + String(UnicodeScalar(tail[3]))
            }
            return text
        }
        return fixed(d, text)
    }

    /// Rewrites Swift's shortest digits in fixed notation without a trailing ".0".
    private static func fixed(_ d: Double, _ text: String) -> String {
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
        }
        let negative = text.hasPrefix("-")
        let mantissa = text[text.index(text.startIndex, offsetBy: negative ? 1 : 0)..<e]
        let exponent = Int(text[text.index(after: e)...]) ?? 0
        var digits = mantissa.filter { $0 != "." }
        let pointAt = (mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) } ?? mantissa.count) + exponent
        var result: String
        if pointAt <= 0 {
            result = "0." + String(repeating: "0", count: -pointAt) + digits
        } else if pointAt >= digits.count {
            digits += String(repeating: "0", count: pointAt - digits.count)
            result = digits
        } else {
            result = String(digits.prefix(pointAt)) + "." + String(digits.dropFirst(pointAt))
        }
        while result.contains(".") && result.hasSuffix("0") { result.removeLast() }
        if result.hasSuffix(".") { result.removeLast() }
        return (negative ? "-" : "") + result
    }
}
