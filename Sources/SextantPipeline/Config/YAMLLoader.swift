import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns YAML text into `ConfigNode` trees with positions, expanding `${env:VAR}` references.
public enum YAMLLoader {
    /// Parses one YAML document. Syntax errors go to `diagnostics` with their position.
    public static func parse(
        _ text: String, file: String, diagnostics: Diagnostics,
        environment: [String: String] = ProcessEnvironment.current
    ) -> ConfigNode? {
        do {
            guard let root = try Yams.compose(yaml: text) else {
                return ConfigNode(.null, at: SourceLocation(file: file, line: 1, column: 1))
            }
            return convert(root, file: file, diagnostics: diagnostics, environment: environment)
        } catch let error as YamlError {
            report(error, file: file, diagnostics: diagnostics)
            return nil
        } catch {
            diagnostics.error(at: SourceLocation(file: file, line: 1, column: 1), "cannot parse YAML: \(error)")
            return nil
        }
    }

    /// Parses every document of a multi-document YAML stream (`---` separated).
    public static func parseAll(
        _ text: String, file: String, diagnostics: Diagnostics,
        environment: [String: String] = ProcessEnvironment.current
    ) -> [ConfigNode] {
        do {
            // `Yams.compose_all` returns a sequence that ends silently at the first error; the parser's
            // `nextRoot()` throws it, so a broken document is reported instead of dropping the rest.
            var out: [ConfigNode] = []
            let parser = try Parser(yaml: text)
            while let root = try parser.nextRoot() {
                out.append(convert(root, file: file, diagnostics: diagnostics, environment: environment))
            }
            return out
        } catch let error as YamlError {
            report(error, file: file, diagnostics: diagnostics)
            return []
        } catch {
            diagnostics.error(at: SourceLocation(file: file, line: 1, column: 1), "cannot parse YAML: \(error)")
            return []
        }
    }

    /// Reads and parses a file; an unreadable file is a diagnostic, not a crash.
    public static func load(
        file path: String, diagnostics: Diagnostics, environment: [String: String] = ProcessEnvironment.current
    ) -> ConfigNode? {
        guard let text = FileText.read(path) else {
            diagnostics.error(at: nil, "cannot read config file '\(path)': \(FileText.lastErrorDescription())")
            return nil
        }
        return parse(text, file: path, diagnostics: diagnostics, environment: environment)
    }

    private static func report(_ error: YamlError, file: String, diagnostics: Diagnostics) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            diagnostics.error(at: SourceLocation(file: file, line: mark.line, column: mark.column), "invalid YAML: \(problem)")
        case .reader(let problem, _, _, _):
            diagnostics.error(at: SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(problem)")
        default:
            diagnostics.error(at: SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)")
        }
    }

    private static func location(_ mark: Mark?, _ file: String) -> SourceLocation {
        SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    private static func convert(_ node: Node, file: String, diagnostics: Diagnostics, environment: [String: String]) -> ConfigNode {
        let loc = location(node.mark, file)
        switch node {
        case .scalar(let scalar):
            let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
            if !quoted && (scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" || scalar.string == "Null"
                || scalar.string == "NULL")
            {
                return ConfigNode(.null, at: loc)
            }
            let expanded = EnvExpansion.expand(scalar.string, environment: environment) { message in
                diagnostics.error(at: loc, message)
            }
            return ConfigNode(.scalar(expanded, quoted: quoted), at: loc)
        case .mapping(let mapping):
            var entries: [ConfigNode.Entry] = []
            for (k, v) in mapping {
                let keyLoc = location(k.mark, file)
                guard case .scalar(let keyScalar) = k else {
                    diagnostics.error(at: keyLoc, "mapping keys must be scalars")
                    continue
                }
                if entries.contains(where: { $0.key == keyScalar.string }) {
                    diagnostics.error(at: keyLoc, "duplicate key '\(keyScalar.string)'")
                    continue
                }
                entries.append(
                    ConfigNode.Entry(
                        key: keyScalar.string, keyLocation: keyLoc,
                        value: convert(v, file: file, diagnostics: diagnostics, environment: environment)))
            }
            return ConfigNode(.mapping(entries), at: loc)
        case .sequence(let sequence):
            return ConfigNode(
                .sequence(sequence.map { convert($0, file: file, diagnostics: diagnostics, environment: environment) }), at: loc)
        case .alias:
            diagnostics.error(at: loc, "YAML aliases are not supported in configuration")
            return ConfigNode(.null, at: loc)
        }
    }
}

/// `${env:NAME}`, `${env:NAME:-default}` and `${NAME}` expansion, as the OpenTelemetry Collector's
/// confmap does; `$$` is a literal `$`. An unset variable without a default expands to "".
public enum EnvExpansion {
    public static func expand(_ text: String, environment: [String: String], onError: (String) -> Void) -> String {
        guard text.contains("$") else { return text }
        var out = ""
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            guard c == "$" else {
                out.append(c)
                i = text.index(after: i)
                continue
            }
            let next = text.index(after: i)
            if next < text.endIndex, text[next] == "$" {
                out.append("$")
                i = text.index(after: next)
                continue
            }
            guard next < text.endIndex, text[next] == "{", let close = text[next...].firstIndex(of: "}") else {
                out.append(c)
                i = next
                continue
            }
            var body = Substring(text[text.index(after: next)..<close])
            if body.hasPrefix("env:") {
                body = body.dropFirst(4)
            } else if body.contains(":") && !body.contains(":-") {
                onError("unsupported config provider in '${\(body)}' (only env: is supported)")
                i = text.index(after: close)
                continue
            }
            var name = body
            var fallback: Substring?
            if let r = body.range(of: ":-") {
                name = body[body.startIndex..<r.lowerBound]
                fallback = body[r.upperBound...]
            }
            if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                onError("invalid environment variable name in '${\(body)}'")
            } else if let v = environment[String(name)] {
                out += v
            } else if let fallback {
                out += fallback
            }
            i = text.index(after: close)
        }
        return out
    }
}

/// The process environment as a dictionary.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[s.startIndex..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }
}

/// Whole-file reads without Foundation.
public enum FileText {
    public static func read(_ path: String) -> String? {
        guard let bytes = readBytes(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func readBytes(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    public static func lastErrorDescription() -> String { String(cString: strerror(errno)) }
}
