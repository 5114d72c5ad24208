import SextantModel

/// Recognises an `ExportTraceServiceRequest` that is already in the canonical encoding, so the pipeline
/// can carry the received bytes instead of building the model (``EncodedTraces``).
///
/// Canonical here means: decoding drops nothing, and `encode(decode(bytes))` gives the same bytes except
/// for empty `Resource`, `InstrumentationScope` and `Status` messages, which the bytes may hold and our
/// encoder leaves out (``withoutEmptyMessages(_:)``). Every message has only known fields, in ascending
/// field-number order (a repeated field's elements together), no scalar field holding its default
/// value (proto3 omits them; `AnyValue` members are written even when zero, as a oneof's are), minimal
/// varints, and nothing the decoder would change or reject: IDs of the right lengths and not all zero,
/// UTF-8 strings, `uint32`/`int32`/`bool` values that survive their truncation. The reference
/// encoders write requests this way: the Python and Go SDKs (which also write an empty `Status` for
/// every span whose status is unset) and the OTel Collector (whose encoder writes empty resources and
/// scopes too). An empty message and an absent one decode alike everywhere (proto3: a message field's
/// fields take their defaults), so forwarding such bytes forwards the same data. Anything else returns
/// `nil` and takes the ordinary decoder, which reports errors. The check is conservative by
/// construction: it may refuse a canonical message (e.g. `AnyValue` nested deeper than ``maxDepth``),
/// never accept one the decoder would alter.
struct CanonicalTraces {
    /// `AnyValue` nesting accepted here; deeper values take the decoder (which allows 64).
    static let maxDepth = 16

    private var pos: UnsafePointer<UInt8>
    /// The end of the message being read: a nested message is read by narrowing it (``enter()``) and
    /// restoring it afterwards, so one cursor walks the whole request.
    private var end: UnsafePointer<UInt8>
    private(set) var spanCount = 0
    private(set) var extent = AttributeExtent()

    private init(_ pos: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) {
        self.pos = pos
        self.end = end
    }

