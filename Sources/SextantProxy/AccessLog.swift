import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// An Envoy access-log format (`%COMMAND%` operators, Envoy's "Format strings" docs), compiled once and
/// applied to each finished request. Empty values print `-`, as Envoy does.
public struct AccessLogFormat: Sendable {
    enum Command: Sendable, Equatable {
        case startTime
        case request(RequestField, fallback: RequestField?)
        case response(String, fallback: String?)
        case responseCode, responseFlags, responseCodeDetails, connectionTerminationDetails
        case upstreamTransportFailureReason, bytesReceived, bytesSent, duration, upstreamHost, upstreamCluster
        case upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, downstreamRemoteAddressWithoutPort
        case requestedServerName, routeName, protocolName, downstreamPeerURISAN, upstreamPeerURISAN
    }

    /// What `%REQ(X)%` reads: the pseudo-headers are the record's own fields, resolved when the format is
    /// compiled (not by comparing names on every line); other names are looked up in the request headers.
    enum RequestField: Sendable, Equatable {
        case method, path, authority
        case header(String)

        init(_ lowercasedName: String) {
            switch lowercasedName {
            case ":method": self = .method
            case ":path": self = .path
            case ":authority": self = .authority
            default: self = .header(lowercasedName)
            }
        }
    }

    enum Piece: Sendable, Equatable {
        case literal(String)
        case command(Command, maxLength: Int?)
    }

    let pieces: [Piece]
    /// The format compiled for writing lines (TEXT encoding).
    let program: LineProgram

    init(pieces: [Piece]) {
        self.pieces = pieces
        program = LineProgram(text: pieces)
    }

    /// Istio's default TEXT format (istio `pilot/pkg/model/telemetry_logging.go`, `EnvoyTextLogFormat`).
    public static let istioText = try! AccessLogFormat(
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
            + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" "
            + "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "
            + "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% "
            + "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% "
            + "%ROUTE_NAME%\n")

    /// Istio's JSON field set (`EnvoyJSONLogFormatIstio`); Envoy writes the keys sorted.
    public static let istioJSON: [(String, AccessLogFormat)] = [
        ("authority", "%REQ(:AUTHORITY)%"), ("bytes_received", "%BYTES_RECEIVED%"), ("bytes_sent", "%BYTES_SENT%"),
        ("connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"),
        ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"), ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
        ("duration", "%DURATION%"), ("method", "%REQ(:METHOD)%"), ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        ("protocol", "%PROTOCOL%"), ("request_id", "%REQ(X-REQUEST-ID)%"), ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
        ("response_code", "%RESPONSE_CODE%"), ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
        ("response_flags", "%RESPONSE_FLAGS%"), ("route_name", "%ROUTE_NAME%"), ("start_time", "%START_TIME%"),
        ("upstream_cluster", "%UPSTREAM_CLUSTER%"), ("upstream_host", "%UPSTREAM_HOST%"),
        ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"), ("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"),
        ("upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"), ("user_agent", "%REQ(USER-AGENT)%"),
        ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ].map { ($0.0, try! AccessLogFormat($0.1)) }

    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Compiles `text`; an unknown `%COMMAND%` is an error naming it.
    public init(_ text: String) throws(FormatError) {
        var pieces: [Piece] = []
        var literal = ""
        var rest = Substring(text)
        while let start = rest.firstIndex(of: "%") {
            literal += rest[..<start]
            let after = rest[rest.index(after: start)...]
            if after.first == "%" {  // `%%` is a literal percent sign
                literal += "%"
                rest = after.dropFirst()
                continue
            }
            guard let end = after.firstIndex(of: "%") else {
                throw FormatError(description: "unterminated %COMMAND% in access log format: '\(text)'")
            }
            var token = after[..<end]
            var maxLength: Int?
            if let colon = token.lastIndex(of: ":"), token.last != ")", let n = Int(token[token.index(after: colon)...]) {
                maxLength = n
                token = token[..<colon]
            }
            guard let command = Self.command(token) else {
                throw FormatError(description: "unsupported access log command %\(token)%")
            }
            if !literal.isEmpty { pieces.append(.literal(literal)) }
            literal = ""
            pieces.append(.command(command, maxLength: maxLength))
            rest = after[after.index(after: end)...]
        }
        literal += rest
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        self.pieces = pieces
        program = LineProgram(text: pieces)
    }

