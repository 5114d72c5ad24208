import SextantModel

/// A gRPC status: a code and a message (grpc/grpc `doc/statuscodes.md`).
public struct GRPCStatus: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    public static let ok = 0
    public static let cancelled = 1
    public static let unknown = 2
    public static let invalidArgument = 3
    public static let deadlineExceeded = 4
    public static let notFound = 5
    public static let alreadyExists = 6
    public static let permissionDenied = 7
    public static let resourceExhausted = 8
    public static let failedPrecondition = 9
    public static let aborted = 10
    public static let outOfRange = 11
    public static let unimplemented = 12
    public static let `internal` = 13
    public static let unavailable = 14
    public static let dataLoss = 15
    public static let unauthenticated = 16

    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
        "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The code's canonical name, e.g. `UNAVAILABLE`.
    public var codeName: String { Self.names.indices.contains(code) ? Self.names[code] : "code \(code)" }

    public var description: String { message.isEmpty ? codeName : "\(codeName): \(message)" }

    /// The status a client reports for a response without `grpc-status` whose HTTP status is not 200
    /// (grpc/grpc `doc/http-grpc-status-mapping.md`).
    public static func fromHTTPStatus(_ status: Int) -> GRPCStatus {
        let code: Int
        switch status {
        case 400: code = Self.internal
        case 401: code = unauthenticated
        case 403: code = permissionDenied
        case 404: code = unimplemented
        case 429, 502, 503, 504: code = unavailable
        default: code = unknown
        }
        return GRPCStatus(code: code, message: "HTTP status \(status) without a gRPC status")
    }

    /// `grpc-message` as sent: percent-encoded UTF-8, with bytes outside printable ASCII and `%` escaped
    /// ("gRPC over HTTP2", Status-Message).
    public static func percentEncoded(_ message: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count)
        for b in message.utf8 {
            if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The inverse of `percentEncoded`; a `%` not followed by two hex digits is kept as it is, as the spec
    /// asks of receivers.
    public static func percentDecoded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let hi = Hex.value(of: bytes[i + 1]), let lo = Hex.value(of: bytes[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
