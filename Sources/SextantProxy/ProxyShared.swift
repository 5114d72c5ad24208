import NIOConcurrencyHelpers
import NIOCore
import SextantIstio
import SextantModel
import Synchronization

/// Limits of the data plane (Envoy's defaults where Envoy has one).
public struct ProxyLimits: Sendable {
    /// Request headers larger than this get 431 (Envoy's `max_request_headers_kb` default: 60 KiB).
    public var maxRequestHeaderBytes = 60 * 1024
    /// Request body bytes kept for retries and mirroring (Envoy's per-request buffer limit for
    /// retries); larger bodies stream through and are not retried.
    public var retryBufferBytes = 64 * 1024
    /// Retry back-off: Envoy's base interval and its 10× cap.
    public var retryBackoffBase: Duration = .milliseconds(25)
    public var retryBackoffMax: Duration = .milliseconds(250)

    public init() {}
}

/// What a listener does with the requests it accepts.
public enum ListenerKind: Sendable, Equatable {
    /// The workload's own calls (Istio's outbound 15001): routed by `VirtualService`/`ServiceEntry`.
    case outbound
    /// Calls from other proxies to this workload (Istio's inbound 15006): forwarded to the local app.
    case inbound(appHost: String, appPort: Int)
}

/// The configuration currently in force; replaced whole on reload.
public final class ProxyState: Sendable {
    private let current: Mutex<ProxySnapshot>

    init(_ snapshot: ProxySnapshot) { current = Mutex(snapshot) }

    var snapshot: ProxySnapshot { current.withLock { $0 } }

    func replace(_ s: ProxySnapshot) { current.withLock { $0 = s } }

    /// The configuration version (1 at start, +1 per successful reload).
    public var version: Int { snapshot.version }
    public var table: RouteTable { snapshot.table }
}

/// Upstream pools, one per event loop. Each pool is only ever used on its own loop.
final class PoolRegistry: @unchecked Sendable {
    private let lock = NIOLock()
    private var pools: [ObjectIdentifier: UpstreamPool] = [:]
    let meshTLS: MeshCredentialsStore?

    init(meshTLS: MeshCredentialsStore?) { self.meshTLS = meshTLS }

    func pool(for loop: any EventLoop) -> UpstreamPool {
        lock.withLock {
            if let p = pools[ObjectIdentifier(loop)] { return p }
            let p = UpstreamPool(eventLoop: loop, meshTLS: meshTLS)
            pools[ObjectIdentifier(loop)] = p
            return p
        }
    }
}

/// Everything a connection handler needs, shared by all connections of the proxy.
final class ProxyShared: Sendable {
    let state: ProxyState
    let observer: any ProxyObserver
    let limits: ProxyLimits
    let pools: PoolRegistry
    /// This proxy's identity as sent to peers, pre-rendered for responses.
    let me: PeerMetadata
    let meHeader: String
    let tracer: ProxyTracer?
    /// Mesh mTLS credentials; nil when the proxy has none (plain text only).
    let meshTLS: MeshCredentialsStore?
    /// Requests note where their `ProxyRecord.KnownRequestField`s are (`knownRequestFields`): only worth it
    /// when an access log or the tracer reads them.
    let notesRequestFields: Bool

    init(
        state: ProxyState, observer: any ProxyObserver, limits: ProxyLimits, me: PeerMetadata, tracer: ProxyTracer?,
        meshTLS: MeshCredentialsStore? = nil, notesRequestFields: Bool = true
    ) {
        self.notesRequestFields = notesRequestFields
        self.meshTLS = meshTLS
        self.pools = PoolRegistry(meshTLS: meshTLS)
        self.tracer = tracer
        self.state = state
        self.observer = observer
        self.limits = limits
        self.me = me
        self.meHeader = me.headerValue
    }
}

/// A fast per-connection pseudo-random generator (SplitMix64, seeded from the system generator once):
/// weights, fault percentages, load-balancer choices and request IDs need uniformity, not secrecy, and
/// `SystemRandomNumberGenerator` costs a `getrandom` system call per number.
struct FastRandom: RandomNumberGenerator {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Random identifiers for `x-request-id` (UUID version 4 text, as Envoy generates).
enum RequestID {
    static func make(using g: inout some RandomNumberGenerator) -> String {
        // 128 random bits with the version (4) and variant (10) bits set, RFC 9562 §5.4.
        let a = ((g.next() as UInt64) & ~0x0000_0000_0000_f000) | 0x0000_0000_0000_4000
        let b = ((g.next() as UInt64) & ~0xc000_0000_0000_0000) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { out in
            // `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`: the 32 digits of a and b written in place, then moved
            // apart for the dashes (one pass of table-free hex, no per-digit calls).
            Hex.write(a, into: out, at: 0)
            Hex.write(b, into: out, at: 20)
            // a's 16 digits: 8 - 4 - 4; b's: 4 - 12.
            for i in stride(from: 15, through: 12, by: -1) { out[i + 2] = out[i] }
            out[13] = UInt8(ascii: "-")
            for i in stride(from: 11, through: 8, by: -1) { out[i + 1] = out[i] }
            out[8] = UInt8(ascii: "-")
            for i in 20..<24 { out[i - 1] = out[i] }
            out[18] = UInt8(ascii: "-")
            out[23] = UInt8(ascii: "-")
            return 36
        }
    }
}

extension Duration {
    /// The same span as NIO's `TimeAmount` (nanosecond precision).
    var timeAmount: TimeAmount {
        let (s, a) = components
        return .nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
    }
}

