import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Foundation

/// One poll of an IMAP mailbox: examine the folder, find the new UIDs with their
/// sizes, fetch bodies with BODY.PEEK[] in batches (headers only above max_message_size),
/// hand each batch on durably, and only then apply `after_fetch` to that batch.
struct IMAPPoller {
    let ingest: InboundIngest
    let login: MailboxLogin
    /// Where the session waits between polls (nil: a new connection for each poll).
    var sessions: KeptSessions?

    var mailbox: InboundMailbox { ingest.mailbox }
    var store: MailboxStore { ingest.store }

    func poll() throws(PollFailure) -> PollOutcome {
        try ingest.finishInterruptedCommit()
        let credentials = try PollFailure.credentials(mailbox, login: login)
        // One deadline for the whole poll, whatever rounds it takes.
        let deadline = ContinuousClock.now + mailbox.maxPollTime
        return try PollRound.run(mailbox, log: ingest.log, deadline: deadline) { fresh, skipping throws(PollFailure) in
            try pollRound(credentials: credentials, fresh: fresh, deadline: deadline, skipping: skipping)
        }
    }

    /// One round: on the kept or lent connection for the first, on a new one after a round was
    /// cut by a message (`fresh`); the messages in `skipping` are left for the next poll.
    func pollRound(credentials: MailSession.Credentials, fresh: Bool, deadline: ContinuousClock.Instant, skipping: Set<String>) throws(PollFailure) -> PollRound {
        let password = credentials.password
        if !fresh, let sessions, let taken = sessions.session(for: mailbox, credentials: credentials) {
            let client = taken.client
            var lender: IdleWatcher?
            if case .lent(_, let watcher) = taken { lender = watcher }
            client.session.sessionDeadline = deadline
            client.maximumFetchLiteral = maximumLiteral
            let before = client.session.bytesReceived
            do throws(PollFailure) {
                let round = try PollFailure.sorting(mailbox, password: password) { try poll(client, password: password, skipping: skipping) }
                sessions.done(with: client, lentFrom: lender, failure: round.failure, mailbox: mailbox, credentials: credentials)
                return round
            } catch {
                sessions.done(with: client, lentFrom: lender, failure: error, mailbox: mailbox, credentials: credentials)
                // The kept connection died while it waited, silently (no FIN, no BYE: a server
                // restarted behind a firewall, a NAT that forgot it), and the server said nothing
                // in this poll: a new connection, now. Any other failure is the poll's.
                guard lender == nil, case .connection(let failure) = error, [.connectionLost, .noAnswer].contains(failure.kind),
                      client.session.bytesReceived == before else {
                    throw error
                }
                ingest.log.log(.info, "kept connection lost; connecting again", ["mailbox": mailbox.name, "reason": failure.description])
            }
        }
        let session = try PollFailure.openSession(mailbox, credentials: credentials, login: login)
        session.sessionDeadline = deadline
        let client = IMAPClient(session: session)
        client.maximumFetchLiteral = maximumLiteral
        do throws(PollFailure) {
            let round = try PollFailure.sorting(mailbox, password: password) { try poll(client, password: password, skipping: skipping) }
            if let sessions, round.failure == nil { sessions.done(with: client, lentFrom: nil, failure: nil, mailbox: mailbox, credentials: credentials) } else { client.logout() }
            return round
        } catch {
            client.logout()
            throw error
        }
    }

