import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantFluentForward

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
    /// compiled (not by comparing names on every line); so is `x-request-id`, which the record carries as
    /// the proxy forwarded it (received, or generated and set). Other names are looked up in the request
    /// headers.
    enum RequestField: Sendable, Equatable {
        case method, path, authority, requestID
        case header(String)

        init(_ lowercasedName: String) {
            switch lowercasedName {
            case ":method": self = .method
            case ":path": self = .path
            case ":authority": self = .authority
            case "x-request-id": self = .requestID
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
            return .number(r.durationMilliseconds)
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
        case .requestID: v = requestID(r)
        case .header(let name): v = r.requestHeader(lowercased: name)
        }
        guard let v, !v.isEmpty else { return nil }
        return v
    }

    /// `x-request-id` as forwarded: the record's (a record made outside a request, e.g. by a test, may carry
    /// only the header).
    @inline(__always)
    static func requestID(_ r: ProxyRecord) -> String? {
        r.requestID.isEmpty ? r.requestHeader(lowercased: "x-request-id") : r.requestID
    }

    /// Appends a command's value through `value` (`-` for none): the commands `LineProgram` does not read
    /// directly.
    static func appendValue(_ c: Command, _ r: ProxyRecord, _ out: inout LineBuffer, _ json: Bool) {
        switch value(c, r) {
        case .string(let s)?: appendText(s, &out, json)
        case .number(let n)?: appendInt(n, &out)
        case .startTime(let ns)?: appendStartTime(ns, &out)
        case nil: out.append(UInt8(ascii: "-"))
        }
    }

    /// Whether a command's value is always a number (written unquoted in JSON when it is a field's whole format).
    static func isNumeric(_ c: Command) -> Bool {
        switch c {
        case .responseCode, .bytesReceived, .bytesSent, .duration: return true
        default: return false
        }
    }

    /// The format's command and its `:N` limit when the format is that one numeric command alone: a field
    /// holding it is written as a number (unquoted in JSON, an integer in msgpack and OTLP).
    var numericCommand: (command: Command, maxLength: Int?)? {
        guard pieces.count == 1, case .command(let c, let max) = pieces[0], Self.isNumeric(c) else { return nil }
        return (c, max)
    }

    /// The text form of a record (TEXT encoding).
    public func render(_ r: ProxyRecord) -> String { program.render(r) }

    /// A command's value cut to `max` characters (`%COMMAND:N%`; truncation counts characters, so this rare
    /// form takes a `String`).
    static func appendTruncated(_ c: Command, max: Int, _ r: ProxyRecord, _ out: inout LineBuffer, _ json: Bool) {
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
    @inline(__always)
    static func appendText(_ s: String, _ out: inout LineBuffer, _ json: Bool) {
        // Native and small strings lend their UTF-8 without a copy; bridged ones are copied.
        if let done: Void = s.utf8.withContiguousStorageIfAvailable({ out.append(UnsafeRawBufferPointer($0), json: json) }) {
            return done
        }
        var s = s
        s.withUTF8 { out.append(UnsafeRawBufferPointer($0), json: json) }
    }

    static func appendInt(_ n: Int64, _ out: inout LineBuffer) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        // The magnitude, so that `Int64.min` has its last digit too.
        var v = n.magnitude
        if v < 10 {
            out.append(UInt8(ascii: "0") &+ UInt8(v))
            return
        }
        var digits = 1
        var t = v
        while t >= 10 {
            t /= 10
            digits += 1
        }
        // Digits from the last, straight into the buffer.
        let p = out.reserve(digits)
        var k = digits
        while k > 0 {
            k -= 1
            p.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: k, as: UInt8.self)
            v /= 10
        }
        out.commit(digits)
    }

    /// Envoy's default `%START_TIME%`: `2026-11-25T01:02:03.456Z` (UTC, milliseconds).
    static func startTime(_ unixNanos: UInt64) -> String {
        var out = LineBuffer(capacity: 24)
        appendStartTime(unixNanos, &out)
        return out.string
    }

    static func appendStartTime(_ unixNanos: UInt64, _ out: inout LineBuffer) {
        let ms = unixNanos / 1_000_000
        let secs = Int64(ms / 1000)
        let b = out.reserve(24)
        if !out.reuseSecond(secs, at: b) {
            writeSecond(secs, at: b)
            out.rememberSecond(secs, from: b)
        }
        putDigits(Int64(ms % 1000), 3, at: 20, in: b)
        b.storeBytes(of: UInt8(ascii: "Z"), toByteOffset: 23, as: UInt8.self)
        out.commit(24)
    }

    /// The last `width` decimal digits of `value` (not negative), zero-padded, at `b + start`.
    @inline(__always)
    private static func putDigits(_ value: Int64, _ width: Int, at start: Int, in b: UnsafeMutableRawPointer) {
        var v = value
        for k in stride(from: start + width - 1, through: start, by: -1) {
            b.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: k, as: UInt8.self)
            v /= 10
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.` of `secs` since the Unix epoch, the first 20 bytes of a start time, at `b`.
    private static func writeSecond(_ secs: Int64, at b: UnsafeMutableRawPointer) {
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
        // Written straight into the buffer. (A year has four digits until 9999; `UInt64` nanoseconds end in 2554.)
        func put(_ value: Int64, _ width: Int, at start: Int) { putDigits(value, width, at: start, in: b) }
        func sep(_ c: Unicode.Scalar, at k: Int) { b.storeBytes(of: UInt8(ascii: c), toByteOffset: k, as: UInt8.self) }
        put(y, 4, at: 0)
        sep("-", at: 4)
        put(m, 2, at: 5)
        sep("-", at: 7)
        put(d, 2, at: 8)
        sep("T", at: 10)
        put(rem / 3600, 2, at: 11)
        sep(":", at: 13)
        put(rem / 60 % 60, 2, at: 14)
        sep(":", at: 16)
        put(rem % 60, 2, at: 17)
        sep(".", at: 19)
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
    private var buffer = LineBuffer(capacity: 64 * 1024 + 4096)
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
        var chunk = LineBuffer(capacity: 64 * 1024 + 4096)
        while true {
            if wake.lock(whenValue: 1, timeoutSeconds: 0.1) { wake.unlock(withValue: 0) }
            let done = lock.withLock { () -> Bool in
                buffer.exchange(with: &chunk)
                return stopped
            }
            let bytes = chunk.bytes
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }
                offset += n
            }
            chunk.removeAll()
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
/// separators; JSON-escaped already when the line is JSON; msgpack headers and keys when it is a Fluentd
/// record) copied as they are, and values, each written in place. The commands every line of Istio's formats
/// holds are read straight from the record (through `AccessLogFormat.value` they cost 2.6k instructions more
/// per JSON line) and must write what `value` gives (`AccessLogFormatTests` compares the two for every
/// command); the rest go through `value`. An `Op` is plain data (a header's name is an index into `names`), so
/// walking the list copies no string.
struct LineProgram: Sendable {
    /// A command read straight from the record, with no operand.
    enum Field: Sendable {
        case startTime, responseCode, bytesReceived, bytesSent, duration, responseFlags, responseCodeDetails
        case upstreamHost, upstreamCluster, upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress
        case routeName, protocolName, upstreamTransportFailureReason
        /// A command that never has a value here (`-`).
        case none
    }

    /// `%REQ(X)%`'s field, a header by its index in `names`, or one the proxy notes as it reads the request.
    enum Request: Sendable {
        case method, path, authority, requestID
        case header(Int)
        case known(ProxyRecord.KnownRequestField)
    }

    enum Op: Sendable {
        /// `literal[start..<end]`.
        case bytes(start: Int, end: Int)
        case field(Field)
        case request(Request, fallback: Request?)
        /// `%RESP(X?Y)%`, by the names' indexes in `names`.
        case response(Int, fallback: Int?)
        /// `%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%` (`names[index]`): the record's service time when the proxy
        /// sent its own (`ResponseFields.proxied`), else looked up as `response`.
        case serviceTime(Int)
        /// Command `index`'s value through `AccessLogFormat.value` (`-` when it has none).
        case value(Int)
        /// Command `index`'s value cut to `max` characters.
        case truncated(Int, max: Int)
        /// msgpack only: the request's start as an EventTime (Forward protocol v1: fixext 8, type 0, seconds
        /// and nanoseconds as big-endian uint32).
        case eventTime
        /// msgpack only: a numeric field as a msgpack integer.
        case integer(Field)
        /// msgpack only: the values written up to `endString` make one str, its header written once its
        /// length is known (the smallest str form, as the msgpack spec's writers choose).
        case beginString, endString
        /// protobuf only: the bytes written up to `endLength` are one length-delimited field's content (its tag
        /// written before), their length a varint put in front once it is known. They nest.
        case beginLength, endLength
        /// protobuf only: a `fixed64` field, tag byte first, holding the request's start or (`observed`) the
        /// time of writing; left out when 0, as proto3 leaves out zero values.
        case protoTime(tag: UInt8, observed: Bool)
        /// protobuf only: a numeric field as a varint (an `AnyValue.int_value`, its tag written before).
        case protoInt(Field)
        /// protobuf only: the record's trace ID (16 bytes) or span ID (8), tag and length first; left out when
        /// the record has none.
        case protoTraceID(tag: UInt8), protoSpanID(tag: UInt8)
    }

    private(set) var literal: [UInt8] = []
    private(set) var commands: [AccessLogFormat.Command] = []
    private(set) var names: [String] = []
    private(set) var ops: [Op] = []
    /// Values are escaped as JSON string content (the line is a JSON object).
    let json: Bool

    /// A TEXT format's line.
    init(text pieces: [AccessLogFormat.Piece]) {
        json = false
        add(pieces)
    }

    /// A Fluentd record as a Forward protocol v1 entry, `[EventTime, {key: value, ...}]` in msgpack, keys
    /// sorted as in the JSON line: a field that is one numeric command a msgpack integer, every other a str of
    /// the field's text (`-` when empty), as Envoy's Fluentd access logger turns its JSON-format record into
    /// msgpack.
    init(msgpack fields: [(String, AccessLogFormat)]) {
        json = false
        var head = MessagePackWriter(capacity: 8)
        head.writeArrayHeader(2)
        add(raw: head.bytes)
        ops.append(.eventTime)
        var map = MessagePackWriter(capacity: 8)
        map.writeMapHeader(fields.count)
        add(raw: map.bytes)
        for (key, format) in fields.sorted(by: { $0.0 < $1.0 }) {
            var k = MessagePackWriter(capacity: key.utf8.count + 5)
            k.write(key)
            add(raw: k.bytes)
            if case (let c, nil)? = format.numericCommand {
                add(number: c, as: Op.integer)
            } else {
                ops.append(.beginString)
                add(format.pieces)
                ops.append(.endString)
            }
        }
    }

    /// Envoy's OpenTelemetry access-log record: one OTLP `LogRecord` (opentelemetry/proto/logs/v1/logs.proto)
    /// framed as a `ScopeLogs.log_records` field (2), as `SpanWireWriter` frames a span. Its body is the `body`
    /// format's text; `labels` are its attributes, in order, a label that is one numeric command an
    /// `int_value` and every other a `string_value`; `time_unix_nano` is the request's start,
    /// `observed_time_unix_nano` the time of writing, and the record's trace and span IDs are its own. Fields go
    /// in ascending order and zero values are left out, so the bytes are those `OTLPProtobuf` encodes for the
    /// same `LogRecord` (`OTelAccessLogTests`), written with no `String`, `AnyValue` or `LogRecord` made per
    /// request.
    init(otlpLog body: AccessLogFormat, labels: [(String, AccessLogFormat)]) {
        json = false
        add(raw: [0x12])  // ScopeLogs.log_records (2, length-delimited)
        ops.append(.beginLength)
        ops.append(.protoTime(tag: 0x09, observed: false))  // time_unix_nano (1, fixed64)
        add(raw: [0x2A])  // body (5): an AnyValue...
        ops.append(.beginLength)
        add(raw: [0x0A])  // ...holding string_value (1)
        ops.append(.beginLength)
        add(body.pieces)
        ops.append(contentsOf: [.endLength, .endLength])
        for (key, format) in labels {
            add(raw: [0x32])  // attributes (6): a KeyValue
            ops.append(.beginLength)
            if !key.isEmpty {  // KeyValue.key (1); proto3 leaves out an empty string
                var k = LineBuffer(capacity: key.utf8.count + 8)
                k.append(0x0A)
                k.appendVarint(UInt64(key.utf8.count))
                add(raw: Array(k.bytes) + Array(key.utf8))
            }
            add(raw: [0x12])  // KeyValue.value (2): an AnyValue
            ops.append(.beginLength)
            if let (c, _) = format.numericCommand {  // a number even when cut to N characters, as a typed value
                add(raw: [0x18])  // AnyValue.int_value (3, varint)
                add(number: c, as: Op.protoInt)
            } else {
                add(raw: [0x0A])  // AnyValue.string_value (1)
                ops.append(.beginLength)
                add(format.pieces)
                ops.append(.endLength)
            }
            ops.append(contentsOf: [.endLength, .endLength])
        }
        ops.append(.protoTraceID(tag: 0x4A))  // trace_id (9, bytes)
        ops.append(.protoSpanID(tag: 0x52))  // span_id (10, bytes)
        ops.append(.protoTime(tag: 0x59, observed: true))  // observed_time_unix_nano (11, fixed64)
        ops.append(.endLength)
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
            if case (let c, nil)? = format.numericCommand {
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
        var bytes = LineBuffer(capacity: text.utf8.count)
        AccessLogFormat.appendText(text, &bytes, json)
        add(raw: Array(bytes.bytes))
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

    /// A numeric command (`AccessLogFormat.isNumeric`, read straight from the record) written in the binary
    /// form `encoded` makes of its field.
    private mutating func add(number c: AccessLogFormat.Command, as encoded: (Field) -> Op) {
        add(command: c, max: nil)
        if case .field(let f)? = ops.last { ops[ops.count - 1] = encoded(f) }
    }

    private mutating func add(command c: AccessLogFormat.Command, max: Int?) {
        if let max {
            commands.append(c)
            ops.append(.truncated(commands.count - 1, max: max))
            return
        }
        func field(_ f: Field) { ops.append(.field(f)) }
        switch c {
        case .startTime: field(.startTime)
        case .responseCode: field(.responseCode)
        case .bytesReceived: field(.bytesReceived)
        case .bytesSent: field(.bytesSent)
        case .duration: field(.duration)
        case .responseFlags: field(.responseFlags)
        case .responseCodeDetails: field(.responseCodeDetails)
        case .upstreamHost: field(.upstreamHost)
        case .upstreamCluster: field(.upstreamCluster)
        case .upstreamLocalAddress: field(.upstreamLocalAddress)
        case .downstreamLocalAddress: field(.downstreamLocalAddress)
        case .downstreamRemoteAddress: field(.downstreamRemoteAddress)
        case .routeName: field(.routeName)
        case .protocolName: field(.protocolName)
        case .upstreamTransportFailureReason: field(.upstreamTransportFailureReason)
        case .connectionTerminationDetails, .requestedServerName: field(.none)
        case .request(let f, let fallback): ops.append(.request(request(f), fallback: fallback.map { request($0) }))
        case .response(let name, nil) where name == "x-envoy-upstream-service-time": ops.append(.serviceTime(index(name)))
        case .response(let name, let fallback): ops.append(.response(index(name), fallback: fallback.map { index($0) }))
        default:
            commands.append(c)
            ops.append(.value(commands.count - 1))
        }
    }

    private mutating func request(_ f: AccessLogFormat.RequestField) -> Request {
        switch f {
        case .method: return .method
        case .path: return .path
        case .authority: return .authority
        case .requestID: return .requestID
        case .header(let name):
            if let k = ProxyRecord.KnownRequestField(lowercased: name) { return .known(k) }
            return .header(index(name))
        }
    }

    private mutating func index(_ name: String) -> Int {
        if let i = names.firstIndex(of: name) { return i }
        names.append(name)
        return names.count - 1
    }

    /// Appends the record's line as UTF-8 (or its msgpack record).
    func append(_ r: ProxyRecord, into out: inout LineBuffer) {
        // Where each open msgpack str or protobuf length-delimited field begins (the formats nest four deep at
        // most), on the stack.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 8) { open in
            literal.withUnsafeBytes { literal in
                var depth = 0
                for op in ops {
                    switch op {
                    case .bytes(let start, let end):
                        out.append(UnsafeRawBufferPointer(rebasing: literal[start..<end]))
                    case .field(let f):
                        append(f, r, &out)
                    case .request(let f, let fallback):
                        text(value(f, r) ?? fallback.flatMap { value($0, r) }, &out)
                    case .response(let name, let fallback):
                        // A present primary header is the value even when empty (`-`), as `value` reads it.
                        text(r.responseHeader(lowercased: names[name]) ?? fallback.flatMap { r.responseHeader(lowercased: names[$0]) }, &out)
                    case .serviceTime(let name):
                        // The digits `appendProxyFields` sent, without a lookup in the sent fields and the
                        // proxy's own (~600 instructions a line).
                        if case .proxied = r.responseFields {
                            AccessLogFormat.appendInt(r.upstreamServiceMilliseconds, &out)
                        } else {
                            text(r.responseHeader(lowercased: names[name]), &out)
                        }
                    case .value(let k):
                        AccessLogFormat.appendValue(commands[k], r, &out, json)
                    case .truncated(let k, let max):
                        AccessLogFormat.appendTruncated(commands[k], max: max, r, &out, json)
                    case .eventTime:
                        let p = out.reserve(10)
                        p.storeBytes(of: 0xD7, as: UInt8.self)
                        p.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
                        p.storeBytes(of: UInt32(truncatingIfNeeded: r.startUnixNanos / 1_000_000_000).bigEndian, toByteOffset: 2, as: UInt32.self)
                        p.storeBytes(of: UInt32(r.startUnixNanos % 1_000_000_000).bigEndian, toByteOffset: 6, as: UInt32.self)
                        out.commit(10)
                    case .integer(let f):
                        out.appendMessagePackInt(Self.number(f, r))
                    case .beginString:
                        open[depth] = out.count
                        depth += 1
                        out.append(0xA0)  // a fixstr header, replaced once the length is known
                    case .endString:
                        depth -= 1
                        out.closeMessagePackString(headerAt: open[depth])
                    case .beginLength:
                        open[depth] = out.count
                        depth += 1
                        out.append(0)  // a one-byte length, replaced once the length is known
                    case .endLength:
                        depth -= 1
                        out.closeVarintLength(at: open[depth])
                    case .protoTime(let tag, let observed):
                        let ns = observed ? WallClock.nowNanos() : r.startUnixNanos
                        guard ns != 0 else { break }
                        let p = out.reserve(9)
                        p.storeBytes(of: tag, as: UInt8.self)
                        p.storeBytes(of: ns.littleEndian, toByteOffset: 1, as: UInt64.self)
                        out.commit(9)
                    case .protoInt(let f):
                        out.appendVarint(UInt64(bitPattern: Self.number(f, r)))
                    case .protoTraceID(let tag):
                        if let id = r.traceID { out.appendIDField(tag: tag, high: id.high, low: id.low) }
                    case .protoSpanID(let tag):
                        if let id = r.spanID { out.appendIDField(tag: tag, high: nil, low: id.value) }
                    }
                }
            }
        }
    }

    @inline(__always)
    private func append(_ f: Field, _ r: ProxyRecord, _ out: inout LineBuffer) {
        switch f {
        case .startTime: AccessLogFormat.appendStartTime(r.startUnixNanos, &out)
        case .responseCode, .bytesReceived, .bytesSent, .duration: AccessLogFormat.appendInt(Self.number(f, r), &out)
        case .responseFlags: text(r.responseFlags.description, &out)
        case .responseCodeDetails: text(r.responseCodeDetails, &out)
        case .upstreamHost: text(r.upstreamHost, &out)
        case .upstreamCluster: text(r.upstreamCluster, &out)
        case .upstreamLocalAddress: text(r.upstreamLocalAddress, &out)
        case .downstreamLocalAddress: text(r.downstreamLocalAddress, &out)
        case .downstreamRemoteAddress: text(r.downstreamRemoteAddress, &out)
        case .routeName: text(r.routeName, &out)
        case .protocolName: text(r.protocolName, &out)
        case .upstreamTransportFailureReason: text(r.upstreamTransportFailureReason, &out)
        case .none: out.append(UInt8(ascii: "-"))
        }
    }

    /// A numeric field's value: the four commands `AccessLogFormat.isNumeric` names (0 for any other field).
    @inline(__always)
    private static func number(_ f: Field, _ r: ProxyRecord) -> Int64 {
        switch f {
        case .responseCode: Int64(r.responseCode)
        case .bytesReceived: Int64(r.bytesReceived)
        case .bytesSent: Int64(r.bytesSent)
        case .duration: r.durationMilliseconds
        default: 0
        }
    }

    /// A request field's value; nil when absent (empty is `text`'s to turn into `-`).
    @inline(__always)
    private func value(_ f: Request, _ r: ProxyRecord) -> String? {
        let v: String?
        switch f {
        case .method: v = r.method
        case .path: v = r.path
        case .authority: v = r.authority
        case .requestID: v = AccessLogFormat.requestID(r)
        case .header(let i): v = r.requestHeader(lowercased: names[i])
        case .known(let k): v = r.requestHeader(k)
        }
        guard let v, !v.isEmpty else { return nil }
        return v
    }

    @inline(__always)
    private func text(_ s: String?, _ out: inout LineBuffer) {
        if let s, !s.isEmpty { AccessLogFormat.appendText(s, &out, json) } else { out.append(UInt8(ascii: "-")) }
    }

    func render(_ r: ProxyRecord) -> String {
        // Bound for the copy: its storage is freed when the buffer ends.
        let out = written(r)
        return out.string
    }

    /// The record's line as bytes (a Fluentd record's msgpack entry).
    func bytes(_ r: ProxyRecord) -> [UInt8] {
        let out = written(r)
        return Array(out.bytes)
    }

    private func written(_ r: ProxyRecord) -> LineBuffer {
        var out = LineBuffer(capacity: literal.count + 16 * ops.count)
        append(r, into: &out)
        return out
    }
}

/// A growable byte buffer written through a raw pointer, for access-log lines: an append is a capacity check
/// and a copy (appending to `[UInt8]` cost ~90 instructions a call, a line making ~40 of them), and text
/// headed for a JSON string is checked for escapes eight bytes at a time as it is copied.
struct LineBuffer: ~Copyable {
    private var base: UnsafeMutableRawPointer
    /// Bytes it can hold before it grows.
    private(set) var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    /// The second a start time last written here fell in, and its first 20 bytes (`YYYY-MM-DDTHH:MM:SS.`):
    /// lines written within one second share them, as Envoy's access-log formatter caches its last second's
    /// text. Kept by `exchange(with:)`, which swaps only the storage.
    private var cachedSecond = Int64.min
    private var cachedSecondText: (UInt64, UInt64, UInt32) = (0, 0, 0)

    /// Writes the cached text of second `secs` at `p` if it is the one cached.
    @inline(__always) func reuseSecond(_ secs: Int64, at p: UnsafeMutableRawPointer) -> Bool {
        guard secs == cachedSecond else { return false }
        p.storeBytes(of: cachedSecondText.0, toByteOffset: 0, as: UInt64.self)
        p.storeBytes(of: cachedSecondText.1, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: cachedSecondText.2, toByteOffset: 16, as: UInt32.self)
        return true
    }

    /// Caches the 20 bytes at `p` as second `secs`'s text.
    mutating func rememberSecond(_ secs: Int64, from p: UnsafeRawPointer) {
        cachedSecond = secs
        cachedSecondText = (
            p.loadUnaligned(fromByteOffset: 0, as: UInt64.self), p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
            p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        )
    }

    /// The bytes written; valid until the next change.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    mutating func removeAll() { count = 0 }

    /// Forgets the bytes from `n` on.
    mutating func truncate(to n: Int) {
        precondition(n >= 0 && n <= count)
        count = n
    }

    /// Removes the first `n` bytes, moving the rest to the front.
    mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count)
        memmove(base, base + n, count - n)
        count -= n
    }

    /// Swaps contents (and storage) with `other`: the writer thread takes the full buffer and leaves its empty one.
    mutating func exchange(with other: inout LineBuffer) {
        (base, other.base) = (other.base, base)
        (capacity, other.capacity) = (other.capacity, capacity)
        (count, other.count) = (other.count, count)
    }

    /// Room for `n` more bytes at the returned address; `commit` then counts those written.
    ///
    /// `count` only grows by what `reserve` made room for, so it stays within `0...capacity`: the appends below
    /// count with wrapping arithmetic, without an overflow branch each.
    @inline(__always) mutating func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if capacity &- count < n { grow(n) }
        return base + count
    }

    @inline(__always) mutating func commit(_ n: Int) { count &+= n }

    /// A msgpack int in the smallest form `MessagePackWriter.intHead` chooses.
    mutating func appendMessagePackInt(_ n: Int64) {
        let (first, width) = MessagePackWriter.intHead(n)
        let p = reserve(1 + width)
        p.storeBytes(of: first, as: UInt8.self)
        storeBigEndian(UInt64(bitPattern: n), width: width, at: p + 1)
        count += 1 + width
    }

    /// Turns the one-byte placeholder at `start` and the bytes after it into a msgpack str with the header
    /// `MessagePackWriter.strHead` chooses: the bytes move up to make room for a length past a fixstr's 31.
    mutating func closeMessagePackString(headerAt start: Int) {
        let n = count - start - 1
        let (first, width) = MessagePackWriter.strHead(n)
        if width > 0 {
            _ = reserve(width)
            memmove(base + start + 1 + width, base + start + 1, n)
            storeBigEndian(UInt64(n), width: width, at: base + start + 1)
            count += width
        }
        base.storeBytes(of: first, toByteOffset: start, as: UInt8.self)
    }

    /// Closes a protobuf length-delimited field whose content began at `start + 1` (`start` holds one byte
    /// left for its length): writes the length there as a varint, moving the content up when it needs more
    /// than one byte (128 bytes or more).
    mutating func closeVarintLength(at start: Int) {
        let n = count - start - 1
        var width = 1
        while n >> (7 * width) != 0 { width += 1 }
        if width > 1 {
            _ = reserve(width - 1)
            memmove(base + start + width, base + start + 1, n)
            count += width - 1
        }
        _ = Self.storeVarint(UInt64(n), at: base + start)
    }

    /// A protobuf `bytes` field holding a trace ID (`high` and `low`) or a span ID (`low` alone), big-endian as
    /// OTLP's IDs are, its tag and length first.
    mutating func appendIDField(tag: UInt8, high: UInt64?, low: UInt64) {
        let n = high == nil ? 8 : 16
        let p = reserve(2 + n)
        p.storeBytes(of: tag, as: UInt8.self)
        p.storeBytes(of: UInt8(n), toByteOffset: 1, as: UInt8.self)
        if let high { p.storeBytes(of: high.bigEndian, toByteOffset: 2, as: UInt64.self) }
        p.storeBytes(of: low.bigEndian, toByteOffset: 2 + n - 8, as: UInt64.self)
        count += 2 + n
    }

    mutating func appendVarint(_ v: UInt64) {
        count += Self.storeVarint(v, at: reserve(10))
    }

    /// Writes `v` at `p` as a protobuf varint (base 128, least significant group first); returns its length.
    @inline(__always) private static func storeVarint(_ v: UInt64, at p: UnsafeMutableRawPointer) -> Int {
        var v = v
        var i = 0
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i += 1
        }
        p.storeBytes(of: UInt8(v), toByteOffset: i, as: UInt8.self)
        return i + 1
    }

    /// The low `width` bytes of `v` at `p` (0, 1, 2, 4 or 8), most significant first.
    @inline(__always) private func storeBigEndian(_ v: UInt64, width: Int, at p: UnsafeMutableRawPointer) {
        switch width {
        case 0: break
        case 1: p.storeBytes(of: UInt8(truncatingIfNeeded: v), as: UInt8.self)
        case 2: p.storeBytes(of: UInt16(truncatingIfNeeded: v).bigEndian, as: UInt16.self)
        case 4: p.storeBytes(of: UInt32(truncatingIfNeeded: v).bigEndian, as: UInt32.self)
        default: p.storeBytes(of: v.bigEndian, as: UInt64.self)
        }
    }

    private mutating func grow(_ n: Int) {
        let newCapacity = max(capacity * 2, count + n)
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        reserve(1).storeBytes(of: byte, as: UInt8.self)
        count &+= 1
    }

    @inline(__always) mutating func append(_ p: UnsafeRawBufferPointer) {
        guard let src = p.baseAddress, p.count > 0 else { return }
        let n = p.count
        let dst = reserve(n)
        // A line's literal runs (keys, quotes, separators) are mostly 4–16 bytes, copied inline.
        dst.copySmall(from: src, count: n)
        count &+= n
    }

    /// `p` as it is, or as JSON string content (RFC 8259 §7: `"`, `\` and control characters escaped) when
    /// `json`. Bytes are copied eight at a time while a word holds none of those (`ByteWord`), the last few as
    /// the word that ends `p`, then one at a time from the first word that holds one.
    @inline(__always) mutating func append(_ p: UnsafeRawBufferPointer, json: Bool) {
        guard json else { return append(p) }
        let n = p.count
        guard let src = p.baseAddress, n > 0 else { return }
        let dst = reserve(n)
        var i = 0
        while i &+ 8 <= n {
            let w = src.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if Self.needsEscape(w) { break }
            dst.storeBytes(of: w, toByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        if i < n && i &+ 8 > n && n >= 8 {
            // The last bytes as the word that ends the string, overlapping the one before (one test instead of
            // up to seven bytes one at a time).
            let w = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            if !Self.needsEscape(w) {
                dst.storeBytes(of: w, toByteOffset: n - 8, as: UInt64.self)
                i = n
            }
        }
        while i < n {
            let c = src.load(fromByteOffset: i, as: UInt8.self)
            if c < 0x20 || c == 0x22 || c == 0x5C { break }
            dst.storeBytes(of: c, toByteOffset: i, as: UInt8.self)
            i &+= 1
        }
        count &+= i
        if i < n { appendEscaped(UnsafeRawBufferPointer(rebasing: p[i...])) }
    }

    /// Whether any of the eight bytes in `w` needs a JSON escape: a control character, `"` or `\`.
    @inline(__always) private static func needsEscape(_ w: UInt64) -> Bool {
        ByteWord.below(0x20, in: w) | ByteWord.equal(0x22, in: w) | ByteWord.equal(0x5C, in: w) != 0
    }

    /// The rest of a JSON string's content, from its first byte that needs an escape.
    private mutating func appendEscaped(_ p: UnsafeRawBufferPointer) {
        let hex: StaticString = "0123456789abcdef"
        for b in p {
            switch b {
            case UInt8(ascii: "\""): append(UInt8(ascii: "\\")); append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): append(UInt8(ascii: "\\")); append(UInt8(ascii: "\\"))
            case 0x0A: append(UInt8(ascii: "\\")); append(UInt8(ascii: "n"))
            case 0x0D: append(UInt8(ascii: "\\")); append(UInt8(ascii: "r"))
            case 0x09: append(UInt8(ascii: "\\")); append(UInt8(ascii: "t"))
            case 0..<0x20:
                for c in [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")] { append(c) }
                append(hex.utf8Start[Int(b >> 4)])
                append(hex.utf8Start[Int(b & 0xf)])
            default: append(b)
            }
        }
    }
}
