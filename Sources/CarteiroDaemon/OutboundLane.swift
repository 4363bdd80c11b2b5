import CarteiroConfig
import CarteiroCurl
import CarteiroOAuth
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// One outbound mailbox's lane: drains its part of the queue through that mailbox's sender
/// (`MailSender`: SMTP or Graph, see `Senders`) on a queue of its own, so a slow or dead server stalls only this
/// lane. One connection serves every due message; each recipient's outcome is kept: 2xx
/// delivered, 5xx given up, 4xx retried alone with exponential backoff until the queue lifetime
/// ends. The lane owns the queue, the limits and the retries; the sender, the transaction.
final class OutboundLane: Sendable {
    /// Opens the mailbox's sender: connects, negotiates TLS and logs in.
    typealias OpenSender = @Sendable (OutboundMailbox, MailSession.Credentials?, _ ehloName: String) throws(MailConnectionError) -> any MailSender

    /// Due retries are noticed within a tick; new messages wake the lane at once (`kick`).
    /// The soonest the lane looks again after a look; and the latest, when nothing waits.
    static let tick: Int64 = 1
    static let idleLook: Int64 = 30

    let mailbox: OutboundMailbox
    let login: MailboxLogin?
    let queue: any OutboundQueueStore
    let directory: StateDirectory
    let lifetime: Duration
    let ehloName: String
    let log: DaemonLog
    let openSender: OpenSender
    let dispatch: DispatchQueue
    /// Raised by `stop` at once, so the pass in flight ends after its current message.
    let stopping = StopFlag()
    /// What the lane knows, owned by `dispatch`.
    let state: QueueOwned<State>
    /// What others ask of the lane while it sends (status, `run --once`).
    private let tally = Mutex(Tally())

    struct State {
        /// The secret of the session in use (the password, or an OAuth access token): taken out
        /// of everything the server says back.
        var password: Secret?
        var timer: DispatchSourceTimer?
        /// The lane's entries as last read, by id, with the modification time they were read at.
        var known: [String: (stamp: Int64, item: QueuedMessage)] = [:]
        /// The lane's folder is listed again only when it changed (or now and then): at every
        /// tick of a quiet lane, one `stat` instead of a listing.
        var laneWatch = FolderWatch()
        /// Sent lately, for the mailbox's sending limits (read at the first limited pass, kept up to date).
        var ledger: (any SendingLedger)?
        /// Whether the ledger's entries from the future were reported (once per lane).
        var futureReported = false
        /// Held back by a sending limit until then (0: not held).
        var throttledUntil: Int64 = 0
        /// Notifications per recipient in the window (read at the first pass), and whether a
        /// pass changed them since they were kept.
        var recipientCounts: SenderCounts?
        var recipientCountsChanged = false
    }

    private struct Tally {
        var counts: (queued: Int, deferred: Int)?
        var refused = 0
        var throttled = 0
    }

    /// Queued and deferred (tried at least once) messages as of the last look at the queue,
    /// for STATUS= without reading the queue again; nil before the first look.
    var counts: (queued: Int, deferred: Int)? { tally.withLock { $0.counts } }
    /// Recipients the server refused (4xx or 5xx) since the lane started: `run --once` exits 1.
    var refused: Int { tally.withLock { $0.refused } }
    /// Messages waiting for a sending limit, for status.
    var throttled: Int { tally.withLock { $0.throttled } }

    init(mailbox: OutboundMailbox, login: MailboxLogin?, queue: any OutboundQueueStore, directory: StateDirectory,
         lifetime: Duration, ehloName: String, log: DaemonLog, openSender: @escaping OpenSender = Senders.open) {
        self.mailbox = mailbox
        self.login = login
        self.queue = queue
        self.directory = directory
        self.lifetime = lifetime
        self.ehloName = ehloName
        self.log = log
        self.openSender = openSender
        dispatch = DispatchQueue(label: "carteiro.lane.\(mailbox.name)")
        state = QueueOwned(State(password: login?.fixedPassword), on: dispatch)
    }

