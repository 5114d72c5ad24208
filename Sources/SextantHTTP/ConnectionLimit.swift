import NIOCore
import Synchronization

/// Caps the open connections of one listener. A connection past the cap is closed as soon as it is
/// accepted (before any byte is read), and `onRefused` runs; connections already open are unaffected.
///
/// Accept-and-close rather than pausing `accept`: a paused listener lets the kernel backlog fill
/// and clients hang until their connect timeout, while a prompt close tells them to back off now.
public final class ConnectionLimit: Sendable {
    public let maxConnections: Int
    private let open = Atomic<Int>(0)
    private let onRefused: @Sendable () -> Void

    public init(maxConnections: Int, onRefused: @escaping @Sendable () -> Void = {}) {
        self.maxConnections = maxConnections
        self.onRefused = onRefused
    }

    /// Admits a newly accepted channel, or closes it and returns `false` when the listener is full.
    /// An admitted channel frees its slot when it closes.
    public func admit(_ channel: any Channel) -> Bool {
        guard open.add(1, ordering: .relaxed).newValue <= maxConnections else {
            open.subtract(1, ordering: .relaxed)
            onRefused()
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { _ in self.open.subtract(1, ordering: .relaxed) }
        return true
    }

    /// Connections open now.
    public var current: Int { open.load(ordering: .relaxed) }
}