    func poll(_ client: IMAPClient, password: Secret, skipping: Set<String> = []) throws -> PollRound {
        var outcome = PollOutcome()
        guard let folder = IMAPString.quoted(IMAPMailboxName.encode(mailbox.folder)) else {
            throw PollFailure.configuration("the folder name \"\(mailbox.folder)\" cannot be sent to the server")
        }
        // SELECT only when after_fetch changes the folder; EXAMINE cannot change anything.
        let select = try client.run((mailbox.afterFetch == .keep ? "EXAMINE " : "SELECT ") + folder)
        guard select.isOK else {
            let endpoint = client.session.endpoint.description
            throw MailConnectionError(.folderMissing, endpoint: endpoint, message: "the folder \"\(mailbox.folder)\" cannot be opened on \(endpoint)",
                                      serverReply: "\(select.tag) \(select.status) \(select.text)")
        }
        client.markFolderOpened()
        var uidValidity: UInt32 = 0, uidNext: UInt32 = 0, exists = 0
        for line in select.untagged {
            if let n = IMAPResponseText.count(line, keyword: "EXISTS") { exists = n }
            if let code = IMAPResponseText.responseCode(line) {
                if code.name == "UIDVALIDITY" { uidValidity = UInt32(code.argument) ?? 0 }
                if code.name == "UIDNEXT" { uidNext = UInt32(code.argument) ?? 0 }
            }
        }
        var state = store.state
        let firstPoll = state.uidValidity == nil
        // UIDs only grow under one UIDVALIDITY (RFC 3501 §2.3.1.1). A server whose UIDNEXT is
        // not past what was handed on has renumbered its folder without saying so: treated as a
        // new UIDVALIDITY (everything looked at again, old messages recognised by their key),
        // instead of never fetching the new messages whose UIDs lie below the old ones.
        let uidsWentBack = !firstPoll && state.uidValidity == uidValidity && uidNext > 0 && uidNext <= state.lastUID
        if uidsWentBack {
            ingest.log.log(.warning, "the server's UIDs went backwards without a new UIDVALIDITY; the folder is examined again",
                           ["mailbox": mailbox.name, "uidnext": String(uidNext), "last_uid": String(state.lastUID)])
        }
        let validityChanged = !firstPoll && (state.uidValidity != uidValidity || uidsWentBack)

        // The dedupe ledger stays bounded: once it holds well more keys than the folder has
        // messages, the keys of messages no longer there go (the folder's headers are read).
        if !firstPoll && !validityChanged && store.dedupeKeys.count > exists + (Self.ledgerSlack ?? max(1000, exists)) {
            try compactLedger(client, exists: exists)
        }

        // Which UIDs to consider, with their sizes.
        var candidates: [(uid: UInt32, size: Int)] = []
        if exists > 0 {
            if firstPoll && mailbox.importExisting == .none {
                candidates = []
            } else if firstPoll && mailbox.importExisting == .unseen {
                let uids = try searchUIDs(client, "UID SEARCH UNSEEN", exists: exists)
                if !uids.isEmpty { candidates = try sizes(client, set: IMAPSequenceSet.render(uids), exists: exists).map { ($0.uid, $0.size) } }
            } else {
                // The highest UID there can be was handed on: no later message can have a UID.
                let from = (firstPoll || validityChanged) ? 1 : state.lastUID == .max ? .max : state.lastUID + 1
                let floor = state.afterFetchFrom
                candidates = try sizes(client, set: "\(from):*", exists: exists).filter { item in
                    if firstPoll || validityChanged { return true }
                    guard item.uid > state.lastUID else { return false }
                    // Below the floor lie the messages that were there before Carteiro: a first
                    // poll interrupted half-way must still follow import_existing for them.
                    if item.uid < floor {
                        return mailbox.importExisting == .all || (mailbox.importExisting == .unseen && !item.seen)
                    }
                    return true
                }.map { ($0.uid, $0.size) }
            }
        }
        // Messages passed over by an earlier poll because their fetch failed (they have strikes,
        // not yet the limit): below `lastUID`, so listed by their UIDs. One the server no
        // longer lists needs no more tries.
        if !firstPoll && !validityChanged {
            let prefix = "\(uidValidity)/"
            let holes = state.strikes.compactMap { key, strike -> UInt32? in
                guard strike.count < MailboxState.Strike.limit, key.hasPrefix(prefix), let uid = UInt32(key.dropFirst(prefix.count)), uid <= state.lastUID else { return nil }
                return uid
            }.sorted()
            if !holes.isEmpty {
                let listed = exists > 0 ? try sizes(client, set: IMAPSequenceSet.render(holes), exists: exists).filter { holes.contains($0.uid) } : []
                candidates += listed.map { ($0.uid, $0.size) }
                let present = Set(listed.map(\.uid))
                let gone = holes.filter { !present.contains($0) }
                if !gone.isEmpty {
                    for uid in gone { state.strikes["\(prefix)\(uid)"] = nil }
                    try store.record(state)
                }
            }
        }
        // Messages that broke this poll's connection in an earlier round wait for the next poll.
        if !skipping.isEmpty { candidates.removeAll { skipping.contains("\(uidValidity)/\($0.uid)") } }
        candidates.sort { $0.uid < $1.uid }
        // Where the mailbox stands once everything is handed on; new arrivals get UIDs from UIDNEXT on.
        let finalLastUID = max(candidates.last?.uid ?? 0, uidNext > 0 ? uidNext - 1 : 0, validityChanged ? 0 : state.lastUID)
        if firstPoll || validityChanged {
            state.uidValidity = uidValidity
            state.lastUID = 0
            // With unseen or none, what is in the folder now predates Carteiro (unseen ones
            // are handed on in this poll, and after_fetch applied batch by batch).
            state.afterFetchFrom = (firstPoll && mailbox.importExisting != .all) ? max(uidNext, 1) : 1
            if candidates.isEmpty {
                state.lastUID = finalLastUID
                try store.record(state)
                return .done(outcome)
            }
        }

        // Messages handed on whose after_fetch never ran (a crash, a refusal): apply it now.
        if !firstPoll && !validityChanged && mailbox.afterFetch != .keep && state.lastUID >= state.afterFetchFrom && exists > 0 {
            let criteria = mailbox.afterFetch == .seen ? " UNSEEN" : ""
            // Not those with strikes: given up (handed on as unreadable) or not handed on yet.
            let leftovers = try searchUIDs(client, "UID SEARCH UID \(state.afterFetchFrom):\(state.lastUID)\(criteria)", exists: exists)
                .filter { $0 >= state.afterFetchFrom && $0 <= state.lastUID && state.strikes["\(uidValidity)/\($0)"] == nil }
            if !leftovers.isEmpty, let problem = try applyAfterFetch(client, uids: leftovers) { outcome.afterFetchProblem = problem }
        }

        // Batches, pipelined twice over: batch n+1 is requested as soon as batch n is read, so
        // the server streams it meanwhile, and batch n is parsed and committed off this thread.
        // after_fetch goes to the server between FETCHes, for the batches durable by then.
        // One bad message must not stop the mailbox: the messages of a batch that failed are
        // fetched alone, and one that fails alone poll after poll is handed on as unreadable.
        // Keys carry the UIDVALIDITY: under another one the same UID is another message.
        let key = { (uid: UInt32) in "\(uidValidity)/\(uid)" }
        let suspects = Set(state.suspects)
        let strikes = state.strikes
        let batches = InboundIngest.batches(candidates, size: \.size) { suspects.contains(key($0.uid)) || strikes[key($0.uid)] != nil }
        // Most polls find nothing new: they end here, without setting up the pipeline.
        if batches.isEmpty { return .done(outcome) }
        let pipeline = IngestPipeline<[UInt32]>(ingest)
        defer { pipeline.close() }
        let priorLast = state.lastUID
        var pending: PendingFetch? = try request(client, batch: batches[0], strikes: strikes, key: key)
        for (number, batch) in batches.enumerated() {
            guard let current = pending else { break }
            let fetched: [InboundIngest.Fetched]
            do {
                fetched = try collect(client, current, uidValidity: uidValidity)
            } catch let error as MailConnectionError {
                // The server cannot (or will not) send this batch: remember which messages.
                pipeline.drain()
                ingest.recordFetchFailure(keys: current.batch.map { key($0.uid) }, reason: error.redacting(password, user: mailbox.user).description)
                // A message alone got its strike: the poll goes on without it, on this
                // connection if the server only refused it, else on a new one. (A batch of
                // several fails the poll: its messages are fetched alone from the next.)
                guard current.batch.count == 1, let lone = current.batch.first else { throw error }
                // At its last strike it is handed on as message.unreadable now, wherever it lies.
                if let strike = store.state.strikes[key(lone.uid)], strike.count >= MailboxState.Strike.limit {
                    let reason = "the server failed to send this message \(strike.count) times: \(strike.reason)"
                    ingest.log.log(.error, "message handed on as unreadable", ["mailbox": mailbox.name, "message": String(lone.uid), "reason": reason])
                    let (validity, floor, last) = (state.uidValidity, state.afterFetchFrom, priorLast)
                    try pipeline.submit([InboundIngest.Fetched(origin: .imap(uidValidity: uidValidity, uid: lone.uid), bytes: [], size: 0, oversize: false, unreadable: reason)],
                                        token: []) {
                        $0.lastUID = max($0.uidValidity == validity ? $0.lastUID : 0, last)
                        $0.uidValidity = validity
                        $0.afterFetchFrom = floor
                    }
                }
                if client.session.isBroken {
                    if let problem = try applyAfterFetch(client, uids: pipeline.takeCommitted().flatMap { $0 }) { outcome.afterFetchProblem = problem }
                    let (handedOn, duplicates) = pipeline.finish()
                    outcome.handedOn += handedOn
                    outcome.skippedDuplicates += duplicates
                    return .struck(key: key(lone.uid), cause: error.redacting(password, user: mailbox.user), sofar: outcome)
                }
                pending = number + 1 < batches.count ? try request(client, batch: batches[number + 1], strikes: strikes, key: key) : nil
                continue
            }
            if let problem = try applyAfterFetch(client, uids: pipeline.takeCommitted().flatMap { $0 }) { outcome.afterFetchProblem = problem }
            pending = number + 1 < batches.count ? try request(client, batch: batches[number + 1], strikes: strikes, key: key) : nil
            let batchLast = batch.last?.uid ?? 0
            // Never below where the mailbox stood: a batch of a message passed over earlier
            // (below it) does not take the position back.
            let lastUID = max(priorLast, number + 1 == batches.count ? max(finalLastUID, batchLast) : batchLast)
            let uids = Set(batch.map(\.uid))
            // The whole position: on a first poll or a new UIDVALIDITY the stored state has
            // neither the folder's UIDVALIDITY nor the floor yet.
            let (validity, floor) = (state.uidValidity, state.afterFetchFrom)
            // after_fetch is for the messages handed on with their content, not the unreadable.
            try pipeline.submit(fetched, token: batch.map(\.uid).filter { current.unreadable[$0] == nil }) {
                $0.uidValidity = validity
                $0.afterFetchFrom = floor
                $0.lastUID = lastUID
                // Keys of another UIDVALIDITY name other messages; handed-on ones are done.
                let prefix = "\(validity ?? 0)/"
                $0.suspects.removeAll { !$0.hasPrefix(prefix) }
                $0.strikes = $0.strikes.filter { $0.key.hasPrefix(prefix) }
                // Suspects up to here were fetched; strikes go only with their own message
                // (one passed over, below lastUID now, is tried again next poll).
                $0.suspects.removeAll { UInt32($0.dropFirst(prefix.count)).map { $0 <= lastUID } ?? true }
                $0.strikes = $0.strikes.filter { key, strike in
                    strike.count >= MailboxState.Strike.limit || !(UInt32(key.dropFirst(prefix.count)).map { uids.contains($0) } ?? true)
                }
            }
        }
        pipeline.drain()
        // Only now, with the last batch durable, may the server change for it.
        if let problem = try applyAfterFetch(client, uids: pipeline.takeCommitted().flatMap { $0 }) { outcome.afterFetchProblem = problem }
        let (handedOn, duplicates) = pipeline.finish()
        outcome.handedOn += handedOn
        outcome.skippedDuplicates += duplicates
        return .done(outcome)
    }