    func start() {
        dispatch.async { [self] in
            let timer = DispatchSource.makeTimerSource(queue: dispatch)
            timer.schedule(deadline: .now(), leeway: .milliseconds(50))
            timer.setEventHandler { [weak self] in self?.drain() }
            state.timer = timer
            timer.resume()
        }
    }

    /// `carteiro queue retry|delete` for an entry of this lane, applied by the lane itself
    /// between two passes (never under a pass that holds the entry), its copy forgotten.
    func apply(_ command: QueueCommand, id: String, answer: @escaping @Sendable (QueueCommand.Answer) -> Void) {
        dispatch.async { [self] in
            let result = command.apply(id: id, queue: queue)
            state.known[id] = nil
            state.laneWatch = FolderWatch()
            answer(result)
            if command == .retry && result.done { drain() }
        }
    }

    /// New messages were queued for this lane: drain now rather than at the next tick.
    func kick() {
        dispatch.async { [self] in drain() }
    }

    /// Stops after the message in flight (the lane's queue is serial).
    func stop(completion: @escaping @Sendable () -> Void) {
        stopping.raise()
        dispatch.async { [self] in
            state.timer?.cancel()
            state.timer = nil
            completion()
        }
    }

    /// Sends what is due, then sets the timer for the next time something will be: the
    /// earliest retry, the end of a sending limit, or `idleLook` from now at the latest (new
    /// messages do not wait for it: the outbox kicks the lane).
    func drain() {
        send()
        keepRecipientCounts()
        guard !stopping.isRaised, let timer = state.timer else { return }
        let now = Int64(Date().timeIntervalSince1970)
        var next = now + Self.idleLook
        // A retry time read from a queue file can be anything: only compared, never subtracted.
        if let retry = state.known.values.lazy.map(\.item.nextAttempt).min() { next = min(next, retry) }
        if state.throttledUntil > now { next = min(next, state.throttledUntil) }
        let wait = next > now ? max(next - now, Self.tick) : Self.tick
        timer.schedule(deadline: .now() + .seconds(Int(wait)), leeway: .milliseconds(100))
    }

