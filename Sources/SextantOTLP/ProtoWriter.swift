import SextantModel

/// Builds protobuf wire format back to front, so that each nested message's length is known when
/// its prefix is written: one pass, no size pre-computation, no moves.
///
/// Because bytes are prepended, callers write a message's fields in *descending* field-number
/// order (and repeated elements last to first); the result reads in ascending order, the
/// canonical order the reference encoders emit.
public struct ProtoWriter: ~Copyable {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    /// Index of the first written byte; the output occupies `storage[start..<capacity]`.
    private var start: Int

    public init(capacity: Int = 1024) {
        self.capacity = max(capacity, 64)
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
        start = self.capacity
    }

    deinit { storage.deallocate() }

    /// Bytes written so far; a message's length is `count - mark` for a mark taken before it.
    ///
    /// `start` only moves down by what `reserve` made room for, so it stays within `0...capacity`: offsets are
    /// computed with wrapping arithmetic, without an overflow branch per byte written.
    @inline(__always) public var count: Int { capacity &- start }

    @inline(__always)
    private mutating func reserve(_ n: Int) {
        if start < n { grow(n) }
    }

    private mutating func grow(_ n: Int) {
        let used = count
        let newCapacity = max(capacity * 2, used + n + 64)
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        (newStorage + (newCapacity - used)).copyMemory(from: storage + start, byteCount: used)
        storage.deallocate()
        storage = newStorage
        capacity = newCapacity
        start = newCapacity - used
    }

    public func bytes() -> [UInt8] {
        // `Array(_:)` of the raw bytes is specialized for `UInt8` here. `[UInt8](unsafeUninitializedCapacity:)`
        // reached the standard library's generic allocation, which looked up the array storage's type
        // metadata on every call (~800 instructions per span the proxy encodes).
        Array(UnsafeRawBufferPointer(start: storage + start, count: count))
    }