    /// How many more keys than messages the ledger may hold before it is compacted: the
    /// folder's size or 1000, whichever is more (`CARTEIRO_LEDGER_SLACK` sets it, for tests).
    static let ledgerSlack = ProcessInfo.processInfo.environment["CARTEIRO_LEDGER_SLACK"].flatMap(Int.init).map { max($0, 0) }

    /// Reads every message's header (500 at a time, no flag touched) and keeps only the keys
    /// of messages still in the folder. Nothing is removed unless every message was read.
    func compactLedger(_ client: IMAPClient, exists: Int) throws {
        let uids = try sizes(client, set: "1:*", exists: exists).map(\.uid)
        var present: Set<String> = []
        var read = 0
        var start = 0
        while start < uids.count {
            let chunk = Array(uids[start..<min(start + 500, uids.count)])
            start += chunk.count
            let (responses, status) = try client.fetch("UID FETCH \(IMAPSequenceSet.render(chunk)) (UID BODY.PEEK[HEADER])", bytes: chunk.count * 65_536 + 65_536)
            guard status.isOK else { return }
            for response in responses where response.uid != nil {
                guard let header = response.items["BODY[HEADER]"]?.bytes else { continue }
                read += 1
                if let key = InboundIngest.dedupeKey(header: header) { present.insert(key) }
            }
        }
        guard read == uids.count else { return }
        let removed = try store.compactKeys(keeping: present)
        if removed > 0 {
            ingest.log.log(.info, "dedupe ledger compacted", ["mailbox": mailbox.name, "removed": String(removed), "kept": String(store.dedupeKeys.count)])
        }
    }

