import CarteiroConfig
import CarteiroCurl
import CarteiroStore
import Foundation

/// One poll of one mailbox through its source, whatever the protocol: list what is new since
/// the cursor, fetch it in bounded batches (batch n+1 asked for while batch n is parsed and
/// committed), hand each batch on durably with the cursor it reaches, and only then apply
/// `after_fetch` to it.
///
/// One bad message must not stop the mailbox: the messages of a batch that failed become
/// suspects and are fetched alone from then on; one that fails alone gets a strike, and the
/// poll goes on without it (on a new connection if it broke this one, see `PollRound`); at its
/// `Strike.limit`-th strike it is handed on as `message.unreadable` and left on the server.
struct SourcePoll<Source: MailSource> {
    let source: Source
    let ingest: InboundIngest
    let login: MailboxLogin

    var mailbox: InboundMailbox { ingest.mailbox }
    var store: any MailboxLedger { ingest.store }

    func poll() throws(PollFailure) -> PollOutcome {
        try ingest.finishInterruptedCommit()
        let credentials = try PollFailure.credentials(mailbox, login: login)
        // One deadline for the whole poll, whatever rounds it takes.
        let deadline = ContinuousClock.now + mailbox.maxPollTime
        return try PollRound.run(mailbox, log: ingest.log, deadline: deadline) { fresh, skipping throws(PollFailure) in
            try source.withConnection(credentials: credentials, login: login, fresh: fresh, deadline: deadline) { connection in
                try round(connection, skipping: skipping, password: credentials.password)
            }
        }
    }

    /// How many more keys than messages the dedupe ledger may hold before it is compacted: the
    /// server's count or 1000, whichever is more (`CARTEIRO_LEDGER_SLACK` sets it, for tests).
    static var ledgerSlack: Int? { LedgerSlack.value }

    /// What the batch loop is waiting for: the server's answer, or nothing (a message given up
    /// after its strikes is handed on as unreadable without asking the server again).
    private enum Pending {
        case server(Source.Connection.Request, [SourceItem])
        case unreadable(SourceItem, reason: String)
    }

