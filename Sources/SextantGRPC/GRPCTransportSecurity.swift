import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import NIOSSL

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