    /// Lends the bytes written so far, without copying them out.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage + start, count: count))
    }

    // MARK: Raw values

    @inline(__always)
    static func varintSize(_ v: UInt64) -> Int {
        // 1 + floor(bits / 7), with 0 taking one byte.
        let bits = 64 - (v | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    @inline(__always)
    mutating func varint(_ v: UInt64) {
        if v < 0x80 {
            reserve(1)
            start &-= 1
            storage.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: start, as: UInt8.self)
            return
        }
        let n = Self.varintSize(v)
        reserve(n)
        start &-= n
        var p = start
        var x = v
        while x >= 0x80 {
            storage.storeBytes(of: UInt8(truncatingIfNeeded: x) | 0x80, toByteOffset: p, as: UInt8.self)
            x >>= 7
            p &+= 1
        }
        storage.storeBytes(of: UInt8(truncatingIfNeeded: x), toByteOffset: p, as: UInt8.self)
    }

    @inline(__always)
    mutating func fixed64(_ v: UInt64) {
        reserve(8)
        start &-= 8
        storage.storeBytes(of: v.littleEndian, toByteOffset: start, as: UInt64.self)
    }

    @inline(__always)
    mutating func fixed32(_ v: UInt32) {
        reserve(4)
        start &-= 4
        storage.storeBytes(of: v.littleEndian, toByteOffset: start, as: UInt32.self)
    }

    @inline(__always)
    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        reserve(n)
        start &-= n
        // Attribute keys and values are mostly under 16 bytes: copied inline, not by a `memmove` call.
        (storage + start).copySmall(from: bytes.baseAddress!, count: n)
    }

    @inline(__always)
    mutating func bigEndian64(_ v: UInt64) {
        reserve(8)
        start &-= 8
        storage.storeBytes(of: v.bigEndian, toByteOffset: start, as: UInt64.self)
    }

    @inline(__always)
    mutating func tag(_ field: UInt64, _ wireType: UInt64) { varint(field << 3 | wireType) }

    // MARK: Fields (proto3 implicit presence: defaults are omitted)

    /// Closes a length-delimited field whose payload was written since `mark`.
    @inline(__always)
    public mutating func lengthPrefix(_ field: UInt64, since mark: Int) {
        varint(UInt64(count &- mark))
        tag(field, 2)
    }

    @inline(__always)
    public mutating func uint64Field(_ field: UInt64, _ v: UInt64) {
        guard v != 0 else { return }
        varint(v)
        tag(field, 0)
    }

    @inline(__always)
    mutating func uint32Field(_ field: UInt64, _ v: UInt32) { uint64Field(field, UInt64(v)) }

    /// `int32` and enums: negative values are sign-extended to ten bytes.
    @inline(__always)
    public mutating func int32Field(_ field: UInt64, _ v: Int32) { uint64Field(field, UInt64(bitPattern: Int64(v))) }

    @inline(__always)
    mutating func int64Field(_ field: UInt64, _ v: Int64) { uint64Field(field, UInt64(bitPattern: v)) }

    @inline(__always)
    mutating func sint32Field(_ field: UInt64, _ v: Int32) {
        uint64Field(field, UInt64(UInt32(bitPattern: (v << 1) ^ (v >> 31))))
    }

    @inline(__always)
    public mutating func boolField(_ field: UInt64, _ v: Bool) {
        guard v else { return }
        varint(1)
        tag(field, 0)
    }

    @inline(__always)
    public mutating func fixed64Field(_ field: UInt64, _ v: UInt64) {
        guard v != 0 else { return }
        fixed64(v)
        tag(field, 1)
    }

    @inline(__always)
    mutating func fixed32Field(_ field: UInt64, _ v: UInt32) {
        guard v != 0 else { return }
        fixed32(v)
        tag(field, 5)
    }

    /// A `double` with implicit presence: omitted only when it is +0.0 (−0.0 is kept, as the
    /// reference encoders compare bit patterns).
    @inline(__always)
    mutating func doubleField(_ field: UInt64, _ v: Double) {
        guard v.bitPattern != 0 else { return }
        fixed64(v.bitPattern)
        tag(field, 1)
    }

    /// A `double` with explicit presence (`optional`, or a oneof member): written whenever set.
    @inline(__always)
    mutating func presentDoubleField(_ field: UInt64, _ v: Double?) {
        guard let v else { return }
        fixed64(v.bitPattern)
        tag(field, 1)
    }

    @inline(__always)
    public mutating func stringField(_ field: UInt64, _ s: String) {
        guard !s.isEmpty else { return }
        presentStringField(field, s)
    }

    @inline(__always)
    mutating func presentStringField(_ field: UInt64, _ s: String) {
        let mark = count
        presentText(s)
        lengthPrefix(field, since: mark)
    }

    /// Prepends the UTF-8 of `s` alone (no tag or length): a string field's content, or part of it. Native and
    /// small strings lend their UTF-8 without a copy (and without the retain that a mutable copy for `withUTF8`
    /// costs); bridged ones are copied.
    @inline(__always)
    mutating func presentText(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ raw(UnsafeRawBufferPointer($0)) }) == nil {
            var copy = s
            copy.withUTF8 { raw(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Prepends the decimal digits of `v` (no tag or length): a number as string content.
    @inline(__always)
    mutating func decimal(_ v: UInt64) {
        var digits = 1
        var t = v
        while t >= 10 {
            t /= 10
            digits &+= 1
        }
        reserve(digits)
        start &-= digits
        var x = v
        var k = start &+ digits
        repeat {
            k &-= 1
            storage.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: x % 10), toByteOffset: k, as: UInt8.self)
            x /= 10
        } while k > start
    }

    /// Prepends bytes that are already in wire form (a field encoded elsewhere).
    public mutating func prepend(_ bytes: UnsafeRawBufferPointer) { raw(bytes) }

    /// A message of two string fields, 1: `first` and 2: `second` (each left out when empty), as
    /// length-delimited field `field` — remote write's `Label`, for one.
    public mutating func stringPairField(_ field: UInt64, _ first: String, _ second: String) {
        let mark = count
        if !second.isEmpty { presentStringField(2, second) }
        if !first.isEmpty { presentStringField(1, first) }
        lengthPrefix(field, since: mark)
    }

    @inline(__always)
    public mutating func presentBytesField(_ field: UInt64, _ b: [UInt8]) {
        b.withUnsafeBytes { raw($0) }
        varint(UInt64(b.count))
        tag(field, 2)
    }

    @inline(__always)
    mutating func traceIDField(_ field: UInt64, _ id: TraceID) {
        bigEndian64(id.low)
        bigEndian64(id.high)
        varint(16)
        tag(field, 2)
    }

    @inline(__always)
    mutating func spanIDField(_ field: UInt64, _ id: SpanID) {
        bigEndian64(id.value)
        varint(8)
        tag(field, 2)
    }

    /// Packed `repeated fixed64` (proto3 packs repeated scalars by default).
    mutating func packedFixed64Field(_ field: UInt64, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        let mark = count
        for v in values.reversed() { fixed64(v) }
        lengthPrefix(field, since: mark)
    }

    mutating func packedDoubleField(_ field: UInt64, _ values: [Double]) {
        guard !values.isEmpty else { return }
        let mark = count
        for v in values.reversed() { fixed64(v.bitPattern) }
        lengthPrefix(field, since: mark)
    }

    mutating func packedVarintField(_ field: UInt64, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        let mark = count
        for v in values.reversed() { varint(v) }
        lengthPrefix(field, since: mark)
    }
}
