import GRPCNIOTransportHTTP2
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

extension HTTP2ServerTransport.Config.ChannelDebuggingCallbacks {
    /// Applies the receiver's `limits.max_connections` to a gRPC listener: the transport's accept
    /// hook closes connections past the cap before HTTP/2 starts on them.
    mutating func limitConnections(_ settings: ComponentSettings) {
        let limit = ConnectionLimit(settings)
        let previous = onAcceptTCPConnection
        onAcceptTCPConnection = { channel in
            guard limit.admit(channel) else { return channel.eventLoop.makeSucceededVoidFuture() }
            return previous?(channel) ?? channel.eventLoop.makeSucceededVoidFuture()
        }
    }
}
