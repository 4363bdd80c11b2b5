import CarteiroConfig

/// The lifecycle of one IDLE connection, without I/O: `IdleWatcher` feeds it what happened
/// (connected, the refresh is due, lent to a poll, lost, stopped) and carries out the action it
/// returns (connect on a worker, wait on the socket, renew, close, reconnect after a backoff).
/// The connection itself stays with the watcher; this says who may touch it: the loop while it
/// idles, the one blocking step or the poll it is lent to otherwise.
struct IdleMachine: Equatable {
    enum State: Equatable {
        case ready
        /// Connecting, logging in and beginning IDLE, on a worker.
        case connecting
        /// In IDLE: the loop waits on the socket.
        case idling
        /// DONE, NOOP and IDLE again, on a worker.
        case refreshing
        /// Out of IDLE, lent to a poll of the mailbox.
        case lent
        /// Lost; connecting again after a backoff.
        case backingOff
        /// The server offers no IDLE: the mailbox is polled only.
        case pollingOnly
        case stopped
    }

    enum Action: Equatable {
        case none
        /// Connect, log in and begin IDLE on a worker.
        case connect
        /// Wait on the connection: its socket's read source and the refresh timer.
        case wait
        /// Renew IDLE on a worker.
        case renew
        /// Close the connection the loop holds.
        case close
        /// A connection that came back after the stop: close it.
        case discard
        /// Connect again after this long.
        case reconnect(after: Duration)
    }

    private(set) var state: State = .ready
    /// Failures in a row; they start again from one only after a connection that lasted.
    private(set) var failures = 0
    private var connectedAt: ContinuousClock.Instant?
    let policy: RetryPolicy
    /// A connection must last this long for the backoff to start again from its base: a server
    /// that accepts and drops every connection a second later gets 5, 10, 20 … s, not a login
    /// every 5 s for ever.
    static let lastingConnection: Duration = .seconds(60)

    init(pollInterval: Duration) {
        policy = RetryPolicy.idleReconnect(pollInterval: pollInterval)
    }

    /// Whether the watcher holds a connection (connecting, idling, refreshing or lent): a
    /// poll's own connection is then not kept, so a mailbox in IDLE has one connection, not two.
    var holdsConnection: Bool {
        switch state {
        case .connecting, .idling, .refreshing, .lent: true
        case .ready, .backingOff, .pollingOnly, .stopped: false
        }
    }

    mutating func start() -> Action {
        guard state == .ready else { return .none }
        state = .connecting
        return .connect
    }

    /// The blocking step connected and began IDLE.
    mutating func connected(at now: ContinuousClock.Instant) -> Action {
        guard state == .connecting else { return .discard }
        state = .idling
        connectedAt = now
        return .wait
    }

    /// The server offers no IDLE.
    mutating func offersNoIdle() {
        if state == .connecting { state = .pollingOnly }
    }

    /// `idle_refresh` went by.
    mutating func refreshDue() -> Action {
        guard state == .idling else { return .none }
        state = .refreshing
        return .renew
    }

    /// IDLE began again (after a refresh, or on the connection a poll gave back).
    mutating func resumed() -> Action {
        guard state == .refreshing || state == .lent else { return .discard }
        state = .idling
        return .wait
    }

    /// A poll asks for the connection: only one that idles just now is lent.
    mutating func lend() -> Bool {
        guard state == .idling else { return false }
        state = .lent
        return true
    }

    /// The connection failed (or could not be made): a backoff, then a new one.
    mutating func lost(at now: ContinuousClock.Instant) -> Action {
        guard state != .stopped else { return .none }
        if let connectedAt, now - connectedAt >= Self.lastingConnection { failures = 0 }
        connectedAt = nil
        failures += 1
        state = .backingOff
        return .reconnect(after: policy.nominal(after: failures))
    }

    /// The backoff is over.
    mutating func reconnectDue() -> Action {
        guard state == .backingOff else { return .none }
        state = .connecting
        return .connect
    }

    mutating func stop() -> Action {
        let before = state
        state = .stopped
        return before == .idling ? .close : .none
    }
}