    func round(_ connection: Source.Connection, skipping: Set<String>, password: Secret) throws -> PollRound {
        var outcome = PollOutcome()
        var state = store.state
        let stored = state.cursor.flatMap(Source.cursor(from:))
        let listing = try connection.list(since: stored, strikes: state.strikes, skipping: skipping)

        // The dedupe ledger stays bounded: once it holds well more keys than the server has
        // messages, the keys of messages no longer there go (their headers are read).
        if stored != nil, listing.restart == nil, let count = listing.messageCount,
           store.dedupeKeys.count > count + (Self.ledgerSlack ?? max(1000, count)) {
            try compactLedger(connection)
        }

        // A new start, and the suspects and strikes of messages gone, are recorded first.
        var position = listing.restart ?? stored
        state.suspects.removeAll(where: listing.isStale)
        state.strikes = state.strikes.filter { !listing.isStale($0.key) }
        if listing.restart != nil || state != store.state {
            if let position { state.cursor = SourceCursor(kind: Source.kind, position) }
            try store.record(state)
        }

        // Messages a rule dropped stay on the server: kept as long as they are there (every
        // one still there is among the leftovers), never given to after_fetch.
        if !state.kept.isEmpty {
            let there = Set(listing.leftovers.map(\.key))
            let kept = state.kept.intersection(there)
            if kept != state.kept {
                state.kept = kept
                try store.record(state)
            }
        }
        let leftovers = listing.leftovers.filter { !state.kept.contains($0.key) }
        if !leftovers.isEmpty, let problem = try connection.afterFetch(leftovers) { outcome.afterFetchProblem = problem }

        let items = listing.items.filter { !skipping.contains($0.key) }
        let suspects = Set(state.suspects)
        let strikes = state.strikes
        let batches = InboundIngest.batches(items, size: \.size) { item in
            listing.keysAreStable && (suspects.contains(item.key) || strikes[item.key] != nil)
        }
        // Most polls find nothing new: they end here, without setting up the pipeline.
        if batches.isEmpty {
            try settle(listing, at: position)
            if let problem = connection.finish(), outcome.afterFetchProblem == nil { outcome.afterFetchProblem = problem }
            return .done(outcome)
        }

        let pipeline = IngestPipeline<[SourceItem]>(ingest)
        defer { pipeline.close() }
        func ask(_ batch: [SourceItem]) throws -> Pending {
            if batch.count == 1, let lone = batch.first, let strike = strikes[lone.key], strike.count >= MailboxState.Strike.limit {
                return .unreadable(lone, reason: "the server failed to send this message \(strike.count) times: \(strike.reason)")
            }
            return .server(try connection.request(batch), batch)
        }
        func applyAfterFetch() throws {
            let committed = try pipeline.takeCommitted().flatMap { $0 }
            guard !committed.isEmpty else { return }
            // The state is the last committed one: it names the messages dropped so far.
            let kept = store.state.kept
            if let problem = try connection.afterFetch(committed.filter { !kept.contains($0.key) }) { outcome.afterFetchProblem = problem }
        }
        func submit(_ fetched: [InboundIngest.Fetched], handed batch: [SourceItem], token: [SourceItem], last: Bool) throws(PollFailure) {
            let next = listing.advance(position, batch, last)
            position = next
            let kind = Source.kind
            let keys = Set(batch.map(\.key))
            let isStale = listing.isStale
            try pipeline.submit(fetched, token: token) { state in
                state.cursor = SourceCursor(kind: kind, next)
                state.suspects.removeAll(where: isStale)
                state.strikes = state.strikes.filter { !isStale($0.key) }
                state.forget { keys.contains($0) }
            }
        }
        func unreadable(_ item: SourceItem, reason: String) -> InboundIngest.Fetched {
            ingest.log.log(.error, "message handed on as unreadable", ["mailbox": mailbox.name, "message": item.key, "reason": reason])
            return InboundIngest.Fetched(key: item.key, origin: item.origin, bytes: [], size: item.size, oversize: false, unreadable: reason)
        }

        var pending: Pending? = try ask(batches[0])
        for (number, batch) in batches.enumerated() {
            guard let current = pending else { break }
            let last = number + 1 == batches.count
            let fetched: [InboundIngest.Fetched]
            var token: [SourceItem] = []
            switch current {
            case .unreadable(let item, let reason):
                fetched = [unreadable(item, reason: reason)]
            case .server(let request, let asked):
                do {
                    fetched = try connection.collect(request)
                } catch let error as MailConnectionError {
                    // The server cannot (or will not) send this batch: remember which messages.
                    guard listing.keysAreStable else { throw error }
                    let cause = error.redacting(password, user: mailbox.user)
                    pipeline.drain()
                    ingest.recordFetchFailure(keys: asked.map(\.key), reason: cause.description)
                    // A batch of several fails the poll: its messages are fetched alone from
                    // the next. A message alone got its strike: the poll goes on without it,
                    // on this connection if the server only refused it, else on a new one.
                    guard asked.count == 1, let lone = asked.first else { throw error }
                    // At its last strike it is handed on as message.unreadable now, wherever it lies.
                    if let strike = store.state.strikes[lone.key], strike.count >= MailboxState.Strike.limit {
                        let reason = "the server failed to send this message \(strike.count) times: \(strike.reason)"
                        try submit([unreadable(lone, reason: reason)], handed: [lone], token: [], last: false)
                    }
                    if connection.isBroken {
                        // What was committed meanwhile gets its after_fetch from the next round's leftovers.
                        let (handedOn, duplicates, dropped) = pipeline.finish()
                        outcome.handedOn += handedOn
                        outcome.skippedDuplicates += duplicates
                        outcome.dropped += dropped
                        return .struck(key: lone.key, cause: cause, sofar: outcome)
                    }
                    pending = last ? nil : try ask(batches[number + 1])
                    continue
                }
                let keys = Set(fetched.map(\.key))
                let missing = asked.filter { !keys.contains($0.key) }
                if !missing.isEmpty {
                    // Removed by another client between the listing and the fetch: nothing to
                    // hand on, but never silently.
                    ingest.log.log(.warning, "messages vanished before they could be fetched",
                                   ["mailbox": mailbox.name, "messages": missing.map(\.key).joined(separator: " ")])
                }
                token = asked.filter { keys.contains($0.key) }
            }
            try applyAfterFetch()
            pending = last ? nil : try ask(batches[number + 1])
            try submit(fetched, handed: batch, token: token, last: last)
        }
        pipeline.drain()
        // Only now, with the last batch durable, may the server change for it.
        try applyAfterFetch()
        if let problem = connection.finish(), outcome.afterFetchProblem == nil { outcome.afterFetchProblem = problem }
        try settle(listing, at: position)
        let (handedOn, duplicates, dropped) = pipeline.finish()
        outcome.handedOn += handedOn
        outcome.skippedDuplicates += duplicates
        outcome.dropped += dropped
        return .done(outcome)
    }

    /// The end of a round in which nothing failed: the cursor stands where the whole listing
    /// takes it (IMAP: past UIDNEXT - 1; POP3: the UIDLs the server still lists).
    func settle(_ listing: SourceListing<Source.Cursor>, at position: Source.Cursor?) throws {
        let final = listing.advance(position, [], true)
        var state = store.state
        // Compared as positions, not bytes: a cursor read back from the file is the same
        // position however its JSON was spelled.
        guard state.cursor?.kind != Source.kind || state.cursor.flatMap(Source.cursor(from:)) != final else { return }
        state.cursor = SourceCursor(kind: Source.kind, final)
        try store.record(state)
    }

    /// Reads every message's header and keeps only the keys of messages still on the server.
    /// Nothing is removed unless every header was read.
    func compactLedger(_ connection: Source.Connection) throws {
        guard let headers = try connection.everyHeader() else { return }
        var present: Set<String> = []
        for header in headers {
            if let key = InboundIngest.dedupeKey(header: header) { present.insert(key) }
        }
        let removed = try store.compactKeys(keeping: present)
        if removed > 0 {
            ingest.log.log(.info, "dedupe ledger compacted", ["mailbox": mailbox.name, "removed": String(removed), "kept": String(store.dedupeKeys.count)])
        }
    }
}

/// `CARTEIRO_LEDGER_SLACK`, read once.
enum LedgerSlack {
    static let value = ProcessInfo.processInfo.environment["CARTEIRO_LEDGER_SLACK"].flatMap(Int.init).map { max($0, 0) }
}
