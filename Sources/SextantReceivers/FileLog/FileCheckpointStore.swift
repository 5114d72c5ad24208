#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SextantModel

/// Where the `filelog` receiver keeps its read offsets: one JSON file per receiver in the `storage`
/// directory, replaced atomically (write to a temporary file, fsync, rename) after every batch that
/// downstream accepted, so a restart resumes exactly after the last accepted entry.
struct FileCheckpointStore: Sendable {
    struct Entry: Sendable, Equatable {
        var path: String
        var device: UInt64
        var inode: UInt64
        var fingerprint: [UInt8]
        var offset: UInt64
    }

    struct StoreError: Error, CustomStringConvertible {
        var description: String
    }

    let file: String

    init(directory: String, receiverID: String) {
        let safe = String(receiverID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        file = directory + "/filelog_" + safe + ".json"
    }

    /// Creates the directory if needed; throws when it cannot be used.
    func prepare() throws {
        let dir = String(file[..<file.lastIndex(of: "/")!])
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw StoreError(description: "cannot create storage directory \(dir): \(String(cString: strerror(errno)))")
        }
    }

    func load() throws -> [Entry] {
        guard let fd = Optional(open(file, O_RDONLY | O_CLOEXEC)), fd >= 0 else {
            if errno == ENOENT { return [] }
            throw StoreError(description: "cannot read \(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let obj: [KeyValue]
        do { obj = try JSONValue.parseObject(String(decoding: bytes, as: UTF8.self)) } catch {
            throw StoreError(description: "checkpoint file \(file) is corrupt: \(error)")
        }
        guard case .array(let files)? = obj[key: "files"] else { return [] }
        return files.compactMap { f -> Entry? in
            guard case .kvlist(let kv) = f, case .string(let path)? = kv[key: "path"], case .int(let offset)? = kv[key: "offset"],
                case .int(let dev)? = kv[key: "device"], case .int(let ino)? = kv[key: "inode"],
                case .string(let fp)? = kv[key: "fingerprint"], let fingerprint = Base64.decode(fp), offset >= 0
            else { return nil }
            return Entry(path: path, device: UInt64(bitPattern: dev), inode: UInt64(bitPattern: ino), fingerprint: fingerprint, offset: UInt64(offset))
        }
    }

    func save(_ entries: [Entry]) throws {
        var out = "{\"version\":1,\"files\":["
        for (i, e) in entries.enumerated() {
            if i > 0 { out += "," }
            out += "{\"path\":\(Self.quote(e.path)),\"device\":\(Int64(bitPattern: e.device)),\"inode\":\(Int64(bitPattern: e.inode)),"
            out += "\"offset\":\(e.offset),\"fingerprint\":\"\(Base64.encode(e.fingerprint))\"}"
        }
        out += "]}\n"
        let tmp = file + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(description: "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(out.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                throw StoreError(description: "cannot write \(tmp): \(String(cString: strerror(e)))")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(tmp, file) == 0 else { throw StoreError(description: "cannot replace \(file): \(String(cString: strerror(errno)))") }
    }

    /// A JSON string literal (RFC 8259 §7).
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