    func send() {
        guard !stopping.isRaised else { return }
        let now = Int64(Date().timeIntervalSince1970)
        let due = dueMessages(now: now)
        guard !due.isEmpty else { return }
        var sender: (any MailSender)?
        defer { sender?.close() }
        let limited = mailbox.maxMessagesPerMinute != nil || mailbox.maxRecipientsPerDay != nil
        if limited && now < state.throttledUntil { return }
        // The message the sender announced behind the last one's content, with its content
        // read already: the server waits for it, so it goes next whatever else happens.
        var announced: (id: String, bytes: [UInt8])?
        for (position, var item) in due.enumerated() {
            let wasAnnounced = announced != nil && announced?.id == item.id && sender?.announced == item.id
            // A message whose commands went out is finished whatever else happens: the server waits for it.
            guard wasAnnounced || !stopping.isRaised else { return }
            if !wasAnnounced && now - item.created > lifetime.components.seconds {
                expire(&item, reason: "not delivered within the queue lifetime (\(ConfigDuration.format(lifetime)))")
                continue
            }
            if limited {
                let recipients = item.recipients.filter { $0.state == .pending }.count
                let clock = Int64(Date().timeIntervalSince1970)
                let ahead = withLedger { $0.future(now: clock) }
                if !ahead.isEmpty && !state.futureReported {
                    state.futureReported = true
                    log.log(.warning, "sending ledger has entries in the future; ignored", [
                        "mailbox": mailbox.name, "entries": String(ahead.count), "latest": String(ahead.map(\.time).max() ?? 0),
                        "now": String(clock), "path": withLedger { $0.location }])
                }
                if let until = withLedger({ $0.wait(now: clock, recipients: recipients,
                                           perMinute: mailbox.maxMessagesPerMinute, perDay: mailbox.maxRecipientsPerDay) }) {
                    // Over a sending limit: the rest wait their turn, without an attempt counted.
                    state.throttledUntil = until
                    let waiting = due.count - position
                    tally.withLock { $0.throttled = waiting }
                    log.log(.info, "sending limit reached; messages wait", ["mailbox": mailbox.name, "waiting": String(waiting),
                                                                            "until": String(until)])
                    return
                }
                tally.withLock { $0.throttled = 0 }
            }
            let preloaded = wasAnnounced ? announced?.bytes : nil
            announced = nil
            guard let bytes = preloaded ?? queue.messageBytes(item) else { continue }
            if sender == nil {
                do throws(MailConnectionError) {
                    let credentials = try credentials()
                    do throws(MailConnectionError) {
                        sender = try openSender(mailbox, credentials, ehloName)
                    } catch {
                        if error.kind == .loginRejected, let credentials { login?.rejected(credentials) }
                        throw error.redacting(credentials?.password, user: mailbox.user)
                    }
                } catch {
                    // The server is unreachable or refuses us (a rejected login too: an operator
                    // can fix that): every due message waits, until the queue lifetime.
                    for var waiting in due where waiting.nextAttempt <= now {
                        defer_(&waiting, error: error.description)
                    }
                    log.log(.warning, "smtp connection failed", ["mailbox": mailbox.name, "server": "\(mailbox.server):\(mailbox.port)", "reason": error.description])
                    return
                }
            }
            guard let open = sender else { return }
            let allPending = item.recipients.indices.filter { item.recipients[$0].state == .pending }
            // Recipients past max_notifications_per_recipient wait for their window; the others go.
            // (A message whose commands went out with the one before is sent as announced: it
            // was announced only if its recipients were under their limit with that one counted.)
            let (pending, heldUntil) = wasAnnounced ? (allPending, Int64(0)) : holdBack(allPending, of: item, now: now)
            if pending.isEmpty && !allPending.isEmpty {
                item.nextAttempt = max(item.nextAttempt, heldUntil)
                record(item)
                continue
            }
            // The next due message, if its commands may go out early: never under a sending
            // limit (each message waits for the ledger), nor after the queue lifetime.
            let upcoming = { [self] () -> OutgoingMessage? in
                guard !limited, position + 1 < due.count, !stopping.isRaised else { return nil }
                let next = due[position + 1]
                // The one being sent counts as sent: the limit is never passed, even by pipelining.
                let inFlight = Set(pending.map { item.recipients[$0].address.lowercased() })
                guard now - next.created <= lifetime.components.seconds, !wouldHoldBack(next, now: now, inFlight: inFlight),
                      let nextBytes = queue.messageBytes(next) else { return nil }
                announced = (next.id, nextBytes)
                return Self.outgoing(next, bytes: nextBytes)
            }
            // Nothing left to send (every recipient answered before a crash): `finish` settles it.
            if !pending.isEmpty {
                item.attempts += 1
                do throws(MailConnectionError) {
                    try open.send(Self.outgoing(item, bytes: bytes, only: pending), next: upcoming) { recipient, outcome in
                        record(&item, pending[recipient], code: outcome.code, reply: outcome.text)
                        if outcome.code / 100 == 2 { countNotification(to: item.recipients[pending[recipient]].address) }
                    }
                } catch {
                    let error = error.redacting(state.password, user: mailbox.user)
                    // The connection broke mid-transaction: what was not confirmed is retried.
                    sender = nil
                    defer_(&item, error: error.description)
                    log.log(.warning, "smtp transaction failed", ["mailbox": mailbox.name, "queue_id": item.id, "reason": error.description])
                    return
                }
            }
            if limited {
                do {
                    try withLedger { ledger throws(StoreFailure) in try ledger.record(now: Int64(Date().timeIntervalSince1970), recipients: item.recipients.count) }
                } catch {
                    log.log(.error, "cannot record a message in the sending ledger", ["mailbox": mailbox.name, "path": withLedger { $0.location }, "reason": error.description])
                }
            }
            finish(&item)
            if heldUntil > 0, !item.isFinished {
                item.nextAttempt = max(item.nextAttempt, heldUntil)
                record(item)
            }
        }
    }