    private static func command(_ token: Substring) -> Command? {
        func header(_ prefix: String) -> (String, String?)? {
            guard token.hasPrefix(prefix + "("), token.hasSuffix(")") else { return nil }
            let inner = token.dropFirst(prefix.count + 1).dropLast()
            let parts = inner.split(separator: "?", maxSplits: 1).map { String($0).lowercased() }
            return (parts[0], parts.count > 1 ? parts[1] : nil)
        }
        if let (h, f) = header("REQ") { return .request(RequestField(h), fallback: f.map(RequestField.init)) }
        if let (h, f) = header("RESP") { return .response(h, fallback: f) }
        switch token {
        case "START_TIME": return .startTime
        case "RESPONSE_CODE": return .responseCode
        case "RESPONSE_FLAGS": return .responseFlags
        case "RESPONSE_CODE_DETAILS": return .responseCodeDetails
        case "CONNECTION_TERMINATION_DETAILS": return .connectionTerminationDetails
        case "UPSTREAM_TRANSPORT_FAILURE_REASON": return .upstreamTransportFailureReason
        case "BYTES_RECEIVED": return .bytesReceived
        case "BYTES_SENT": return .bytesSent
        case "DURATION": return .duration
        case "UPSTREAM_HOST": return .upstreamHost
        case "UPSTREAM_CLUSTER": return .upstreamCluster
        case "UPSTREAM_LOCAL_ADDRESS": return .upstreamLocalAddress
        case "DOWNSTREAM_LOCAL_ADDRESS": return .downstreamLocalAddress
        case "DOWNSTREAM_REMOTE_ADDRESS": return .downstreamRemoteAddress
        case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": return .downstreamRemoteAddressWithoutPort
        case "REQUESTED_SERVER_NAME": return .requestedServerName
        case "ROUTE_NAME": return .routeName
        case "DOWNSTREAM_PEER_URI_SAN": return .downstreamPeerURISAN
        case "UPSTREAM_PEER_URI_SAN": return .upstreamPeerURISAN
        case "PROTOCOL": return .protocolName
        default: return nil
        }
    }

    /// The value of one command for a record: a string, a number, or nil for "no value" (`-`).
    enum Value {
        case string(String)
        case number(Int64)
        /// `%START_TIME%`, formatted where it is written.
        case startTime(UInt64)
    }

    static func value(_ c: Command, _ r: ProxyRecord) -> Value? {
        func str(_ s: String?) -> Value? { s.flatMap { $0.isEmpty ? nil : .string($0) } }
        switch c {
        case .startTime: return .startTime(r.startUnixNanos)
        case .request(let field, let fallback):
            if let v = requestValue(field, r) { return .string(v) }
            return fallback.flatMap { requestValue($0, r) }.map { .string($0) }
        case .response(let name, let fallback):
            if let v = r.responseHeader(lowercased: name) { return str(v) }
            return fallback.flatMap { r.responseHeader(lowercased: $0) }.flatMap { str($0) }
        case .responseCode: return .number(Int64(r.responseCode))
        case .responseFlags: return str(r.responseFlags.description)
        case .responseCodeDetails: return str(r.responseCodeDetails)
        case .connectionTerminationDetails: return nil
        case .upstreamTransportFailureReason: return str(r.upstreamTransportFailureReason)
        case .bytesReceived: return .number(Int64(r.bytesReceived))
        case .bytesSent: return .number(Int64(r.bytesSent))
        case .duration:
            return .number(r.duration.wholeMilliseconds)
        case .upstreamHost: return str(r.upstreamHost)
        case .upstreamCluster: return str(r.upstreamCluster)
        case .upstreamLocalAddress: return str(r.upstreamLocalAddress)
        case .downstreamLocalAddress: return str(r.downstreamLocalAddress)
        case .downstreamRemoteAddress: return str(r.downstreamRemoteAddress)
        case .downstreamRemoteAddressWithoutPort:
            guard let a = r.downstreamRemoteAddress, let colon = a.lastIndex(of: ":") else { return str(r.downstreamRemoteAddress) }
            return str(String(a[..<colon]).trimmingBrackets)
        case .requestedServerName: return nil
        case .routeName: return str(r.routeName)
        case .downstreamPeerURISAN: return str(r.downstreamPeerPrincipal)
        case .upstreamPeerURISAN: return str(r.upstreamPeerPrincipal)
        case .protocolName: return str(r.protocolName)
        }
    }

