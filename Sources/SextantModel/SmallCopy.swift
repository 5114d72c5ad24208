extension UnsafeMutableRawPointer {
    /// Copies `count` bytes from `source` (the two must not overlap). Up to 16 bytes are moved inline, as two
    /// loads and two stores of the widest word that fits twice (overlapping in the middle); longer runs go to
    /// `memmove`. Most copies the request path makes (field names and values, span attribute keys and values,
    /// access-log literals) are 2–16 bytes, where a `memmove` call costs ~25 instructions of call and dispatch.
    @inlinable @inline(__always)
    public func copySmall(from source: UnsafeRawPointer, count n: Int) {
        if n > 16 {
            copyMemory(from: source, byteCount: n)
        } else if n >= 8 {
            storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
            storeBytes(of: source.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 {
            storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
            storeBytes(of: source.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self), toByteOffset: n - 4, as: UInt32.self)
        } else if n >= 2 {
            storeBytes(of: source.loadUnaligned(as: UInt16.self), as: UInt16.self)
            storeBytes(of: source.loadUnaligned(fromByteOffset: n - 2, as: UInt16.self), toByteOffset: n - 2, as: UInt16.self)
        } else if n == 1 {
            storeBytes(of: source.load(as: UInt8.self), as: UInt8.self)
        }
    }
}
