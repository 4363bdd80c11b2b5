import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroMail
import CarteiroStore

/// One poll of a POP3 mailbox: UIDL to know what was handed on, LIST for sizes
/// before RETR (TOP 0 above max_message_size), a durable hand-over per batch, and DELE only
/// for messages already handed on, made effective by a QUIT whose reply is checked.
struct POP3Poller {
    let ingest: InboundIngest
    let login: MailboxLogin

    var mailbox: InboundMailbox { ingest.mailbox }
    var store: MailboxStore { ingest.store }

    func poll() throws(PollFailure) -> PollOutcome {
        try ingest.finishInterruptedCommit()
        let credentials = try PollFailure.credentials(mailbox, login: login)
        let password = credentials.password
        let deadline = ContinuousClock.now + mailbox.maxPollTime
        return try PollRound.run(mailbox, log: ingest.log, deadline: deadline) { _, skipping throws(PollFailure) in
            let session = try PollFailure.openSession(mailbox, credentials: credentials, login: login)
            session.sessionDeadline = deadline
            let client = POP3Client(session: session)
            return try PollFailure.sorting(mailbox, password: password) { try poll(client, password: password, skipping: skipping) }
        }
    }

    /// UIDLs are unique in a maildrop (RFC 1939 §7); a server that repeats one would make two
    /// messages one (the second never fetched, or both pointing at one raw file). Each repeat,
    /// in message order, gets a suffix of its own (`UIDL#2`, `UIDL#3` …): stable from poll to
    /// poll as long as the server keeps its order, and logged.
    static func disambiguated(_ uidls: [Int: String], mailbox: String, log: DaemonLog) -> [Int: String] {
        var seen: [String: Int] = [:]
        var result: [Int: String] = [:]
        var repeated = 0
        for number in uidls.keys.sorted() {
            guard let uidl = uidls[number] else { continue }
            let count = (seen[uidl] ?? 0) + 1
            seen[uidl] = count
            if count > 1 { repeated += 1 }
            result[number] = count == 1 ? uidl : "\(uidl)#\(count)"
        }
        if repeated > 0 {
            log.log(.warning, "the server lists the same UIDL for different messages; each copy is taken as a message of its own",
                    ["mailbox": mailbox, "count": String(repeated)])
        }
        return result
    }

    /// Reads every message's header (TOP n 0, 100 at a time) and keeps only the keys of
    /// messages still on the server; nothing is removed unless every header was read.
    func compactLedger(_ client: POP3Client, numbers: [Int]) throws {
        let pipelining = (try? client.capabilities().contains("PIPELINING")) ?? false
        var present: Set<String> = []
        var start = 0
        while start < numbers.count {
            let chunk = Array(numbers[start..<min(start + 100, numbers.count)])
            start += chunk.count
            let headers = try client.retrieve(chunk.map { (command: "TOP \($0) 0", bytes: MessageLimits.maximumHeaderBytes + (64 << 10)) }, pipelined: pipelining)
            guard headers.count == chunk.count else { return }
            for header in headers { if let key = InboundIngest.dedupeKey(header: header) { present.insert(key) } }
        }
        let removed = try store.compactKeys(keeping: present)
        if removed > 0 {
            ingest.log.log(.info, "dedupe ledger compacted", ["mailbox": mailbox.name, "removed": String(removed), "kept": String(store.dedupeKeys.count)])
        }
    }

