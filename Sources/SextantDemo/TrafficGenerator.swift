import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Sends `GET /productpage` through the ingress gateway at a constant rate (one request every
/// `1/rate` s, not waiting for answers, so a slow hop does not slow the load), every fourth one as the
/// logged-in user `jason` (Istio's routing examples send him to reviews v2), and every tenth one asks the
/// product API for a product that does not exist (a 404, as clients do). Prints a summary every
/// `reportEvery` and stops after `duration` (nil: until shutdown).
public final class TrafficGenerator: Service, Sendable {
    /// `http://host:port` of the ingress gateway.
    let gateway: String
    let rate: Double
    let duration: Duration?
    let reportEvery: Duration
    let client: HTTPClient
    let logger: Logger
    let print: @Sendable (String) -> Void
    private let counts = NIOLockedValueBox<[Int: Int]>([:])

    public init(
        gateway: String, rate: Double, duration: Duration?, reportEvery: Duration = .seconds(10), client: HTTPClient, logger: Logger,
        print: @escaping @Sendable (String) -> Void
    ) {
        self.gateway = gateway
        self.rate = rate
        self.duration = duration
        self.reportEvery = reportEvery
        self.client = client
        self.logger = logger
        self.print = print
    }

    /// Answers by status code so far (0: no answer).
    public var statusCounts: [Int: Int] { counts.withLockedValue { $0 } }

    public func run() async throws {
        guard rate > 0 else {
            try? await gracefulShutdown()
            return
        }
        let interval = Duration.seconds(1 / rate)
        let clock = ContinuousClock()
        let start = clock.now
        var next = start
        var lastReport = start
        var sent = 0
        await withDiscardingTaskGroup { tasks in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if let duration, clock.now - start >= duration { break }
                next = next + interval
                let user: String? = sent % 4 == 3 ? "jason" : nil
                let path = sent % 10 == 9 ? "/api/v1/products/7" : "/productpage"
                sent += 1
                tasks.addTask { [self] in await one(path: path, user: user) }
                if clock.now - lastReport >= reportEvery {
                    lastReport = clock.now
                    print("traffic: \(summary(sent: sent))")
                }
                try? await clock.sleep(until: next)
            }
        }
        print("traffic done: \(summary(sent: sent))")
    }

    private func summary(sent: Int) -> String {
        let c = statusCounts
        let byStatus = c.keys.sorted().map { "\($0 == 0 ? "no answer" : String($0)): \(c[$0]!)" }.joined(separator: ", ")
        return "\(sent) requests sent; \(byStatus.isEmpty ? "no answers yet" : byStatus)"
    }

    private func one(path: String, user: String?) async {
        var request = HTTPClientRequest(url: gateway + path)
        request.headers.add(name: "host", value: "bookinfo.example.com")
        request.headers.add(name: "user-agent", value: "sextant-demo-traffic")
        if let user { request.headers.add(name: "end-user", value: user) }
        var status = 0
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            status = Int(response.status.code)
        } catch {
            logger.debug("demo request failed", metadata: ["error": "\(error)"])
        }
        counts.withLockedValue { $0[status, default: 0] += 1 }
    }
}
