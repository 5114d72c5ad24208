// Shared by the micro-benchmark scripts (bench/receiver_limits.sh, bench/zipkin_codec.sh), which copy it
// into the small package they build.

/// Runs `body` repeatedly for about `seconds`; returns microseconds per call.
func measure(_ seconds: Double, _ body: () -> Int) -> Double {
    let clock = ContinuousClock()
    var iterations = 0
    var sink = 0
    let start = clock.now
    var elapsed = Duration.zero
    while elapsed < .seconds(seconds) {
        for _ in 0..<10 { sink &+= body() }
        iterations += 10
        elapsed = clock.now - start
    }
    if sink == 42 { print("") }
    let (s, atto) = elapsed.components
    return (Double(s) * 1e6 + Double(atto) / 1e12) / Double(iterations)
}