    /// The span count and extent when `bytes` are a canonical request, else `nil`.
    static func check(_ bytes: UnsafeRawBufferPointer) -> (spanCount: Int, extent: AttributeExtent)? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        let start = base.assumingMemoryBound(to: UInt8.self)
        var c = CanonicalTraces(start, start + bytes.count)
        guard c.tracesData() else { return nil }
        return (c.spanCount, c.extent)
    }

    // MARK: Wire primitives

    private var hasMore: Bool {
        @inline(__always) get { pos < end }
    }

    /// A minimal varint: no trailing zero groups, at most ten bytes with nothing past bit 63.
    @inline(__always)
    private mutating func varint() -> UInt64? {
        guard pos < end else { return nil }
        let b0 = pos.pointee
        if b0 < 0x80 {
            pos += 1
            return UInt64(b0)
        }
        return varintSlow()
    }

    private mutating func varintSlow() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var p = pos
        while p < end {
            let b = p.pointee
            p += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 {
                // A last byte of 0 is a non-minimal encoding; the tenth byte carries only bit 63.
                guard b != 0, shift < 63 || b == 1 else { return nil }
                pos = p
                return result
            }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// A field tag (`field_number << 3 | wire_type`), compared raw: for distinct fields, tag order is
    /// field-number order. Callers check the order and which tags may repeat (a repeated field's run).
    @inline(__always)
    private mutating func tag() -> UInt64? {
        guard let t = varint(), t >= 8 else { return nil }
        return t
    }

    /// Narrows the input to the nested message in the current length-delimited field and returns the
    /// outer end, which the caller restores once the message is read (it then ends exactly there).
    @inline(__always)
    private mutating func enter() -> UnsafePointer<UInt8>? {
        guard let n = varint(), n <= UInt64(end - pos) else { return nil }
        let outer = end
        end = pos + Int(n)
        return outer
    }

    @inline(__always)
    private mutating func bytes() -> UnsafeBufferPointer<UInt8>? {
        guard let n = varint(), n <= UInt64(end - pos) else { return nil }
        let b = UnsafeBufferPointer(start: pos, count: Int(n))
        pos += Int(n)
        return b
    }

    @inline(__always)
    private mutating func fixed64() -> UInt64? {
        guard end - pos >= 8 else { return nil }
        let v = UInt64(littleEndian: UnsafeRawPointer(pos).loadUnaligned(as: UInt64.self))
        pos += 8
        return v
    }

    @inline(__always)
    private mutating func nonZeroFixed64() -> Bool {
        guard let v = fixed64() else { return false }
        return v != 0
    }

    @inline(__always)
    private mutating func nonZeroFixed32() -> Bool {
        guard end - pos >= 4 else { return false }
        let v = UnsafeRawPointer(pos).loadUnaligned(as: UInt32.self)
        pos += 4
        return v != 0
    }

    /// A `string` field: valid UTF-8, and not empty unless `allowEmpty` (an `AnyValue` member).
    /// Returns its length in bytes, or -1.
    @inline(__always)
    private mutating func string(allowEmpty: Bool = false) -> Int {
        guard let b = bytes(), allowEmpty || b.count > 0 else { return -1 }
        guard UTF8Text.isText(b) else { return -1 }
        return b.count
    }

    /// An ID field of exactly `length` bytes, not all zero (zero IDs are not written by the encoder
    /// and are invalid for a span's own IDs).
    @inline(__always)
    private mutating func id(_ length: Int) -> Bool {
        guard end - pos > length, pos.pointee == UInt8(length) else { return false }
        let raw = UnsafeRawPointer(pos + 1)
        pos += 1 + length
        if length == 16 {
            return raw.loadUnaligned(as: UInt64.self) | raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self) != 0
        }
        return raw.loadUnaligned(as: UInt64.self) != 0
    }

    /// A non-zero `uint32` that the decoder's truncation keeps.
    @inline(__always)
    private mutating func uint32() -> Bool {
        guard let v = varint() else { return false }
        return v != 0 && v <= UInt64(UInt32.max)
    }

    /// A non-zero `int32`/enum in its sign-extended form.
    @inline(__always)
    private mutating func int32() -> Bool {
        guard let v = varint() else { return false }
        return v != 0 && v == UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: v)))
    }

    /// The next tag of a message in canonical order: a higher field than `last`, or `last` again when it
    /// is the message's `repeated` field (its elements in one run).
    @inline(__always)
    private mutating func nextTag(_ last: inout UInt64, repeated: UInt64 = 0) -> UInt64? {
        guard let t = tag(), t > last || t == repeated && last == t else { return nil }
        last = t
        return t
    }

    /// Reads the nested message in the current length-delimited field with `body`.
    @inline(__always)
    private mutating func nested(_ body: (inout CanonicalTraces) -> Bool) -> Bool {
        guard let outer = enter(), body(&self) else { return false }
        end = outer
        return true
    }

    @inline(__always)
    private mutating func noteAttributes(_ n: Int) {
        if n > extent.attributes { extent.attributes = n }
    }

    /// One element of a `repeated KeyValue` attributes field, read in place (see ``keyValueInline(depth:)``).
    @inline(__always)
    private mutating func attribute() -> Bool {
        nested { $0.keyValueInline(depth: 0) }
    }

    // MARK: trace.proto (tags: field << 3 | wire type; 2 = length-delimited, 0 = varint, 1 = fixed64, 5 = fixed32)

    private mutating func tracesData() -> Bool {
        while hasMore {
            guard tag() == 1 << 3 | 2, nested({ $0.resourceSpans() }) else { return false }
        }
        return true
    }

    private mutating func resourceSpans() -> Bool {
        group({ $0.resource() }, { $0.scopeSpans() })
    }

    private mutating func scopeSpans() -> Bool {
        group({ $0.scope() }) { c in
            guard c.span() else { return false }
            c.spanCount += 1
            return true
        }
    }

    /// `ResourceSpans` and `ScopeSpans` share a layout: 1 = the resource or scope (possibly empty),
    /// 2 = the repeated scope groups or spans, 3 = `schema_url`.
    @inline(__always)
    private mutating func group(_ header: (inout CanonicalTraces) -> Bool, _ item: (inout CanonicalTraces) -> Bool) -> Bool {
        var last: UInt64 = 0
        while hasMore {
            guard let t = nextTag(&last, repeated: 2 << 3 | 2) else { return false }
            switch t {
            case 1 << 3 | 2: guard nested(header) else { return false }
            case 2 << 3 | 2: guard nested(item) else { return false }
            case 3 << 3 | 2: guard string() >= 0 else { return false }
            default: return false
            }
        }
        return true
    }

    /// Resource, InstrumentationScope, Span.Event and Span.Link: a `repeated KeyValue attributes` field
    /// (`attributesTag`) and a `dropped_attributes_count` (`droppedTag`) beside fields that `field` checks.
    @inline(__always)
    private mutating func attributed(_ attributesTag: UInt64, _ droppedTag: UInt64, _ field: (inout CanonicalTraces, UInt64) -> Bool) -> Bool {
        var last: UInt64 = 0
        var attributes = 0
        while hasMore {
            guard let t = nextTag(&last, repeated: attributesTag) else { return false }
            if t == attributesTag {
                guard attribute() else { return false }
                attributes += 1
            } else if t == droppedTag {
                guard uint32() else { return false }
            } else {
                guard field(&self, t) else { return false }
            }
        }
        noteAttributes(attributes)
        return true
    }

    private mutating func resource() -> Bool {
        attributed(1 << 3 | 2, 2 << 3 | 0) { _, _ in false }
    }

    /// name (1) and version (2), strings.
    private mutating func scope() -> Bool {
        attributed(3 << 3 | 2, 4 << 3 | 0) { c, t in (t == 1 << 3 | 2 || t == 2 << 3 | 2) && c.string() >= 0 }
    }

    /// time_unix_nano (1), name (2).
    private mutating func event() -> Bool {
        attributed(3 << 3 | 2, 4 << 3 | 0) { c, t in
            switch t {
            case 1 << 3 | 1: return c.nonZeroFixed64()
            case 2 << 3 | 2: return c.string() >= 0
            default: return false
            }
        }
    }

    /// trace_id (1), span_id (2), trace_state (3), flags (6).
    private mutating func link() -> Bool {
        attributed(4 << 3 | 2, 5 << 3 | 0) { c, t in
            switch t {
            case 1 << 3 | 2: return c.id(16)
            case 2 << 3 | 2: return c.id(8)
            case 3 << 3 | 2: return c.string() >= 0
            case 6 << 3 | 5: return c.nonZeroFixed32()
            default: return false
            }
        }
    }

    private mutating func span() -> Bool {
        // The span's own IDs are required and come first (the encoder always writes both).
        guard tag() == 1 << 3 | 2, id(16), tag() == 2 << 3 | 2, id(8) else { return false }
        var last: UInt64 = 2 << 3 | 2
        var attributes = 0
        var events = 0
        var links = 0
        while hasMore {
            guard let t = tag() else { return false }
            if t == last {
                // Only the repeated fields may run on.
                guard t == 9 << 3 | 2 || t == 11 << 3 | 2 || t == 13 << 3 | 2 else { return false }
            } else {
                guard t > last else { return false }
                last = t
            }
            switch t {
            case 3 << 3 | 2, 5 << 3 | 2: guard string() >= 0 else { return false }
            case 4 << 3 | 2: guard id(8) else { return false }
            case 6 << 3 | 0: guard int32() else { return false }
            case 7 << 3 | 1, 8 << 3 | 1: guard nonZeroFixed64() else { return false }
            case 9 << 3 | 2:
                guard attribute() else { return false }
                attributes += 1
            case 10 << 3 | 0, 12 << 3 | 0, 14 << 3 | 0: guard uint32() else { return false }
            case 11 << 3 | 2:
                guard nested({ $0.event() }) else { return false }
                events += 1
            case 13 << 3 | 2:
                guard nested({ $0.link() }) else { return false }
                links += 1
            case 15 << 3 | 2:
                guard nested({ $0.status() }) else { return false }
            case 16 << 3 | 5: guard nonZeroFixed32() else { return false }
            default: return false
            }
        }
        noteAttributes(attributes)
        if events > extent.events { extent.events = events }
        if links > extent.links { extent.links = links }
        return true
    }

    private mutating func status() -> Bool {
        var last: UInt64 = 0
        while hasMore {
            guard let t = nextTag(&last) else { return false }
            switch t {
            case 2 << 3 | 2: guard string() >= 0 else { return false }
            case 3 << 3 | 0: guard int32() else { return false }
            default: return false
            }
        }
        return true
    }

    // MARK: common.proto

    /// A `KeyValue` in a `KeyValueList` value.
    private mutating func keyValue(depth: Int) -> Bool {
        keyValueInline(depth: depth)
    }

    /// A `KeyValue`: the key (left out when empty), then the value, which the encoder always writes. Most
    /// values hold a string, bool, int or double: read here, where the caller inlines it; others go
    /// through ``anyValue(depth:)``. Every tag compared below is one byte (a minimal varint under 0x80).
    @inline(__always)
    private mutating func keyValueInline(depth: Int) -> Bool {
        guard depth <= Self.maxDepth else { return false }
        if hasMore && pos.pointee == 1 << 3 | 2 {
            pos += 1
            guard string() >= 0 else { return false }
        }
        guard hasMore, pos.pointee == 2 << 3 | 2 else { return false }
        pos += 1
        guard let outer = enter() else { return false }
        if hasMore {
            // A one-byte tag of a scalar member, else the whole `AnyValue` (which reads any tag).
            pos += 1
            if let ok = scalarMember(UInt64(pos[-1])) {
                guard ok, !hasMore else { return false }
            } else {
                pos -= 1
                guard anyValue(depth: depth + 1) else { return false }
            }
        }
        end = outer
        return !hasMore
    }

    /// The `AnyValue` members that are one scalar, after their tag `t`: string (1; written even when
    /// empty), bool (2; 0 or 1), int (3), double (4). `nil` when `t` is not one of them.
    @inline(__always)
    private mutating func scalarMember(_ t: UInt64) -> Bool? {
        switch t {
        case 1 << 3 | 2:
            let n = string(allowEmpty: true)
            guard n >= 0 else { return false }
            if n > extent.valueLength { extent.valueLength = n }
            return true
        case 2 << 3 | 0:
            guard let v = varint() else { return false }
            return v <= 1
        case 3 << 3 | 0: return varint() != nil
        case 4 << 3 | 1: return fixed64() != nil
        default: return nil
        }
    }

    /// An `AnyValue`: empty, or exactly one member of its oneof.
    private mutating func anyValue(depth: Int) -> Bool {
        guard depth <= Self.maxDepth else { return false }
        guard hasMore else { return true }
        guard let t = tag() else { return false }
        if let ok = scalarMember(t) { return ok && !hasMore }
        switch t {
        case 7 << 3 | 2:
            // Bytes, like strings, are written even when empty.
            guard let b = bytes() else { return false }
            if b.count > extent.valueLength { extent.valueLength = b.count }
        case 5 << 3 | 2, 6 << 3 | 2:
            // ArrayValue and KeyValueList: only their repeated field 1, of AnyValue resp. KeyValue.
            let isArray = t == 5 << 3 | 2
            guard nested({ list in
                while list.hasMore {
                    guard list.tag() == 1 << 3 | 2,
                        list.nested({ isArray ? $0.anyValue(depth: depth + 1) : $0.keyValue(depth: depth + 1) })
                    else { return false }
                }
                return true
            }) else { return false }
        default: return false
        }
        return !hasMore
    }
}

