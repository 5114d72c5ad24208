#if canImport(Glibc)
import Glibc
#endif

/// Gives freed heap memory back to the system.
///
/// glibc keeps what a burst freed in its arenas' free lists: after a queue of thousands of items drains, the
/// process's RSS stays at the burst's high-water mark indefinitely. `malloc_trim(3)` returns every free page of
/// every arena (`madvise(MADV_DONTNEED)`, glibc ≥ 2.8); it walks the arenas, so it is for once a backlog has
/// drained, not per item.
public enum HeapTrim {
    /// Trims now.
    public static func now() {
        #if canImport(Glibc)
        _ = sextant_malloc_trim(0)
        #endif
    }
}

#if canImport(Glibc)
/// glibc's `malloc_trim(3)` (declared in `<malloc.h>`, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func sextant_malloc_trim(_ pad: Int) -> Int32
#endif
