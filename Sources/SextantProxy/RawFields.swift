import NIOCore
import NIOHTTP1

/// A received response head's field lines (RFC 9112 §5) as byte ranges into the bytes they were read from.
///
/// The proxy's usual response passes through with a few fields dropped (hop-by-hop ones, `server`, the peer
/// header) and a few added: read in place, its names and values are never made into `String`s, so no string
/// is allocated, reference-counted and destroyed per field, and the head sent on is the received fields copied
/// from these ranges. Anything that edits headers in other ways asks for `list` (a `[(String, String)]`).
/// Holding one keeps the read buffer it points into alive. (Also built into the fuzz package's `SextantHTTP1`
/// target beside `HTTP1Parser.swift`: it uses nothing else of the proxy's.)
struct RawFields: Sendable {
    /// One field line: where its name and its value (without the surrounding whitespace) are in `bytes`.
    struct Span: Sendable {
        var nameStart: UInt32
        var nameCount: UInt32
        var valueStart: UInt32
        var valueCount: UInt32
        /// Left out of the head sent on (and of `list`).
        var dropped = false
    }

    /// The head's bytes, from its start line to its final CRLF; spans count from its reader index.
    var bytes: ByteBuffer
    var spans: [Span]
    /// The message's `Content-Length`, as the parser read it.
    var contentLength: Int?

    init(bytes: ByteBuffer = ByteBuffer(), spans: [Span] = [], contentLength: Int? = nil) {
        self.bytes = bytes
        self.spans = spans
        self.contentLength = contentLength
    }

    /// The fields not dropped, as strings (for the paths that edit headers, and for `HTTPHeaders`).
    var list: [(String, String)] {
        bytes.withUnsafeReadableBytes { p in
            var list: [(String, String)] = []
            list.reserveCapacity(spans.count + 4)
            for s in spans where !s.dropped {
                list.append((Common.name(Self.name(s, p)), Common.value(Self.value(s, p))))
            }
            return list
        }
    }

    /// The first value, not dropped, of the field named `name` (given in lower case; matched in any case).
    func first(lowercased name: String) -> String? {
        var name = name
        return name.withUTF8 { n in
            bytes.withUnsafeReadableBytes { p in
                for s in spans where !s.dropped && Token.equalsFoldingCase(Self.name(s, p), UnsafeRawBufferPointer(n)) {
                    return String(decoding: Self.value(s, p), as: UTF8.self)
                }
                return nil
            }
        }
    }

    @inline(__always) static func name(_ s: Span, _ p: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: p[Int(s.nameStart)..<Int(s.nameStart + s.nameCount)])
    }

    @inline(__always) static func value(_ s: Span, _ p: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: p[Int(s.valueStart)..<Int(s.valueStart + s.valueCount)])
    }
}
