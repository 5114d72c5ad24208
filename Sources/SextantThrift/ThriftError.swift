/// Input that is not well-formed Thrift (or not the struct the caller expected). The whole payload
/// is rejected; `offset` says where, counted from the start of the input.
///
/// A struct wrapping an extensible set of codes, so that new codes don't break callers' switches.
public struct ThriftError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case truncated, invalidType, negativeSize, sizeExceedsInput, depthLimitExceeded
            case badVersion, unexpectedFieldType, missingRequiredField, invalidValue, trailingBytes
            case unexpectedMessage
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The input ended inside a value.
        public static let truncated = Code(.truncated)
        /// A type code that is not one of the protocol's types.
        public static let invalidType = Code(.invalidType)
        /// A negative string, binary, list, set or map size.
        public static let negativeSize = Code(.negativeSize)
        /// A size that the remaining input could not possibly hold.
        public static let sizeExceedsInput = Code(.sizeExceedsInput)
        /// Structs and containers nested deeper than the reader allows.
        public static let depthLimitExceeded = Code(.depthLimitExceeded)
        /// A message header with a wrong protocol id or version.
        public static let badVersion = Code(.badVersion)
        /// A known field with a type other than the IDL's.
        public static let unexpectedFieldType = Code(.unexpectedFieldType)
        /// A `required` field that is absent.
        public static let missingRequiredField = Code(.missingRequiredField)
        /// A value outside its domain, e.g. a varint longer than its type allows.
        public static let invalidValue = Code(.invalidValue)
        /// Bytes left over after the expected value.
        public static let trailingBytes = Code(.trailingBytes)
        /// A message with an unexpected method name or kind.
        public static let unexpectedMessage = Code(.unexpectedMessage)

        public var description: String {
            switch value {
            case .truncated: return "truncated"
            case .invalidType: return "invalidType"
            case .negativeSize: return "negativeSize"
            case .sizeExceedsInput: return "sizeExceedsInput"
            case .depthLimitExceeded: return "depthLimitExceeded"
            case .badVersion: return "badVersion"
            case .unexpectedFieldType: return "unexpectedFieldType"
            case .missingRequiredField: return "missingRequiredField"
            case .invalidValue: return "invalidValue"
            case .trailingBytes: return "trailingBytes"
            case .unexpectedMessage: return "unexpectedMessage"
            }
        }
    }

    public var code: Code
    /// Byte offset from the start of the input.
    public var offset: Int
    /// What went wrong, e.g. `list size 1000 exceeds the 12 bytes left`.
    public var message: String

    public init(_ code: Code, _ message: String, offset: Int) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at offset \(offset)" }
}