    /// `pending` without the recipients past the mailbox's limit on notifications per
    /// recipient, and when the first of those may have one again (0: none held). Each held
    /// recipient is reported once per window (`recipient.flooding`).
    func holdBack(_ pending: [Int], of item: QueuedMessage, now: Int64) -> (send: [Int], heldUntil: Int64) {
        let limit = mailbox.maxNotificationsPerRecipient
        guard limit > 0, !pending.isEmpty else { return (pending, 0) }
        let window = mailbox.recipientWindow.components.seconds
        var counts = state.recipientCounts ?? queue.recipientCounts(for: mailbox.name)
        defer { state.recipientCounts = counts }
        var send: [Int] = []
        var heldUntil: Int64 = 0
        for index in pending {
            let address = item.recipients[index].address.lowercased()
            let (count, windowEnd) = counts.current(address, now: now, window: window)
            guard count >= limit else {
                send.append(index)
                continue
            }
            heldUntil = heldUntil == 0 ? windowEnd : min(heldUntil, windowEnd)
            if counts.markAlerted(address) {
                state.recipientCountsChanged = true
                log.log(.warning, "recipient limit reached; notifications wait", ["mailbox": mailbox.name, "recipient": address, "limit": String(limit),
                                                                                  "until": String(windowEnd), "queue_id": item.id])
                let alert = SenderFlooding(direction: .recipient, mailbox: mailbox.name, contract: item.contract, sender: address, count: count,
                                           limit: limit, windowSeconds: window, at: now)
                do {
                    try directory.writeEvent(id: alert.id, bytes: alert.json().renderedBytes())
                } catch {
                    log.log(.error, "cannot write event", ["mailbox": mailbox.name, "event": "recipient.flooding", "reason": error.description])
                }
            }
        }
        return (send, heldUntil)
    }

    /// Whether a recipient of `item` is at its limit now (its commands must then not go out early).
    func wouldHoldBack(_ item: QueuedMessage, now: Int64, inFlight: Set<String>) -> Bool {
        let limit = mailbox.maxNotificationsPerRecipient
        guard limit > 0 else { return false }
        let counts = state.recipientCounts ?? queue.recipientCounts(for: mailbox.name)
        let window = mailbox.recipientWindow.components.seconds
        return item.recipients.contains { recipient in
            let address = recipient.address.lowercased()
            return recipient.state == .pending && counts.current(address, now: now, window: window).count + (inFlight.contains(address) ? 1 : 0) >= limit
        }
    }

    /// One notification delivered to `address`: counted against its limit.
    func countNotification(to address: String) {
        guard mailbox.maxNotificationsPerRecipient > 0 else { return }
        if state.recipientCounts == nil { state.recipientCounts = queue.recipientCounts(for: mailbox.name) }
        // In place: a copy per recipient would copy every count each time.
        _ = state.recipientCounts?.count(address.lowercased(), now: Int64(Date().timeIntervalSince1970),
                                          window: mailbox.recipientWindow.components.seconds, limit: 0)
        state.recipientCountsChanged = true
    }

    /// Keeps the notification counts if a pass changed them.
    func keepRecipientCounts() {
        guard state.recipientCountsChanged, let counts = state.recipientCounts else { return }
        do {
            try queue.recordRecipientCounts(counts, for: mailbox.name)
            state.recipientCountsChanged = false
        } catch {
            log.log(.error, "cannot keep the notification counts", ["mailbox": mailbox.name, "reason": error.description])
        }
    }

