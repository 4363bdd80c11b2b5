import CarteiroMail

/// What the lines a mailbox's IDLE connection hears lead to, as a value: events in, actions
/// out, no socket and no clock of its own (the watcher gives it the time), so a storm of news
/// is tested without a server.
///
/// - A poll is asked only when the folder grew: `* N EXISTS` with N above the count last known
///   (an `EXPUNGE` lowers it), or a new `UIDVALIDITY`. A server repeating `* 5 EXISTS` asks
///   nothing.
/// - At most one poll is pending per mailbox, and polls asked by IDLE are at least
///   `minimumSpacing` apart: news within that time after a poll is gathered into one poll at
///   the end of it. The first news after a quiet spell is polled at once (mail still becomes an
///   event within about a second).
struct IdleNews {
    /// The least time between two polls asked by IDLE. A server announcing mail 2,000 times a
    /// second gets one poll every this long, not one per burst.
    static let minimumSpacing: Duration = .seconds(2)

    enum Action: Equatable {
        case nothing
        /// Ask for a poll now.
        case pollNow
        /// Ask for a poll at this time (a timer to arm): news within the spacing.
        case pollAt(ContinuousClock.Instant)
    }

    /// The message count the folder had when last heard of; nil when unknown (any EXISTS is then news).
    private(set) var known: Int?
    private(set) var lastAsked: ContinuousClock.Instant?
    /// A poll is due at this time (a timer is armed): later news joins it.
    private(set) var pendingAt: ContinuousClock.Instant?
    /// Set by whoever feeds lines away from the watcher's queue (DONE, NOOP), for it to act on.
    var grew = false

    /// One line the server sent (in IDLE, or in the reply to DONE or NOOP): whether it is news.
    mutating func heard(_ line: String) -> Bool {
        if let count = IMAPResponseText.count(line, keyword: "EXISTS") {
            defer { known = count }
            return known.map { count > $0 } ?? true
        }
        if IMAPResponseText.count(line, keyword: "EXPUNGE") != nil {
            if let current = known { known = max(current - 1, 0) }
            return false
        }
        return line.utf8.count < 4096 && line.uppercased().contains("[UIDVALIDITY")
    }

    /// The folder's count as a poll or an EXAMINE saw it (nil: unknown).
    mutating func reset(known count: Int?) { known = count }

    /// News came (a grown folder, a reconnection after which nobody knows): the action to take.
    mutating func news(now: ContinuousClock.Instant) -> Action {
        if pendingAt != nil { return .nothing }
        if let lastAsked, now - lastAsked < Self.minimumSpacing {
            let at = lastAsked + Self.minimumSpacing
            pendingAt = at
            return .pollAt(at)
        }
        lastAsked = now
        return .pollNow
    }

    /// The pending poll's time came: it is asked now.
    mutating func fire(now: ContinuousClock.Instant) {
        pendingAt = nil
        lastAsked = now
    }
}