    /// UID and RFC822.SIZE for a set, without touching any flag.
    func sizes(_ client: IMAPClient, set: String, exists: Int) throws -> [(uid: UInt32, size: Int, seen: Bool)] {
        // About 60 bytes a message; a server that sends far more for the folder it announced
        // (`exists`) is flooding.
        let (responses, status) = try client.fetch("UID FETCH \(set) (UID RFC822.SIZE FLAGS)", bytes: Self.listingAllowance(exists: exists))
        guard status.isOK else {
            throw MailConnectionError(.commandRefused, endpoint: client.session.endpoint.description, message: "\(client.session.endpoint) refused to list message sizes", serverReply: status.text)
        }
        if let bad = responses.first(where: \.hasInvalidUID) {
            throw MailConnectionError(.protocolViolation, endpoint: client.session.endpoint.description,
                                      message: "\(client.session.endpoint) listed message \(bad.sequence) with a UID that cannot be one (zero, negative or beyond 32 bits)")
        }
        return responses.compactMap { response in
            guard let uid = response.uid else { return nil }
            var seen = false
            if case .list(let flags)? = response.items["FLAGS"] {
                seen = flags.contains { if case .atom(let flag) = $0 { flag.caseInsensitiveCompare("\\Seen") == .orderedSame } else { false } }
            }
            return (uid, InboundIngest.announcedSize(response.items["RFC822.SIZE"]?.number), seen)
        }
    }