    /// A request field's value; nil when it is absent or empty.
    private static func requestValue(_ f: RequestField, _ r: ProxyRecord) -> String? {
        let v: String?
        switch f {
        case .method: v = r.method
        case .path: v = r.path
        case .authority: v = r.authority
        case .header(let name): v = r.requestHeaders.first(name: name)
        }
        guard let v, !v.isEmpty else { return nil }
        return v
    }

    /// Appends one command's value (`-` for none) as UTF-8, escaped as JSON string content when `json`:
    /// numbers, times and strings go straight into `out`, with no `Value` in between. The commands every
    /// line of Istio's formats holds are read here directly (through `value` they cost 2.6k instructions
    /// more per JSON line) and must write what `value` gives (`AccessLogFormatTests` compares the two for
    /// every command); the rest go through `value`.
    @inline(__always)
    static func appendValue(_ c: Command, _ r: ProxyRecord, _ out: inout [UInt8], _ json: Bool) {
        func text(_ s: String?) {
            if let s, !s.isEmpty { appendText(s, &out, json) } else { out.append(UInt8(ascii: "-")) }
        }
        switch c {
        case .startTime: appendStartTime(r.startUnixNanos, &out)
        case .responseCode: appendInt(Int64(r.responseCode), &out)
        case .bytesReceived: appendInt(Int64(r.bytesReceived), &out)
        case .bytesSent: appendInt(Int64(r.bytesSent), &out)
        case .duration: appendInt(r.duration.wholeMilliseconds, &out)
        case .responseFlags: text(r.responseFlags.description)
        case .responseCodeDetails: text(r.responseCodeDetails)
        case .upstreamHost: text(r.upstreamHost)
        case .upstreamCluster: text(r.upstreamCluster)
        case .upstreamLocalAddress: text(r.upstreamLocalAddress)
        case .downstreamLocalAddress: text(r.downstreamLocalAddress)
        case .downstreamRemoteAddress: text(r.downstreamRemoteAddress)
        case .routeName: text(r.routeName)
        case .protocolName: text(r.protocolName)
        case .request(let field, let fallback): text(requestValue(field, r) ?? fallback.flatMap { requestValue($0, r) })
        case .connectionTerminationDetails, .requestedServerName: out.append(UInt8(ascii: "-"))
        default:
            switch value(c, r) {
            case .string(let s)?: appendText(s, &out, json)
            case .number(let n)?: appendInt(n, &out)
            case .startTime(let ns)?: appendStartTime(ns, &out)
            case nil: out.append(UInt8(ascii: "-"))
            }
        }
    }

    /// Whether a command's value is always a number (written unquoted in JSON when it is a field's whole format).
    static func isNumeric(_ c: Command) -> Bool {
        switch c {
        case .responseCode, .bytesReceived, .bytesSent, .duration: return true
        default: return false
        }
    }

    /// The text form of a record (TEXT encoding).
    public func render(_ r: ProxyRecord) -> String { program.render(r) }

    /// A command's value cut to `max` characters (`%COMMAND:N%`; truncation counts characters, so this rare
    /// form takes a `String`).
    static func appendTruncated(_ c: Command, max: Int, _ r: ProxyRecord, _ out: inout [UInt8], _ json: Bool) {
        var text: String
        switch value(c, r) {
        case .string(let s)?: text = s
        case .number(let n)?: text = String(n)
        case .startTime(let ns)?: text = startTime(ns)
        case nil: text = "-"
        }
        if text.count > max { text = String(text.prefix(max)) }
        appendText(text, &out, json)
    }

    /// The JSON form (JSON encoding): one object, keys sorted, numbers for numeric commands, `null`-free
    /// (`-` for missing values, as Envoy prints them).
    public static func renderJSON(_ fields: [(String, AccessLogFormat)], _ r: ProxyRecord) -> String {
        LineProgram(json: fields).render(r)
    }

    /// UTF-8 of `s`; as JSON string content (RFC 8259 §7) when `json`.
    static func appendText(_ s: String, _ out: inout [UInt8], _ json: Bool) {
        if let done = s.utf8.withContiguousStorageIfAvailable({ bytes in appendText(bytes, &out, json) }) { return done }
        var s = s
        s.withUTF8 { appendText($0, &out, json) }
    }

