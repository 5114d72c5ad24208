/// Envoy's outlier detection for one cluster, as Istio configures it (`outlierDetection`):
/// consecutive 5xx (or gateway errors: 502/503/504 and connect failures) eject an endpoint for
/// `baseEjectionTime × times ejected`, never more than `maxEjectionPercent` of the endpoints at once;
/// ejected endpoints return when their time is up (checked on every call, not only per `interval`).
///
/// A value type with explicit time, so it is driven deterministically in tests; the proxy keeps one per
/// cluster behind a lock.
public struct OutlierDetector: Sendable {
    public struct State: Sendable, Equatable {
        var consecutive5xx = 0
        var consecutiveGateway = 0
        public internal(set) var ejectedUntil: ContinuousClock.Instant?
        public internal(set) var timesEjected = 0
    }

    public let settings: OutlierDetectionSettings
    public private(set) var states: [State]
    /// Ejections so far (for self-telemetry and tests).
    public private(set) var ejections = 0

    public init(settings: OutlierDetectionSettings, endpointCount: Int) {
        self.settings = settings
        self.states = Array(repeating: State(), count: endpointCount)
    }

    /// Whether endpoint `i` may receive requests at `now` (returns it to service when its time is up).
    public mutating func isAvailable(_ i: Int, now: ContinuousClock.Instant) -> Bool {
        guard let until = states[i].ejectedUntil else { return true }
        if now >= until {
            states[i].ejectedUntil = nil
            return true
        }
        return false
    }

    /// The number of endpoints currently ejected.
    public func ejectedCount(now: ContinuousClock.Instant) -> Int {
        states.filter { s in s.ejectedUntil.map { now < $0 } ?? false }.count
    }

    /// Records the result of a request to endpoint `i`: an HTTP status, or `nil` for a connect failure
    /// or reset (a gateway error in Envoy's terms). Returns true when the endpoint was ejected by it.
    @discardableResult
    public mutating func record(_ i: Int, status: Int?, now: ContinuousClock.Instant) -> Bool {
        let isGateway = status == nil || status == 502 || status == 503 || status == 504
        let is5xx = status.map { $0 >= 500 } ?? true
        if !is5xx {
            states[i].consecutive5xx = 0
            states[i].consecutiveGateway = 0
            return false
        }
        states[i].consecutive5xx += 1
        states[i].consecutiveGateway = isGateway ? states[i].consecutiveGateway + 1 : 0
        var trip = false
        if let n = settings.consecutive5xxErrors, states[i].consecutive5xx >= n { trip = true }
        if let n = settings.consecutiveGatewayErrors, states[i].consecutiveGateway >= n { trip = true }
        guard trip, states[i].ejectedUntil == nil else { return false }
        // Envoy always allows ejecting at least one host, even when the percentage rounds down to zero.
        let maxEjected = max(1, states.count * settings.maxEjectionPercent / 100)
        guard settings.maxEjectionPercent > 0, ejectedCount(now: now) < maxEjected else { return false }
        states[i].timesEjected += 1
        states[i].ejectedUntil = now.advanced(by: settings.baseEjectionTime * states[i].timesEjected)
        states[i].consecutive5xx = 0
        states[i].consecutiveGateway = 0
        ejections += 1
        return true
    }
}