    func poll(_ client: POP3Client, password: Secret, skipping: Set<String> = []) throws -> PollRound {
        var outcome = PollOutcome()
        let endpoint = client.session.endpoint.description
        var uidlByNumber: [Int: String] = [:]
        var hasUIDL = true
        switch Result(catching: { () throws(MailConnectionError) in try client.runMultiline("UIDL") }) {
        case .success(let lines):
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2, let number = Int(parts[0]), number > 0 { uidlByNumber[number] = String(parts[1]) }
            }
            uidlByNumber = Self.disambiguated(uidlByNumber, mailbox: mailbox.name, log: ingest.log)
        case .failure(let error):
            guard error.kind == .commandRefused else { throw error }
            hasUIDL = false
        }
        if !hasUIDL && mailbox.afterFetch != .delete {
            _ = try? client.quit()
            throw PollFailure.configuration("\(endpoint) does not support UIDL, so Carteiro cannot tell new messages from old ones; with this server only after_fetch = \"delete\" works")
        }
        var sizes: [(number: Int, size: Int)] = []
        for line in try client.runMultiline("LIST") {
            let parts = line.split(separator: " ")
            // A size that is not a number (or beyond 64 bits) counts as too large: the message
            // is handed on as headers only, flagged oversize, never skipped silently.
            if parts.count >= 2, let number = Int(parts[0]), number > 0 { sizes.append((number, InboundIngest.announcedSize(UInt64(parts[1])))) }
        }
        sizes.sort { $0.number < $1.number }
        // The dedupe ledger stays bounded, as for IMAP: the keys of messages gone from the
        // server go once there are well more keys than messages (the headers are read by TOP).
        if store.dedupeKeys.count > sizes.count + (IMAPPoller.ledgerSlack ?? max(1000, sizes.count)) {
            try compactLedger(client, numbers: sizes.map(\.number))
        }

