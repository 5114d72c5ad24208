/// Snappy's raw block format, as Prometheus remote write uses it (`Content-Encoding: snappy`), in
/// pure Swift so that building Sextant needs no C library.
///
/// The format (google/snappy `format_description.txt`): a preamble holding the uncompressed length
/// as a little-endian base-128 varint (§1), then elements (§2), each starting with a tag byte whose
/// low two bits give its kind:
/// - `00` literal: the upper six bits hold `length − 1` when below 60; 60…63 mean that `length − 1`
///   follows in 1…4 little-endian bytes (§2.1);
/// - `01` copy with a 1-byte offset: length 4…11 in bits 2–4, an 11-bit offset from bits 5–7 and the
///   next byte (§2.2.1);
/// - `10` copy with a 2-byte offset: length 1…64 in the upper six bits, a 16-bit little-endian offset;
/// - `11` copy with a 4-byte offset: the same with a 32-bit offset.
/// A copy's offset counts back from the current end of the output and may be smaller than its length
/// (the copied bytes then repeat). An offset of 0 is invalid.
public enum Snappy {
    /// Why a block was refused.
    public struct Failure: Error, CustomStringConvertible, Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// The bytes are not a valid Snappy block.
            case corrupt
            /// The block is valid as far as read, but inflates past the allowed size.
            case tooLarge
        }

        public var kind: Kind
        public var message: String

        public init(_ kind: Kind, _ message: String) {
            self.kind = kind
            self.message = message
        }

        public var description: String { "snappy: \(message)" }
    }

    /// The most a valid block can inflate per input byte: a 3-byte `10` copy yields 64 bytes (about
    /// 21.3×). A declared length beyond `22 × input` cannot be backed by the input, so it is refused
    /// before anything is allocated.
    static let maxExpansion = 22

    /// The uncompressed length from the preamble (§1), without decompressing.
    public static func decompressedLength(_ input: UnsafeRawBufferPointer) throws(Failure) -> Int {
        var pos = 0
        return try readPreamble(input, &pos)
    }

    private static func readPreamble(_ input: UnsafeRawBufferPointer, _ pos: inout Int) throws(Failure) -> Int {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < input.count else { throw Failure(.corrupt, "truncated length preamble") }
            let b = input[pos]
            pos += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
            // The length is a 32-bit value: at most five varint bytes (§1).
            if shift >= 35 { throw Failure(.corrupt, "length preamble longer than 5 bytes") }
        }
        guard result <= UInt64(UInt32.max) else { throw Failure(.corrupt, "declared length \(result) exceeds 2^32 − 1") }
        return Int(result)
    }

    /// Decompresses a block. Refuses a declared length above `maxLength` (`.tooLarge`) or one the input
    /// cannot back, and any malformed element, copy before the start, or output that does not end at
    /// exactly the declared length (`.corrupt`, with the offset where it went wrong).
    public static func decompress(_ input: UnsafeRawBufferPointer, maxLength: Int) throws(Failure) -> [UInt8] {
        var pos = 0
        let length = try readPreamble(input, &pos)
        if length > maxLength {
            throw Failure(.tooLarge, "declared length \(length) exceeds the limit of \(maxLength) bytes")
        }
        if length > (input.count - pos) * maxExpansion {
            throw Failure(.corrupt, "declared length \(length) cannot come from \(input.count - pos) bytes of elements")
        }
        var failure: Failure?
        let out = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            do throws(Failure) {
                initialized = try decodeElements(input, from: pos, into: buffer)
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Convenience over an array.
    public static func decompress(_ input: [UInt8], maxLength: Int) throws(Failure) -> [UInt8] {
        var result: Result<[UInt8], Failure> = .success([])
        input.withUnsafeBytes { raw in
            do throws(Failure) { result = .success(try decompress(raw, maxLength: maxLength)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    private static func decodeElements(_ input: UnsafeRawBufferPointer, from start: Int, into out: UnsafeMutableBufferPointer<UInt8>)
        throws(Failure) -> Int
    {
        var ip = start
        var op = 0
        let end = input.count
        let limit = out.count
        while ip < end {
            let tagAt = ip
            let tag = input[ip]
            ip += 1
            var length: Int
            var offset: Int
            switch tag & 3 {
            case 0:
                length = Int(tag >> 2)
                if length >= 60 {
                    let extra = length - 59
                    guard end - ip >= extra else { throw Failure(.corrupt, "truncated literal length at offset \(tagAt)") }
                    length = 0
                    for i in 0..<extra { length |= Int(input[ip + i]) << (8 * i) }
                    ip += extra
                }
                length += 1
                guard end - ip >= length else {
                    throw Failure(.corrupt, "literal of \(length) bytes at offset \(tagAt) runs past the end of the input")
                }
                guard limit - op >= length else {
                    throw Failure(.corrupt, "literal at offset \(tagAt) overruns the declared length \(limit)")
                }
                UnsafeMutableRawPointer(out.baseAddress! + op).copyMemory(from: input.baseAddress! + ip, byteCount: length)
                ip += length
                op += length
                continue
            case 1:
                guard ip < end else { throw Failure(.corrupt, "truncated copy at offset \(tagAt)") }
                length = 4 + Int((tag >> 2) & 7)
                offset = Int(tag >> 5) << 8 | Int(input[ip])
                ip += 1
            case 2:
                guard end - ip >= 2 else { throw Failure(.corrupt, "truncated copy at offset \(tagAt)") }
                length = 1 + Int(tag >> 2)
                offset = Int(input[ip]) | Int(input[ip + 1]) << 8
                ip += 2
            default:
                guard end - ip >= 4 else { throw Failure(.corrupt, "truncated copy at offset \(tagAt)") }
                length = 1 + Int(tag >> 2)
                offset = Int(input[ip]) | Int(input[ip + 1]) << 8 | Int(input[ip + 2]) << 16 | Int(input[ip + 3]) << 24
                ip += 4
            }
            guard offset > 0 && offset <= op else {
                throw Failure(.corrupt, "copy at offset \(tagAt) refers \(offset) bytes back with only \(op) bytes produced")
            }
            guard limit - op >= length else {
                throw Failure(.corrupt, "copy at offset \(tagAt) overruns the declared length \(limit)")
            }
            // Byte by byte when the source overlaps the destination: the copied bytes repeat (§2.2).
            let base = out.baseAddress!
            if offset >= length {
                (base + op).update(from: base + op - offset, count: length)
            } else {
                for i in 0..<length { base[op + i] = base[op - offset + i] }
            }
            op += length
        }
        guard op == limit else {
            throw Failure(.corrupt, "input ended after \(op) of the \(limit) declared bytes")
        }
        return op
    }

    // MARK: Compression

    /// Compresses into one block. Like the reference encoder, the input is cut into 64 KiB fragments
    /// matched independently (so every copy fits the 2-byte offset form), with a greedy matcher over
    /// a hash of 4-byte sequences that skips ahead faster the longer it finds nothing.
    /// The preamble holds a 32-bit length, so `input` must be below 4 GiB.
    public static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(input.count <= Int(UInt32.max), "a Snappy block holds at most 2^32 − 1 bytes")
        // The reference encoder's bound (`MaxCompressedLength`): every element fits, so the output is
        // written through a pointer without capacity checks.
        let bound = 32 + input.count + input.count / 6
        return [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            var out = Output(base: buffer.baseAddress!)
            var n = UInt32(truncatingIfNeeded: input.count)
            while n >= 0x80 {
                out.byte(UInt8(truncatingIfNeeded: n) | 0x80)
                n >>= 7
            }
            out.byte(UInt8(n))
            if input.count > 0 {
                let table = UnsafeMutablePointer<UInt16>.allocate(capacity: 1 << 14)
                defer { table.deallocate() }
                var fragment = 0
                while fragment < input.count {
                    let fragmentEnd = min(fragment + 65536, input.count)
                    compressFragment(UnsafeRawBufferPointer(rebasing: input[fragment..<fragmentEnd]), table, &out)
                    fragment = fragmentEnd
                }
            }
            initialized = out.count
        }
    }

    public static func compress(_ input: [UInt8]) -> [UInt8] { input.withUnsafeBytes { compress($0) } }

    /// Where compressed bytes go: a buffer of at least the compressed-length bound.
    private struct Output {
        let base: UnsafeMutablePointer<UInt8>
        var count = 0

        @inline(__always) mutating func byte(_ b: UInt8) {
            base[count] = b
            count += 1
        }

        @inline(__always) mutating func bytes(_ src: UnsafeRawBufferPointer) {
            guard let from = src.baseAddress, src.count > 0 else { return }
            UnsafeMutableRawPointer(base + count).copyMemory(from: from, byteCount: src.count)
            count += src.count
        }
    }

    private static func compressFragment(_ src: UnsafeRawBufferPointer, _ table: UnsafeMutablePointer<UInt16>, _ out: inout Output) {
        let n = src.count
        // Inputs too short to hold a useful match are one literal.
        guard n >= 16 else {
            emitLiteral(src, 0, n, &out)
            return
        }
        table.initialize(repeating: 0, count: 1 << 14)
        @inline(__always) func load32(_ i: Int) -> UInt32 { src.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
        @inline(__always) func load64(_ i: Int) -> UInt64 { src.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
        @inline(__always) func hash(_ v: UInt32) -> Int { Int((v &* 0x1E35_A7BD) >> 18) }
        let matchLimit = n - 4  // the last position where a 4-byte load is in bounds
        var literalStart = 0
        var ip = 1
        var skip = 32
        while ip <= matchLimit {
            let v = load32(ip)
            let h = hash(v)
            let candidate = Int(table[h])
            table[h] = UInt16(ip)
            if candidate < ip && load32(candidate) == v {
                if literalStart < ip { emitLiteral(src, literalStart, ip, &out) }
                // Extend the match eight bytes at a time while both loads are in bounds, then bytewise.
                var length = 4
                while ip + length + 8 <= n {
                    let diff = load64(ip + length) ^ load64(candidate + length)
                    if diff != 0 {
                        length += diff.littleEndian.trailingZeroBitCount >> 3
                        break
                    }
                    length += 8
                }
                if ip + length + 8 > n {
                    while ip + length < n && src[ip + length] == src[candidate + length] { length += 1 }
                }
                emitCopy(offset: ip - candidate, length: length, &out)
                ip += length
                literalStart = ip
                skip = 32
                // Index the position just before the new one so runs keep matching.
                if ip - 1 <= matchLimit { table[hash(load32(ip - 1))] = UInt16(ip - 1) }
            } else {
                ip += skip >> 5
                skip += 1
            }
        }
        if literalStart < n { emitLiteral(src, literalStart, n, &out) }
    }

    private static func emitLiteral(_ src: UnsafeRawBufferPointer, _ from: Int, _ to: Int, _ out: inout Output) {
        let n = to - from - 1
        if n < 60 {
            out.byte(UInt8(n << 2))
        } else {
            var bytes = 1
            while bytes < 4 && n >> (8 * bytes) > 0 { bytes += 1 }
            out.byte(UInt8((59 + bytes) << 2))
            for i in 0..<bytes { out.byte(UInt8(truncatingIfNeeded: n >> (8 * i))) }
        }
        out.bytes(UnsafeRawBufferPointer(rebasing: src[from..<to]))
    }

    /// Splits a match into copies of at most 64 bytes (never leaving a remainder below 4), using the
    /// 2-byte form for short near matches.
    private static func emitCopy(offset: Int, length: Int, _ out: inout Output) {
        var length = length
        while length >= 68 {
            emitCopyAtMost64(offset: offset, length: 64, &out)
            length -= 64
        }
        if length > 64 {
            emitCopyAtMost64(offset: offset, length: 60, &out)
            length -= 60
        }
        emitCopyAtMost64(offset: offset, length: length, &out)
    }

    private static func emitCopyAtMost64(offset: Int, length: Int, _ out: inout Output) {
        if length < 12 && offset < 2048 {
            out.byte(UInt8(1 | (length - 4) << 2 | (offset >> 8) << 5))
            out.byte(UInt8(truncatingIfNeeded: offset))
        } else {
            out.byte(UInt8(2 | (length - 1) << 2))
            out.byte(UInt8(truncatingIfNeeded: offset))
            out.byte(UInt8(truncatingIfNeeded: offset >> 8))
        }
    }
}
