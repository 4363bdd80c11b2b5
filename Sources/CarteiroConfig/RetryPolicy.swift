/// How long to wait before trying again after failures in a row: `base · 2^(failures − 1)`, at
/// most `cap`, plus up to `jitter` of that at random (so that many mailboxes failing together do
/// not retry together). Every retry in Carteiro is one of the named policies below, each said
/// once here; the places that retry keep only their own count of failures.
package struct RetryPolicy: Sendable, Equatable {
    package var base: Duration
    package var cap: Duration
    /// 0 … 1: the share of the wait that may be added at random.
    package var jitter: Double

    package init(base: Duration, cap: Duration, jitter: Double = 0) {
        self.base = base
        self.cap = max(cap, base)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The wait after `failures` failures in a row (none before the first), without jitter.
    /// Doubles until it reaches `cap`: no count of failures can overflow it.
    package func nominal(after failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        var delay = base
        var doublings = failures - 1
        while doublings > 0 && delay < cap {
            delay = delay * 2
            doublings -= 1
        }
        return min(delay, cap)
    }

    /// The wait after `failures` failures in a row, jitter included.
    package func delay(after failures: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let nominal = nominal(after: failures)
        let spread = Int64(Double(nominal.components.seconds * 1000 + nominal.components.attoseconds / 1_000_000_000_000_000) * jitter)
        guard spread > 0 else { return nominal }
        return nominal + .milliseconds(Int64.random(in: 0...spread, using: &generator))
    }

    package func delay(after failures: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(after: failures, using: &generator)
    }
}

extension RetryPolicy {
    /// An inbound mailbox whose poll failed: 1, 2, 4 … poll intervals, at most 15 minutes (or
    /// one interval, if that is longer), with 10 % jitter.
    package static func poll(interval: Duration) -> RetryPolicy {
        RetryPolicy(base: interval, cap: max(.seconds(15 * 60), interval), jitter: 0.1)
    }

    /// A lost IMAP IDLE connection: 5, 10, 20 … s, at most the poll interval (which keeps
    /// running meanwhile). The count starts again only after a connection that lasted.
    package static func idleReconnect(pollInterval: Duration) -> RetryPolicy {
        RetryPolicy(base: .seconds(5), cap: max(pollInterval, .seconds(5)))
    }

    /// A message its SMTP server deferred (4xx): 1, 2, 4 … minutes, at most an hour.
    package static let deferral = RetryPolicy(base: .seconds(60), cap: .seconds(3600))

    /// An SMTP server that cannot be reached, or refuses the session: 5, 10, 20 … s, at most an hour.
    package static let smtpConnection = RetryPolicy(base: .seconds(5), cap: .seconds(3600))

    /// The webhook refused an event (that mailbox's events wait): 1, 2, 4 … s, at most 5 minutes.
    package static let webhook = RetryPolicy(base: .seconds(1), cap: .seconds(300))

    /// The OAuth token endpoint failed for now (down, slow, 5xx): 15, 30, 60 … s, at most 10
    /// minutes. A configuration error waits the cap at once.
    package static let tokenEndpoint = RetryPolicy(base: .seconds(15), cap: .seconds(600))
}