extension CanonicalTraces {
    /// `bytes` (a request ``check(_:)`` accepted) without its empty `Resource`, `InstrumentationScope`
    /// and `Status` fields: what our encoder writes for the same data. For tests and the fuzz target,
    /// which compare it with `encode(decode(bytes))`.
    static func withoutEmptyMessages(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var w = ProtoWriter(capacity: bytes.count)
        rewrite(bytes, level: 0, into: &w)
        return w.bytes()
    }

    /// Writes one message at `level` into `w` (back to front, as `ProtoWriter` builds): its fields as
    /// they are, but for the empty ones of the three, and with the messages that lead to them
    /// rewritten: TracesData.1 → ResourceSpans (.1 resource, .2 → ScopeSpans (.1 scope, .2 → Span
    /// (.15 status))). Bytes that do not parse are copied unchanged.
    private static func rewrite(_ b: UnsafeRawBufferPointer, level: Int, into w: inout ProtoWriter) {
        var r = ProtoReader(b)
        var fields: [(tag: UInt64, whole: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer?)] = []
        while r.hasMore {
            let start = r.pos
            guard let tag = try? r.readTag() else { return w.prepend(b) }
            var payload: UnsafeRawBufferPointer?
            if tag & 7 == 2 {
                guard let p = try? r.readBytes() else { return w.prepend(b) }
                payload = p
            } else {
                guard (try? r.skip(tag: tag, in: "")) != nil else { return w.prepend(b) }
            }
            fields.append((tag, UnsafeRawBufferPointer(start: start, count: r.pos - start), payload))
        }
        for f in fields.reversed() {
            let field = f.tag >> 3
            if let payload = f.payload {
                if payload.isEmpty && (level == 1 && field == 1 || level == 2 && field == 1 || level == 3 && field == 15) { continue }
                if level == 0 || (level < 3 && field == 2) {
                    let mark = w.count
                    rewrite(payload, level: level + 1, into: &w)
                    w.lengthPrefix(field, since: mark)
                    continue
                }
            }
            w.prepend(f.whole)
        }
    }
}
