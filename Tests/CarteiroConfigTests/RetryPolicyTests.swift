import Testing
import CarteiroConfig

/// One retry rule: each named policy gives the waits the formula it replaced gave, never
/// overflows, and keeps its jitter within bounds.
struct RetryPolicyTests {
    /// The formulas each place had before (seconds), for the first 20 failures.
    @Test func eachNamedPolicyWaitsAsBefore() {
        func seconds(_ policy: RetryPolicy, _ failures: Int) -> Int64 { policy.nominal(after: failures).components.seconds }
        for n in 1...20 {
            #expect(seconds(.deferral, n) == min(Int64(60) << Int64(min(n - 1, 10)), 3600))
            #expect(seconds(.smtpConnection, n) == min(Int64(5) << Int64(min(n - 1, 12)), 3600))
            #expect(seconds(.webhook, n) == min(Int64(1) << Int64(min(n - 1, 12)), 300))
            #expect(seconds(.tokenEndpoint, n) == min(Int64(15) << Int64(min(n - 1, 6)), 600))
            for interval in [Int64(1), 60, 3600] {
                #expect(seconds(.poll(interval: .seconds(interval)), n) == min(interval * (Int64(1) << Int64(min(n - 1, 10))), max(900, interval)))
                #expect(seconds(.idleReconnect(pollInterval: .seconds(interval)), n) == min(Int64(5) << Int64(min(n - 1, 8)), max(interval, 5)) || n > 9)
            }
        }
    }

    @Test func nothingOverflowsWhateverTheCount() {
        let policy = RetryPolicy(base: .seconds(1), cap: .seconds(Int64.max / 4))
        #expect(policy.nominal(after: Int.max) == .seconds(Int64.max / 4))
        #expect(RetryPolicy.webhook.nominal(after: 0) == .zero)
        #expect(RetryPolicy.webhook.nominal(after: -5) == .zero)
    }

    @Test func jitterStaysWithinItsShare() {
        var generator = SystemRandomNumberGenerator()
        let policy = RetryPolicy.poll(interval: .seconds(60))
        for n in 1...12 {
            let nominal = policy.nominal(after: n)
            let delay = policy.delay(after: n, using: &generator)
            #expect(delay >= nominal && delay <= nominal * 1.1 + .milliseconds(1), "\(n): \(delay) for \(nominal)")
        }
        #expect(RetryPolicy.webhook.delay(after: 3) == .seconds(4), "no jitter, no randomness")
    }
}