    private static func appendText(_ bytes: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8], _ json: Bool) {
        guard json, needsJSONEscape(UnsafeRawBufferPointer(bytes)) else {
            out.append(contentsOf: bytes)
            return
        }
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xf)]]
            default: out.append(b)
            }
        }
    }

    /// Whether a byte needs escaping in JSON string content (RFC 8259 §7): a control character, `"` or `\`.
    /// Eight bytes at a time (`ByteWord`), as nearly every value needs none.
    static func needsJSONEscape(_ p: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i + 8 <= p.count {
            let w = p.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if ByteWord.below(0x20, in: w) | ByteWord.equal(0x22, in: w) | ByteWord.equal(0x5C, in: w) != 0 { return true }
            i += 8
        }
        while i < p.count {
            let c = p[i]
            if c < 0x20 || c == 0x22 || c == 0x5C { return true }
            i += 1
        }
        return false
    }

    static func appendInt(_ n: Int64, _ out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        // The magnitude, so that `Int64.min` has its last digit too.
        var v = n.magnitude
        if v < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(v))
            return
        }
        // Digits from the end of a scratch buffer, appended once.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { b in
            var k = 20
            while v > 0 {
                k -= 1
                b[k] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[k...]))
        }
    }

    /// Envoy's default `%START_TIME%`: `2026-11-25T01:02:03.456Z` (UTC, milliseconds).
    static func startTime(_ unixNanos: UInt64) -> String {
        var out: [UInt8] = []
        appendStartTime(unixNanos, &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendStartTime(_ unixNanos: UInt64, _ out: inout [UInt8]) {
        let ms = unixNanos / 1_000_000
        let secs = Int64(ms / 1000)
        var days = secs / 86400
        let rem = secs % 86400
        // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        // Written into a 24-byte scratch buffer and appended once: this runs once per log line. (A year has
        // four digits until 9999; `UInt64` nanoseconds end in 2554.)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { b in
            func put(_ value: Int64, _ width: Int, at start: Int) {
                var v = value
                for k in stride(from: start + width - 1, through: start, by: -1) {
                    b[k] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
                    v /= 10
                }
            }
            put(y, 4, at: 0)
            b[4] = UInt8(ascii: "-")
            put(m, 2, at: 5)
            b[7] = UInt8(ascii: "-")
            put(d, 2, at: 8)
            b[10] = UInt8(ascii: "T")
            put(rem / 3600, 2, at: 11)
            b[13] = UInt8(ascii: ":")
            put(rem / 60 % 60, 2, at: 14)
            b[16] = UInt8(ascii: ":")
            put(rem % 60, 2, at: 17)
            b[19] = UInt8(ascii: ".")
            put(Int64(ms % 1000), 3, at: 20)
            b[23] = UInt8(ascii: "Z")
            out.append(contentsOf: UnsafeBufferPointer(b))
        }
    }
}

extension String {
    fileprivate var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}

/// Writes access-log lines to a file (or `/dev/stdout`) without blocking event loops: lines are formatted
/// straight into a buffer under a lock, and a background thread swaps it for its own (emptied) buffer every
/// 100 ms or once it holds 64 KiB, and writes it out: no allocation and no copy per line once both buffers
/// have grown. Formatting happens only when a log is configured, so logging off costs nothing.
public final class AccessLogObserver: ProxyObserver, @unchecked Sendable {
    public enum Encoding: Sendable {
        case text(AccessLogFormat)
        case json([(String, AccessLogFormat)])
    }

    /// The line format, compiled once.
    private let program: LineProgram
    let fd: Int32
    private let lock = NIOLock()
    private let wake = ConditionLock(value: 0)
    private var buffer: [UInt8] = []
    private var stopped = false
    private let pool = NIOThreadPool(numberOfThreads: 1)