    /// The UIDs of a `UID SEARCH`; a server that answers with something that cannot be a UID
    /// fails the poll with that in words (never a trap, never a guess).
    func searchUIDs(_ client: IMAPClient, _ command: String, exists: Int) throws -> [UInt32] {
        let search = try client.search(command, exists: exists)
        var uids: [UInt32] = []
        for result in search.untagged.compactMap(IMAPResponseText.searchResults) {
            switch result {
            case .uids(let found): uids += found
            case .invalid(let word):
                throw MailConnectionError(.protocolViolation, endpoint: client.session.endpoint.description,
                                          message: "\(client.session.endpoint) answered a UID SEARCH with \"\(word)\", which cannot be a UID")
            }
        }
        return uids
    }

    /// What a listing of sizes and flags may bring back for a folder of `exists` messages:
    /// 256 bytes each (flags and keywords included), counted for a million messages at most,
    /// so a folder whatever it announces costs at most 257 MB.
    static func listingAllowance(exists: Int) -> Int {
        (1 << 20) + 256 * min(max(exists, 0), 1 << 20)
    }

    /// What the FETCH of messages announced at `sizes` may bring back: each message twice
    /// over (servers' RFC822.SIZE is sometimes approximate) and its response's framing.
    func fetchAllowance(_ sizes: [Int], headersOnly: Bool) -> Int {
        let perMessage = headersOnly ? MessageLimits.maximumHeaderBytes : maximumLiteral
        return sizes.reduce(1 << 20) { total, size in
            total + min(2 * InboundIngest.clamped(size), perMessage) + (64 << 10)
        }
    }

