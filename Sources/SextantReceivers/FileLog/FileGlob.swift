#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Path globs as the OTel filelog receiver takes them (doublestar syntax): `*`, `?`, `[...]` within one
/// path component (fnmatch(3)), and `**` as a whole component for zero or more directories.
public struct FileGlob: Sendable, Equatable {
    public let pattern: String
    let components: [String]

    public init(_ pattern: String) {
        self.pattern = pattern
        components = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    static func hasMagic(_ s: String) -> Bool { s.contains { $0 == "*" || $0 == "?" || $0 == "[" } }

    /// Whether `path` (absolute) matches the whole pattern.
    public func matches(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return match(components[...], parts[...])
    }

    private func match(_ pat: ArraySlice<String>, _ parts: ArraySlice<String>) -> Bool {
        guard let first = pat.first else { return parts.isEmpty }
        if first == "**" {
            var rest = parts
            while true {
                if match(pat.dropFirst(), rest) { return true }
                guard !rest.isEmpty else { return false }
                rest = rest.dropFirst()
            }
        }
        guard let part = parts.first, fnmatch(first, part, 0) == 0 else { return false }
        return match(pat.dropFirst(), parts.dropFirst())
    }

    /// Regular files matching the pattern, sorted. Walks only the directories the pattern can reach;
    /// `**` descends at most 16 levels and does not follow directory symlinks.
    public func expand() -> [String] {
        var out: [String] = []
        walk("", components[...], depth: 0, into: &out)
        return out.sorted()
    }

    private func walk(_ dir: String, _ pat: ArraySlice<String>, depth: Int, into out: inout [String]) {
        guard let first = pat.first else {
            if isRegularFile(dir) { out.append(dir) }
            return
        }
        let rest = pat.dropFirst()
        if first == "**" {
            walk(dir, rest, depth: depth, into: &out)
            guard depth < 16 else { return }
            for name in list(dir) where isDirectory(dir + "/" + name, followLinks: false) {
                walk(dir + "/" + name, pat, depth: depth + 1, into: &out)
            }
            return
        }
        if !Self.hasMagic(first) {
            let next = dir + "/" + first
            if rest.isEmpty || isDirectory(next, followLinks: true) { walk(next, rest, depth: depth, into: &out) }
            return
        }
        for name in list(dir) where fnmatch(first, name, FNM_PERIOD) == 0 {
            walk(dir + "/" + name, rest, depth: depth, into: &out)
        }
    }

    private func list(_ dir: String) -> [String] {
        guard let d = opendir(dir.isEmpty ? "/" : dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private func isDirectory(_ path: String, followLinks: Bool) -> Bool {
        var st = stat()
        let rc = followLinks ? stat(path, &st) : lstat(path, &st)
        return rc == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    private func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
}
