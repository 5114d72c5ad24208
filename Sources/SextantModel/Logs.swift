/// Log severity (OTLP `SeverityNumber`, 1–24; 0 unspecified).
public struct SeverityNumber: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let unspecified = SeverityNumber(rawValue: 0)
    public static let trace = SeverityNumber(rawValue: 1)
    public static let debug = SeverityNumber(rawValue: 5)
    public static let info = SeverityNumber(rawValue: 9)
    public static let warn = SeverityNumber(rawValue: 13)
    public static let error = SeverityNumber(rawValue: 17)
    public static let fatal = SeverityNumber(rawValue: 21)

    /// The short name of the severity range (`TRACE`…`FATAL`, with a digit for the sub-level).
    public var shortName: String {
        let names = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        guard rawValue >= 1 && rawValue <= 24 else { return "UNSPECIFIED" }
        let range = Int(rawValue - 1) / 4
        let sub = Int(rawValue - 1) % 4
        return sub == 0 ? names[range] : names[range] + String(sub + 1)
    }
}

/// One log record (OTLP `LogRecord`, logs.proto).
public struct LogRecord: Sendable, Equatable {
    public var timeUnixNano: UInt64
    public var observedTimeUnixNano: UInt64
    public var severityNumber: SeverityNumber
    public var severityText: String
    /// `nil` when the record has no body.
    public var body: AnyValue?
    public var attributes: [KeyValue]
    public var droppedAttributesCount: UInt32
    public var flags: UInt32
    public var traceID: TraceID?
    public var spanID: SpanID?
    public var eventName: String

    public init(
        timeUnixNano: UInt64 = 0, observedTimeUnixNano: UInt64 = 0, severityNumber: SeverityNumber = .unspecified,
        severityText: String = "", body: AnyValue? = nil, attributes: [KeyValue] = [], droppedAttributesCount: UInt32 = 0,
        flags: UInt32 = 0, traceID: TraceID? = nil, spanID: SpanID? = nil, eventName: String = ""
    ) {
        self.timeUnixNano = timeUnixNano
        self.observedTimeUnixNano = observedTimeUnixNano
        self.severityNumber = severityNumber
        self.severityText = severityText
        self.body = body
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.flags = flags
        self.traceID = traceID
        self.spanID = spanID
        self.eventName = eventName
    }
}

/// Log records from one instrumentation scope (OTLP `ScopeLogs`).
public struct ScopeLogs: Sendable, Equatable {
    public var scope: InstrumentationScope
    public var logRecords: [LogRecord]
    public var schemaURL: String

    public init(scope: InstrumentationScope = InstrumentationScope(), logRecords: [LogRecord] = [], schemaURL: String = "") {
        self.scope = scope
        self.logRecords = logRecords
        self.schemaURL = schemaURL
    }
}

/// Log records from one resource (OTLP `ResourceLogs`).
public struct ResourceLogs: Sendable, Equatable {
    public var resource: Resource
    public var scopeLogs: [ScopeLogs]
    public var schemaURL: String

    public init(resource: Resource = Resource(), scopeLogs: [ScopeLogs] = [], schemaURL: String = "") {
        self.resource = resource
        self.scopeLogs = scopeLogs
        self.schemaURL = schemaURL
    }
}

/// A batch of log records (OTLP `LogsData` / `ExportLogsServiceRequest`).
public struct LogsData: Sendable, Equatable {
    public var resourceLogs: [ResourceLogs]

    public init(resourceLogs: [ResourceLogs] = []) { self.resourceLogs = resourceLogs }

    public var logRecordCount: Int {
        var n = 0
        for rl in resourceLogs { for sl in rl.scopeLogs { n += sl.logRecords.count } }
        return n
    }
}
