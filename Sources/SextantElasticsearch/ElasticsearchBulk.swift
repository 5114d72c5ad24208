import SextantModel
import SextantOTLP

/// The `_bulk` API's request body (Elasticsearch reference, "Bulk API"): NDJSON, one action line
/// followed by one source line per document, the body ending with a newline.
public enum ElasticsearchBulk {
    /// The bulk action. Data streams accept only `create`.
    public enum Action: String, Sendable {
        case create
        case index
    }

    /// One document ready to send: its target index and its JSON source (no trailing newline).
    public struct Item: Sendable, Equatable {
        public var index: String
        public var source: [UInt8]
        public init(index: String, source: [UInt8]) {
            self.index = index
            self.source = source
        }

        /// Bytes the item takes in a bulk body.
        public var encodedSize: Int { source.count + index.utf8.count + 24 }
    }

    /// `{"create":{"_index":"…"}}` + newline.
    public static func actionLine(_ action: Action, index: String) -> [UInt8] {
        var line = JSONWriter.document(estimatedSize: index.utf8.count + 32) { w in
            w.beginObject()
            switch action {
            case .create: w.key("create")
            case .index: w.key("index")
            }
            w.beginObject()
            w.key("_index")
            w.string(index)
            w.endObject()
            w.endObject()
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// The NDJSON body for `items`, in order.
    public static func body(_ items: some Collection<Item>, action: Action) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(items.reduce(0) { $0 + $1.encodedSize })
        for item in items {
            out += actionLine(action, index: item.index)
            out += item.source
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    // MARK: Response

    /// One entry of a bulk response's `items`: its HTTP-like `status` and, for failures, the
    /// error's `type` and `reason`.
    public struct ItemResult: Sendable, Equatable {
        public var status: Int
        public var errorType: String?
        public var errorReason: String?
        public init(status: Int, errorType: String? = nil, errorReason: String? = nil) {
            self.status = status
            self.errorType = errorType
            self.errorReason = errorReason
        }

        public var succeeded: Bool { (200..<300).contains(status) }
    }

    /// A malformed bulk response.
    public struct ResponseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Parses `{"took":…,"errors":…,"items":[{"create":{"status":201,…}},…]}`. Every item must
    /// have a status; unknown members are skipped.
    public static func parseResponse(_ body: [UInt8]) throws(ResponseError) -> [ItemResult] {
        do {
            return try body.withUnsafeBytes { raw throws(OTLPDecodingError) -> [ItemResult] in
                var r = JSONReader(raw)
                var items: [ItemResult]?
                var top = try r.beginObject()
                while let key = try r.nextKey(&top) {
                    guard key.is("items") else {
                        try r.skipValue()
                        continue
                    }
                    var list: [ItemResult] = []
                    var array = try r.beginArray()
                    while try r.nextElement(&array) {
                        var wrapper = try r.beginObject()
                        var result: ItemResult?
                        while try r.nextKey(&wrapper) != nil {
                            guard result == nil else { throw r.error("a bulk item holds more than one action") }
                            result = try item(&r)
                        }
                        guard let result else { throw r.error("empty bulk item") }
                        list.append(result)
                    }
                    items = list
                }
                try r.finish()
                guard let items else { throw r.error("no 'items' in the bulk response") }
                return items
            }
        } catch {
            throw ResponseError(description: String(describing: error))
        }
    }

    private static func item(_ r: inout JSONReader) throws(OTLPDecodingError) -> ItemResult {
        var object = try r.beginObject()
        var status: Int?
        var type: String?
        var reason: String?
        while let key = try r.nextKey(&object) {
            if key.is("status") {
                let v = try r.readUInt64()
                guard v < 1000 else { throw r.error("bulk item status \(v) out of range") }
                status = Int(v)
            } else if key.is("error") {
                if r.peek() == UInt8(ascii: "{") {
                    var e = try r.beginObject()
                    while let k = try r.nextKey(&e) {
                        if k.is("type"), r.peek() == UInt8(ascii: "\"") {
                            type = try r.readString()
                        } else if k.is("reason"), r.peek() == UInt8(ascii: "\"") {
                            reason = try r.readString()
                        } else {
                            try r.skipValue()
                        }
                    }
                } else if r.peek() == UInt8(ascii: "\"") {
                    reason = try r.readString()
                } else {
                    try r.skipValue()
                }
            } else {
                try r.skipValue()
            }
        }
        guard let status else { throw r.error("bulk item without a status") }
        return ItemResult(status: status, errorType: type, errorReason: reason)
    }
}
