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

/// How glibc's allocator treats the large, short-lived buffers of batch work.
///
/// A collector allocates and frees buffers of hundreds of kilobytes to megabytes per batch (a scrape's
/// parse, a remote-write request's labels and encoding). glibc starts with a 128 KiB `mmap` threshold and
/// raises it when such a block is freed, but it also gives the top of an arena back to the system once
/// more than twice that threshold is free there, and a batch frees that much at once: the next batch then
/// takes a page fault on every fresh page (about 100,000 per million remote-write samples, measured).
/// `keepBatchBuffers` starts at the values glibc's own adjustment ends at (a 32 MiB `mmap` threshold, the
/// most it raises it to, and a trim threshold of twice that), so freed buffers are reused. Memory stays
/// bounded by the high-water mark; `HeapTrim.now` still returns it when asked. A `GLIBC_TUNABLES`
/// setting of either value wins.
public enum HeapTuning {
    public static func keepBatchBuffers() {
        #if canImport(Glibc)
        if let t = getenv("GLIBC_TUNABLES"), String(cString: t).contains("threshold") { return }
        _ = sextant_mallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD
        _ = sextant_mallopt(-1, 64 << 20)  // M_TRIM_THRESHOLD
        #endif
    }
}

#if canImport(Glibc)
/// glibc's `mallopt(3)` (in `<malloc.h>`, like `malloc_trim`).
@_silgen_name("mallopt")
private func sextant_mallopt(_ param: Int32, _ value: Int32) -> Int32

/// glibc's `malloc_trim(3)` (declared in `<malloc.h>`, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func sextant_malloc_trim(_ pad: Int) -> Int32
#endif
