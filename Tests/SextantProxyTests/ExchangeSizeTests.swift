import Testing

@testable import SextantProxy

/// The exchange (one per request) stays within what glibc's per-thread cache (tcache) serves: requests of
/// up to 1,032 bytes. Past it, every request's `malloc` and `free` of it take the allocator's slow paths
/// (~200 instructions more; BENCHMARKS.md, "The exchange in the allocator's per-thread cache"). A field added
/// to `DownstreamHandler.Exchange` that crosses the line fails here; put rarely set ones in `Exchange.Rare`.
@Suite struct ExchangeSizeTests {
    /// A Swift class's instance size, from its metadata: on Linux (no Objective-C interop) the class metadata
    /// is kind and superclass (8 bytes each), then the 32-bit flags, instance address point and instance size.
    static func instanceSize(_ type: AnyClass) -> Int {
        let metadata = unsafeBitCast(type, to: UnsafeRawPointer.self)
        return Int(metadata.load(fromByteOffset: 24, as: UInt32.self))
    }

    @Test func exchangeFitsTheAllocatorsPerThreadCache() {
        let size = Self.instanceSize(DownstreamHandler.Exchange.self)
        #expect(size <= 1032, "DownstreamHandler.Exchange is \(size) bytes")
        // The metadata read is what it claims: a class of two stored words is a 16-byte header and 16 bytes.
        #expect(Self.instanceSize(TwoWords.self) == 32)
    }

    final class TwoWords {
        var a = 0
        var b = 0
    }
}