    /// The lane's sending ledger, read from the store at its first use.
    private func withLedger<Result, Failure: Error>(_ body: (inout any SendingLedger) throws(Failure) -> Result) throws(Failure) -> Result {
        var ledger = state.ledger ?? queue.rateLedger(for: mailbox.name)
        state.ledger = nil
        defer { state.ledger = ledger }
        return try body(&ledger)
    }

    /// A queued message as its sender takes it: the recipients still pending (or `only` those
    /// of them), in order.
    static func outgoing(_ item: QueuedMessage, bytes: [UInt8], only: [Int]? = nil) -> OutgoingMessage {
        let recipients = only.map { $0.map { item.recipients[$0].address } } ?? item.recipients.filter { $0.state == .pending }.map(\.address)
        return OutgoingMessage(id: item.id, envelopeFrom: item.envelopeFrom, recipients: recipients, bytes: bytes)
    }

    /// The due messages, oldest first; only new or changed entries are read from disk.
    func dueMessages(now: Int64) -> [QueuedMessage] {
        let folderStamp = queue.changeStamp(of: mailbox.name)
        // No folder: nothing was ever queued here (or it all went), nothing to list.
        if folderStamp == nil && state.known.isEmpty {
            tally.withLock { $0.counts = (0, 0) }
            return []
        }
        if state.laneWatch.shouldList(folderStamp) {
            readChangedEntries()
            state.laneWatch.listed(folderStamp, quiet: true)
        }
        let deferred = state.known.values.reduce(0) { $0 + ($1.item.attempts > 0 ? 1 : 0) }
        tally.withLock { [count = state.known.count] in $0.counts = (count, deferred) }
        return state.known.values.map(\.item).filter { $0.nextAttempt <= now }.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    private func readChangedEntries() {
        let stamps = queue.stamps(in: mailbox.name)
        state.known = state.known.filter { stamps[$0.key] != nil }
        for (id, stamp) in stamps where state.known[id]?.stamp != stamp {
            if let item = queue.message(in: mailbox.name, id: id) {
                state.known[id] = (stamp, item)
            } else {
                // Unreadable: set aside where an operator sees it, never skipped in silence.
                do {
                    let path = try queue.setAside(id, in: mailbox.name)
                    log.log(.error, "queue entry unreadable; set aside", ["mailbox": mailbox.name, "queue_id": id, "path": path])
                } catch {
                    log.log(.error, "queue entry unreadable", ["mailbox": mailbox.name, "queue_id": id, "reason": error.description])
                }
            }
        }
    }

    func credentials() throws(MailConnectionError) -> MailSession.Credentials? {
        guard mailbox.auth, let login else { return nil }
        switch login.credentials(mailbox: mailbox.name) {
        case .success(let credentials):
            state.password = credentials.password
            return credentials
        case .failure(let failure):
            // No token: the messages wait as for an unreachable server (a transient failure is
            // retried with the usual backoff; the rest needs the operator, and says how).
            throw MailConnectionError(failure.isTransient ? .other : .loginRejected, endpoint: MailEndpoint(mailbox).description,
                                      message: MailboxLogin.explain(failure, mailbox: mailbox.name))
        }
    }

    func record(_ item: inout QueuedMessage, _ index: Int, code: Int, reply: String) {
        item.recipients[index].code = code
        // Kept in the queue and in delivery.failed events: never with the login in it.
        item.recipients[index].reply = state.password.map { $0.redact(reply, user: mailbox.user) } ?? reply
        // One line per delivery attempt: "was it sent to X, and what did the server say?"
        if code / 100 != 2 { tally.withLock { $0.refused += 1 } }
        log.log(.info, "delivery attempt", ["mailbox": mailbox.name, "queue_id": item.id, "recipient": item.recipients[index].address,
                                            "code": String(code), "reply": item.recipients[index].reply ?? ""])
        switch code / 100 {
        case 2: item.recipients[index].state = .sent
        case 5: item.recipients[index].state = .failed
        default: break // 4xx: stays pending, retried alone
        }
    }

    func finish(_ item: inout QueuedMessage) {
        let now = Int64(Date().timeIntervalSince1970)
        if item.isFinished {
            let failed = item.recipients.filter { $0.state == .failed }
            if failed.isEmpty {
                // At once, on the lane: every message delivered and not yet removed is one a
                // crash would send twice (tried beside the lane: a few more duplicates per
                // SIGKILL for no measurable speed).
                queue.remove(item)
                log.log(.info, "message delivered", ["mailbox": mailbox.name, "contract": item.contract ?? "", "queue_id": item.id, "recipients": String(item.recipients.count)])
            } else {
                giveUp(item, reason: "refused by the server")
            }
            return
        }
        // Some recipients answered 4xx: only they are tried again.
        let delay = RetryPolicy.deferral.delay(after: item.attempts).components.seconds
        item.nextAttempt = now + delay
        item.lastError = item.recipients.first { $0.state == .pending }.flatMap { r in r.code.map { "\($0) \(r.reply ?? "")" } }
        record(item)
        log.log(.notice, "delivery deferred", ["mailbox": mailbox.name, "contract": item.contract ?? "", "queue_id": item.id, "pending": String(item.pending.count),
                                               "retry_in": "\(delay)s", "reason": item.lastError ?? ""])
    }

    /// A temporary failure for the whole message (network, TLS, a broken connection).
    func defer_(_ item: inout QueuedMessage, error: String) {
        tally.withLock { $0.refused += 1 }
        let now = Int64(Date().timeIntervalSince1970)
        item.attempts += 1
        item.lastError = error
        let delay = RetryPolicy.smtpConnection.delay(after: item.attempts).components.seconds
        item.nextAttempt = now + delay
        record(item)
    }

    /// Writes what an attempt changed (recipients' states, the next attempt) to the queue entry.
    /// When that fails (a full disk), the lane goes on from what it holds in memory, and says so:
    /// after a restart the entry's older state is read, and its recipients tried again.
    func record(_ item: QueuedMessage) {
        do {
            try queue.update(item)
        } catch {
            log.log(.error, "cannot record a delivery attempt in the queue", ["mailbox": mailbox.name, "queue_id": item.id, "reason": error.description])
        }
    }

    func expire(_ item: inout QueuedMessage, reason: String) {
        for index in item.recipients.indices where item.recipients[index].state == .pending {
            item.recipients[index].state = .failed
            if item.recipients[index].reply == nil { item.recipients[index].reply = item.lastError ?? reason }
        }
        giveUp(item, reason: reason)
    }

    /// Some or all recipients are given up: the message is kept in `failed/` when nobody got
    /// it, and a delivery.failed event names the failed recipients either way.
    func giveUp(_ item: QueuedMessage, reason: String) {
        let failed = item.recipients.filter { $0.state == .failed }
        var kept = item
        kept.lastError = reason
        // Kept in failed/ with every recipient's outcome, for `carteiro queue retry`.
        do {
            try queue.fail(kept)
        } catch {
            log.log(.error, "cannot move a given-up message to queue/failed", ["mailbox": mailbox.name, "queue_id": item.id, "reason": error.description])
        }
        let event = OutboundFailure(queueID: item.id, mailbox: mailbox.name, contract: item.contract, request: item.request,
                                    messageID: item.messageID, reason: reason,
                                    recipients: failed.map { ($0.address, $0.code, $0.reply) })
        do {
            try directory.writeEvent(id: event.id, bytes: event.json().renderedBytes())
        } catch {
            log.log(.error, "cannot write event", ["mailbox": mailbox.name, "queue_id": item.id, "reason": error.description])
        }
        log.log(.warning, "message given up", ["mailbox": mailbox.name, "contract": item.contract ?? "", "queue_id": item.id, "failed": String(failed.count), "reason": reason])
    }
}