    /// The largest body a FETCH may carry: twice the size limit, for servers whose RFC822.SIZE
    /// is approximate; never unbounded.
    var maximumLiteral: Int { max(2 * mailbox.maxMessageSize, 1 << 20) }

    struct PendingFetch {
        var batch: [(uid: UInt32, size: Int)]
        /// Messages given up after their strikes: not fetched, handed on as unreadable.
        var unreadable: [UInt32: String] = [:]
        var wholeTag: String?
        var headerTag: String?
        var wholeBytes = 0
        var headerBytes = 0
    }

    /// Sends the FETCH commands of a batch: bodies with BODY.PEEK[] (fetching never sets \Seen:
    /// only `after_fetch` changes the server, once the batch is handed on), headers only for
    /// messages above max_message_size.
    func request(_ client: IMAPClient, batch: [(uid: UInt32, size: Int)], strikes: [String: MailboxState.Strike], key: (UInt32) -> String) throws -> PendingFetch {
        var unreadable: [UInt32: String] = [:]
        for item in batch {
            if let strike = strikes[key(item.uid)], strike.count >= MailboxState.Strike.limit {
                unreadable[item.uid] = "the server failed to send this message \(strike.count) times: \(strike.reason)"
            }
        }
        let batch = batch.filter { unreadable[$0.uid] == nil }
        let whole = batch.filter { $0.size <= mailbox.maxMessageSize }.map(\.uid)
        let oversize = batch.filter { $0.size > mailbox.maxMessageSize }.map(\.uid)
        return PendingFetch(
            batch: batch,
            unreadable: unreadable,
            // The sizes are the listing's: asked again, they would cost the server and the parse.
            wholeTag: whole.isEmpty ? nil : try client.startFetch("UID FETCH \(IMAPSequenceSet.render(whole)) (UID BODY.PEEK[])"),
            headerTag: oversize.isEmpty ? nil : try client.startFetch("UID FETCH \(IMAPSequenceSet.render(oversize)) (UID BODY.PEEK[HEADER])"),
            wholeBytes: fetchAllowance(batch.filter { $0.size <= mailbox.maxMessageSize }.map(\.size), headersOnly: false),
            headerBytes: fetchAllowance(batch.filter { $0.size > mailbox.maxMessageSize }.map(\.size), headersOnly: true))
    }

