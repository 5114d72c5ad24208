import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import NIOSSL

/// A gRPC server listener that terminates TLS with a caller-built `NIOSSLContext`.
///
/// grpc-swift-nio-transport's `HTTP2ServerTransport.Posix` builds its own TLS configuration and
/// fixes the minimum version at 1.2; the collector needs `min_version`/`max_version` and the same
/// context builder as every other listener (`TLSSettings`), so TLS servers run on
/// `HTTP2ServerTransport.Custom` with this factory. The pipeline is the Posix transport's: the TLS
/// handler first, then the transport's gRPC HTTP/2 pipeline.
public struct TLSListenerFactory: HTTP2ServerTransport.ListenerFactory {
    public let eventLoopGroup: any EventLoopGroup
    private let host: String
    private let port: Int
    private let context: NIOSSLContext

    /// `context` should offer ALPN `h2` (gRPC clients such as grpc-core insist on it).
    public init(host: String, port: Int, context: NIOSSLContext, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.context = context
        self.eventLoopGroup = eventLoopGroup
    }

    public func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let context = self.context
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                }
            }
    }
}

extension HTTP2ClientTransport.Posix.Config {
    /// Secures connections with `context` (use with `transportSecurity: .customSecure`): the TLS
    /// handler goes first in each new connection's pipeline, so min/max version, client certificates and
    /// verification come from the caller's context. `serverHostname` is sent in SNI and checked against
    /// the certificate; `nil` checks the certificate's IP addresses against the peer's.
    public mutating func secure(with context: NIOSSLContext, serverHostname: String?) {
        channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(context: context, serverHostname: serverHostname), position: .first)
            }
        }
    }
}

/// Refuses every RPC whose metadata `authenticate` does not accept with `UNAUTHENTICATED`, before
/// the handler runs (gRPC's status for missing or invalid credentials).
public struct AuthenticatingServerInterceptor: ServerInterceptor {
    private let authenticate: @Sendable ((String) -> String?) -> Bool

    public init(_ authenticate: @escaping @Sendable ((String) -> String?) -> Bool) { self.authenticate = authenticate }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let metadata = request.metadata
        let allowed = authenticate { name in
            for value in metadata[stringValues: name] { return value }
            return nil
        }
        guard allowed else { throw RPCError(code: .unauthenticated, message: "missing or invalid credentials") }
        return try await next(request, context)
    }
}
