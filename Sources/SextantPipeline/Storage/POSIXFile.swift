#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system failure, with the operation, the path and `strerror(errno)`.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var description: String

    init(_ operation: String, _ path: String, errno code: Int32) {
        description = "\(operation) \(path): \(String(cString: strerror(code)))"
    }

    init(_ message: String) { description = message }
}

/// Thin wrappers over the POSIX calls the write-ahead log needs, retrying `EINTR` and short transfers.
enum POSIXFile {
    static func open(_ path: String, create: Bool) throws -> Int32 {
        let fd = systemOpen(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        if fd < 0 { throw StorageError("open", path, errno: errno) }
        return fd
    }

    static func size(_ fd: Int32, _ path: String) throws -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw StorageError("stat", path, errno: errno) }
        return Int64(st.st_size)
    }

    /// Reads up to `count` bytes at `offset` (fewer only at end of file).
    static func read(_ fd: Int32, _ path: String, offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StorageError("read", path, errno: errno)
                }
                if n == 0 { break }
                done += n
            }
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    static func write(_ fd: Int32, _ path: String, _ bytes: [UInt8], offset: Int64) throws {
        var done = 0
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StorageError("write", path, errno: errno)
                }
                done += n
            }
        }
    }

    static func sync(_ fd: Int32, _ path: String) throws {
        if fsync(fd) != 0 { throw StorageError("fsync", path, errno: errno) }
    }

    /// Makes a directory's entries (created or removed files) durable.
    static func syncDirectory(_ path: String) throws {
        let fd = systemOpen(path, O_RDONLY | O_CLOEXEC | O_DIRECTORY, 0)
        if fd < 0 { throw StorageError("open", path, errno: errno) }
        defer { _ = systemClose(fd) }
        try sync(fd, path)
    }

    static func truncate(_ fd: Int32, _ path: String, to size: Int64) throws {
        if ftruncate(fd, off_t(size)) != 0 { throw StorageError("truncate", path, errno: errno) }
    }

    static func close(_ fd: Int32) {
        _ = systemClose(fd)
    }

    static func rename(_ from: String, to: String) throws {
        #if canImport(Glibc)
        let rc = Glibc.rename(from, to)
        #elseif canImport(Musl)
        let rc = Musl.rename(from, to)
        #else
        let rc = Darwin.rename(from, to)
        #endif
        if rc != 0 { throw StorageError("rename", from, errno: errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    /// Takes an exclusive advisory lock on `fd`; `false` when another open file holds it.
    static func tryLock(_ fd: Int32) -> Bool { flock(fd, LOCK_EX | LOCK_NB) == 0 }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw StorageError("mkdir", prefix, errno: errno) }
        }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { throw StorageError("\(path) is not a directory") }
    }

    /// Names of the entries of a directory (without `.` and `..`).
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw StorageError("opendir", path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

@inline(__always)
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    #if canImport(Glibc)
    return Glibc.open(path, flags, mode)
    #elseif canImport(Musl)
    return Musl.open(path, flags, mode)
    #else
    return Darwin.open(path, flags, mode)
    #endif
}

@inline(__always)
private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #elseif canImport(Musl)
    return Musl.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}
