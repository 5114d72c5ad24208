import SextantModel

/// A receiver's `limits:` block, read by the engine for every receiver so that no receiver can
/// forget it: what one item may carry, and how many connections each of its listeners holds.
///
/// ```yaml
/// receivers:
///   otlp:
///     limits: {max_attributes: 128, max_attribute_value_length: 64KiB, max_events: 128, max_links: 128, max_connections: 1000}
/// ```
public struct ReceiverLimits: Sendable, Equatable {
    /// Applied to every batch the receiver emits, whatever its wire format.
    public var telemetry: TelemetryLimits
    /// Open connections per TCP listener (HTTP, gRPC, syslog TCP, forward); further connections are
    /// closed as soon as they are accepted and counted in `sextant_receiver_refused_connections_total`.
    public var maxConnections: Int

    public init(telemetry: TelemetryLimits = TelemetryLimits(), maxConnections: Int = 1000) {
        self.telemetry = telemetry
        self.maxConnections = maxConnections
    }

    /// Reads `limits:` from a receiver's mapping (absent: the defaults). Limits of 0 mean unlimited.
    static func parse(_ receiver: inout ConfigReader) -> ReceiverLimits {
        guard receiver.has("limits") else { return ReceiverLimits() }
        var r = receiver.section("limits")
        let d = ReceiverLimits()
        let t = TelemetryLimits(
            maxAttributes: r.int("max_attributes", default: d.telemetry.maxAttributes, min: 0),
            maxAttributeValueLength: r.byteSize("max_attribute_value_length", default: d.telemetry.maxAttributeValueLength, min: 0),
            maxEvents: r.int("max_events", default: d.telemetry.maxEvents, min: 0),
            maxLinks: r.int("max_links", default: d.telemetry.maxLinks, min: 0))
        let maxConnections = r.int("max_connections", default: d.maxConnections, min: 1)
        r.finish()
        return ReceiverLimits(telemetry: t, maxConnections: maxConnections)
    }
}

/// Enforces a receiver's `TelemetryLimits` on each batch before it enters the pipelines, counting
/// what was dropped or cut in `sextant_receiver_{dropped_attributes, truncated_attributes,
/// dropped_span_events, dropped_span_links}_total{receiver}`.
public struct LimitingConsumer: Consumer {
    public let limits: TelemetryLimits
    public let next: any Consumer
    private let droppedAttributes: SelfTelemetry.Counter
    private let truncatedAttributes: SelfTelemetry.Counter
    private let droppedEvents: SelfTelemetry.Counter
    private let droppedLinks: SelfTelemetry.Counter

    public init(_ limits: TelemetryLimits, next: any Consumer, settings: ComponentSettings) {
        self.limits = limits
        self.next = next
        let labels = [("receiver", settings.id.description)]
        let t = settings.telemetry
        droppedAttributes = t.counter(
            "sextant_receiver_dropped_attributes_total", help: "Attributes dropped because an item had more than limits.max_attributes.",
            labels: labels)
        truncatedAttributes = t.counter(
            "sextant_receiver_truncated_attributes_total",
            help: "Attribute values cut to limits.max_attribute_value_length bytes.", labels: labels)
        droppedEvents = t.counter(
            "sextant_receiver_dropped_span_events_total", help: "Span events dropped because a span had more than limits.max_events.",
            labels: labels)
        droppedLinks = t.counter(
            "sextant_receiver_dropped_span_links_total", help: "Span links dropped because a span had more than limits.max_links.",
            labels: labels)
    }

    /// The limits read a kept batch's measured extent, not its model.
    public var readsTraceModel: Bool { next.readsTraceModel }

    public func consume(_ telemetry: Telemetry) async throws {
        var batch = telemetry
        let counts = limits.apply(to: &batch)
        if !counts.isZero {
            droppedAttributes.add(counts.droppedAttributes)
            truncatedAttributes.add(counts.truncatedAttributes)
            droppedEvents.add(counts.droppedEvents)
            droppedLinks.add(counts.droppedLinks)
        }
        try await next.consume(batch)
    }
}