        var state = store.state
        let handed = Set(state.uidls)
        let firstPoll = state.uidValidity == nil && state.uidls.isEmpty && state.handedOn == 0
        // POP3 knows no \Seen: import_existing = none means "what is there now is old".
        if firstPoll && mailbox.importExisting == .none && hasUIDL {
            state.uidValidity = 0
            state.uidls = sizes.compactMap { uidlByNumber[$0.number] }
            try store.record(state)
            try client.quit()
            return .done(outcome)
        }
        // Not those that broke this poll's connection in an earlier round: the next poll's.
        let pending = sizes.filter { item in
            guard hasUIDL else { return true }
            guard let uidl = uidlByNumber[item.number] else { return false }
            return !handed.contains(uidl) && !skipping.contains(uidl)
        }
        // Handed on before but still on the server (a QUIT that failed, a crash): delete them now.
        // (Not those given up as unreadable: they stay on the server.)
        let givenUp = state.givenUp
        var toDelete: [Int] = mailbox.afterFetch == .delete && hasUIDL
            ? sizes.compactMap { item in uidlByNumber[item.number].flatMap { handed.contains($0) && !givenUp.contains($0) ? item.number : nil } }
            : []
        // RETR of batch n+1 overlaps the parsing and commit of batch n (see IngestPipeline);
        // with PIPELINING (RFC 2449) a batch's RETRs go out together: one round trip, not one a message.
        let pipelining = pending.isEmpty ? false : try client.capabilities().contains("PIPELINING")
        let pipeline = IngestPipeline<[Int]>(ingest)
        defer { pipeline.close() }
        // One bad message must not stop the mailbox (as for IMAP): a failed batch's messages
        // are fetched alone, and one that fails alone poll after poll is handed on as
        // unreadable. Without UIDL a message has no name across sessions, so this needs UIDL.
        let suspects = Set(state.suspects)
        let strikes = state.strikes
        let batches = InboundIngest.batches(pending, size: \.size) { item in
            guard hasUIDL, let uidl = uidlByNumber[item.number] else { return false }
            return suspects.contains(uidl) || strikes[uidl] != nil
        }
        for batch in batches {
            if batch.count == 1, let item = batch.first, hasUIDL, let uidl = uidlByNumber[item.number],
               let strike = strikes[uidl], strike.count >= MailboxState.Strike.limit {
                try handOnUnreadable(uidl, size: item.size, strike: strike, pipeline: pipeline)
                continue
            }
            let oversize = batch.map { $0.size > mailbox.maxMessageSize }
            // What each answer may hold: the announced size twice over (RFC 1939 §11: sizes
            // may be approximate), or a header block for TOP.
            let commands = zip(batch, oversize).map { item, isOversize in
                isOversize ? (command: "TOP \(item.number) 0", bytes: MessageLimits.maximumHeaderBytes + (64 << 10))
                           : (command: "RETR \(item.number)", bytes: 2 * item.size + (64 << 10))
            }
            let bodies: [[UInt8]]
            do {
                bodies = try client.retrieve(commands, pipelined: pipelining)
            } catch {
                if hasUIDL {
                    pipeline.drain()
                    ingest.recordFetchFailure(keys: batch.compactMap { uidlByNumber[$0.number] }, reason: error.redacting(password, user: mailbox.user).description)
                    // A message alone got its strike: the poll goes on without it (on this
                    // connection if the server only refused it, else on a new one), and at its
                    // last strike it is handed on as unreadable now.
                    if batch.count == 1, let item = batch.first, let uidl = uidlByNumber[item.number] {
                        if let strike = store.state.strikes[uidl], strike.count >= MailboxState.Strike.limit {
                            try handOnUnreadable(uidl, size: item.size, strike: strike, pipeline: pipeline)
                        }
                        if !client.session.isBroken { continue }
                        let (handedOn, duplicates) = pipeline.finish()
                        outcome.handedOn += handedOn
                        outcome.skippedDuplicates += duplicates
                        return .struck(key: uidl, cause: error.redacting(password, user: mailbox.user), sofar: outcome)
                    }
                }
                throw error
            }
            var fetched: [InboundIngest.Fetched] = []
            var batchUIDLs: [String] = []
            for (item, (body, isOversize)) in zip(batch, zip(bodies, oversize)) {
                let uidl = uidlByNumber[item.number] ?? "sha256-" + String(Digest.hex(Digest.sha256(body)).prefix(32))
                batchUIDLs.append(uidl)
                fetched.append(.init(origin: .pop3(uidl: uidl), bytes: body, size: item.size, oversize: isOversize))
            }
            let uidls = batchUIDLs
            try pipeline.submit(fetched, token: batch.map(\.number)) { state in
                state.uidValidity = 0
                let known = Set(state.uidls)
                state.uidls += uidls.filter { !known.contains($0) }
                let handed = Set(uidls)
                state.forget { handed.contains($0) }
            }
        }
        pipeline.drain()
        toDelete += try pipeline.takeCommitted().flatMap { $0 }
        // A UIDL is kept until the server stops listing it.
        let listed = Set(uidlByNumber.values)
        var pruned = store.state
        pruned.uidValidity = 0
        if hasUIDL {
            pruned.uidls = pruned.uidls.filter { listed.contains($0) }
            // A message the server no longer lists needs no more tries, given up or not.
            pruned.suspects.removeAll { !listed.contains($0) }
            pruned.strikes = pruned.strikes.filter { listed.contains($0.key) }
        }
        if mailbox.afterFetch == .delete {
            for number in toDelete {
                if (try? client.run("DELE \(number)")) == nil {
                    outcome.afterFetchProblem = "the server refused DELE \(number)"
                }
            }
        }
        // DELE takes effect only with a successful QUIT; otherwise the server keeps the messages.
        do {
            try client.quit()
        } catch {
            if mailbox.afterFetch == .delete && !toDelete.isEmpty {
                outcome.afterFetchProblem = "QUIT failed, so the server rolled back the deletions: \(error.description)"
            }
        }
        if pruned != store.state { try store.record(pruned) }
        let (handedOn, duplicates) = pipeline.finish()
        outcome.handedOn += handedOn
        outcome.skippedDuplicates += duplicates
        return .done(outcome)
    }

    /// A message given up after its strikes: handed on as message.unreadable, left on the server.
    func handOnUnreadable(_ uidl: String, size: Int, strike: MailboxState.Strike, pipeline: IngestPipeline<[Int]>) throws(PollFailure) {
        let reason = "the server failed to send this message \(strike.count) times: \(strike.reason)"
        ingest.log.log(.error, "message handed on as unreadable", ["mailbox": mailbox.name, "message": uidl, "reason": reason])
        try pipeline.submit([.init(origin: .pop3(uidl: uidl), bytes: [], size: size, oversize: false, unreadable: reason)], token: []) { state in
            state.uidValidity = 0
            if !state.uidls.contains(uidl) { state.uidls.append(uidl) }
            state.forget { $0 == uidl }
        }
    }
}