    func collect(_ client: IMAPClient, _ pending: PendingFetch, uidValidity: UInt32) throws -> [InboundIngest.Fetched] {
        if !pending.unreadable.isEmpty {
            // A batch of one (see `batches(_:size:alone:)`): nothing was asked of the server.
            return pending.unreadable.sorted { $0.key < $1.key }.map { uid, reason in
                ingest.log.log(.error, "message handed on as unreadable", ["mailbox": mailbox.name, "message": String(uid), "reason": reason])
                return InboundIngest.Fetched(origin: .imap(uidValidity: uidValidity, uid: uid), bytes: [], size: 0, oversize: false, unreadable: reason)
            }
        }
        var bodies: [UInt32: [UInt8]] = [:]
        // The two FETCHes are pipelined, so the server may interleave their responses: take
        // each body from whichever response carries it.
        for (tag, bytes) in [(pending.wholeTag, pending.wholeBytes), (pending.headerTag, pending.headerBytes)] {
            guard let tag else { continue }
            let (responses, status) = try client.finishFetch(tag: tag, bytes: bytes)
            guard status.isOK else {
                throw MailConnectionError(.commandRefused, endpoint: client.session.endpoint.description, message: "\(client.session.endpoint) refused to send messages", serverReply: status.text)
            }
            for response in responses {
                guard let uid = response.uid, let body = (response.items["BODY[]"] ?? response.items["BODY[HEADER]"])?.bytes else { continue }
                bodies[uid] = body
            }
        }
        let missing = pending.batch.filter { bodies[$0.uid] == nil }.map(\.uid)
        if !missing.isEmpty {
            // Expunged by another client between the listing and the fetch: nothing to hand on,
            // but never silently.
            ingest.log.log(.warning, "messages vanished before they could be fetched", ["mailbox": mailbox.name, "uids": IMAPSequenceSet.render(missing)])
        }
        return pending.batch.compactMap { item in
            guard let bytes = bodies[item.uid] else { return nil }
            return InboundIngest.Fetched(origin: .imap(uidValidity: uidValidity, uid: item.uid), bytes: bytes,
                                         size: item.size, oversize: item.size > mailbox.maxMessageSize)
        }
    }

    /// seen, delete or move:FOLDER for messages already handed on. A refusal is reported, not
    /// thrown: the messages are safe and will not be fetched again.
    func applyAfterFetch(_ client: IMAPClient, uids: [UInt32]) throws -> String? {
        guard !uids.isEmpty else { return nil }
        let set = IMAPSequenceSet.render(uids)
        var capabilities: Set<String> = []
        if mailbox.afterFetch != .keep {
            let reply = try client.run("CAPABILITY")
            for line in reply.untagged where line.uppercased().hasPrefix("* CAPABILITY ") {
                capabilities.formUnion(line.dropFirst(13).split(separator: " ").map { $0.uppercased() })
            }
        }
        func expunge() throws -> IMAPClient.Response {
            try client.run(capabilities.contains("UIDPLUS") ? "UID EXPUNGE \(set)" : "EXPUNGE")
        }
        var refusals: [IMAPClient.Response] = []
        switch mailbox.afterFetch {
        case .keep:
            return nil
        case .seen:
            refusals.append(try client.run("UID STORE \(set) +FLAGS.SILENT (\\Seen)"))
        case .delete:
            refusals.append(try client.run("UID STORE \(set) +FLAGS.SILENT (\\Deleted)"))
            refusals.append(try expunge())
        case .move(let target):
            guard let quoted = IMAPString.quoted(IMAPMailboxName.encode(target)) else { return "the folder name \"\(target)\" cannot be sent" }
            if capabilities.contains("MOVE") {
                refusals.append(try client.run("UID MOVE \(set) \(quoted)"))
            } else {
                let copy = try client.run("UID COPY \(set) \(quoted)")
                refusals.append(copy)
                if copy.isOK {
                    refusals.append(try client.run("UID STORE \(set) +FLAGS.SILENT (\\Deleted)"))
                    refusals.append(try expunge())
                }
            }
        }
        if let refused = refusals.first(where: { !$0.isOK }) {
            return "after_fetch = \"\(mailbox.afterFetch)\" was refused: \(refused.status) \(refused.text)"
        }
        return nil
    }
}