    /// Opens `path` for appending; throws with the reason when it cannot.
    public init(path: String, encoding: Encoding) throws(AccessLogFormat.FormatError) {
        switch encoding {
        case .text(let f): program = f.program
        case .json(let fields): program = LineProgram(json: fields)
        }
        let fd = path == "/dev/stdout" ? dup(1) : open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AccessLogFormat.FormatError(description: "cannot open access log '\(path)': \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        pool.start()
        pool.submit { [self] _ in writerLoop() }
    }

    public func requestFinished(_ record: ProxyRecord) {
        // A line takes a few microseconds to format; the writer holds the lock only to swap buffers.
        let full = lock.withLock { () -> Bool in
            program.append(record, into: &buffer)
            return buffer.count >= 64 * 1024
        }
        if full { wake.lock(); wake.unlock(withValue: 1) }
    }

    private func writerLoop() {
        var chunk: [UInt8] = []
        while true {
            if wake.lock(whenValue: 1, timeoutSeconds: 0.1) { wake.unlock(withValue: 0) }
            let done = lock.withLock { () -> Bool in
                swap(&chunk, &buffer)
                return stopped
            }
            var offset = 0
            while offset < chunk.count {
                let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { break }
                offset += n
            }
            chunk.removeAll(keepingCapacity: true)
            if done { return }
        }
    }

    /// Writes what is buffered and closes the file.
    public func shutdown() {
        lock.withLock { stopped = true }
        wake.lock()
        wake.unlock(withValue: 1)
        try? pool.syncShutdownGracefully()
        close(fd)
    }
}

/// An access-log line compiled once into a flat list: runs of literal bytes (text, keys, quotes and
/// separators; JSON-escaped already when the line is JSON) copied as they are, and values, each written in
/// place. Writing a line walks the list: no field or piece is unpacked, and no command copied, per line.
struct LineProgram: Sendable {
    enum Op: Sendable {
        /// `literal[start..<end]`.
        case bytes(start: Int, end: Int)
        /// Command `index`'s value (`-` when it has none).
        case value(Int)
        /// Command `index`'s value cut to `max` characters.
        case truncated(Int, max: Int)
    }

    private(set) var literal: [UInt8] = []
    private(set) var commands: [AccessLogFormat.Command] = []
    private(set) var ops: [Op] = []
    /// Values are escaped as JSON string content (the line is a JSON object).
    let json: Bool

    /// A TEXT format's line.
    init(text pieces: [AccessLogFormat.Piece]) {
        json = false
        add(pieces)
    }

    /// A JSON line: one object, keys sorted (as Envoy writes them), a field that is one numeric command
    /// unquoted, every other field a string.
    init(json fields: [(String, AccessLogFormat)]) {
        json = true
        add(raw: "{")
        for (i, (key, format)) in fields.sorted(by: { $0.0 < $1.0 }).enumerated() {
            add(raw: i == 0 ? "\"" : ",\"")
            add(literal: key)
            add(raw: "\":")
            if format.pieces.count == 1, case .command(let c, nil) = format.pieces[0], AccessLogFormat.isNumeric(c) {
                add(command: c, max: nil)
            } else {
                add(raw: "\"")
                add(format.pieces)
                add(raw: "\"")
            }
        }
        add(raw: "}\n")
    }

    private mutating func add(_ pieces: [AccessLogFormat.Piece]) {
        for p in pieces {
            switch p {
            case .literal(let s): add(literal: s)
            case .command(let c, let max): add(command: c, max: max)
            }
        }
    }

    /// The format's literal text (and JSON keys), escaped when the line is JSON.
    private mutating func add(literal text: String) {
        var bytes: [UInt8] = []
        AccessLogFormat.appendText(text, &bytes, json)
        add(raw: bytes)
    }

    /// Bytes as they are (the JSON object's own quotes and separators), joined to the run before them.
    private mutating func add(raw text: String) { add(raw: Array(text.utf8)) }

    private mutating func add(raw bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if case .bytes(let start, let end)? = ops.last, end == literal.count {
            ops[ops.count - 1] = .bytes(start: start, end: end + bytes.count)
        } else {
            ops.append(.bytes(start: literal.count, end: literal.count + bytes.count))
        }
        literal += bytes
    }

    private mutating func add(command c: AccessLogFormat.Command, max: Int?) {
        commands.append(c)
        ops.append(max.map { .truncated(commands.count - 1, max: $0) } ?? .value(commands.count - 1))
    }

    /// Appends the record's line as UTF-8.
    func append(_ r: ProxyRecord, into out: inout [UInt8]) {
        literal.withUnsafeBufferPointer { literal in
            commands.withUnsafeBufferPointer { commands in
                for op in ops {
                    switch op {
                    case .bytes(let start, let end):
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: literal[start..<end]))
                    case .value(let k):
                        AccessLogFormat.appendValue(commands[k], r, &out, json)
                    case .truncated(let k, let max):
                        AccessLogFormat.appendTruncated(commands[k], max: max, r, &out, json)
                    }
                }
            }
        }
    }

    func render(_ r: ProxyRecord) -> String {
        var out: [UInt8] = []
        append(r, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
