import NIOCore
import SextantHTTP
import SextantPipeline

extension ConnectionLimit {
    /// One listener's cap from the receiver's `limits.max_connections`, counting refusals in
    /// `sextant_receiver_refused_connections_total{receiver}`.
    convenience init(_ settings: ComponentSettings) {
        let refused = settings.telemetry.counter(
            "sextant_receiver_refused_connections_total", help: "Connections closed at once because max_connections was reached.",
            labels: [("receiver", settings.id.description)])
        self.init(maxConnections: settings.limits.maxConnections) { refused.increment() }
    }
}

extension HTTPServerConfiguration {
    /// Applies the receiver's `limits.max_connections` to this listener.
    mutating func limitConnections(_ settings: ComponentSettings) {
        connectionLimit = ConnectionLimit(settings)
    }
}
