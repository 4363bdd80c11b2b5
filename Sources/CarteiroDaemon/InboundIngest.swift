import CarteiroConfig
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// Results filled in by concurrent workers, one slot each.
final class BuildResults: Sendable {
    enum Built: Sendable {
        case staged(StagedMessage)
        /// A routing rule dropped it: nothing written, the message left on the server.
        case dropped(DroppedMessage)
        case failed(PollFailure)
    }
    private let slots: Mutex<[Built?]>
    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }
    func set(_ index: Int, _ value: Built) { slots.withLock { $0[index] = value } }
    func get(_ index: Int) -> Built? { slots.withLock { $0[index] } }
}

/// A message a routing rule dropped: what the journal says of it.
struct DroppedMessage: Sendable {
    /// The source's key: it stays on the server, untouched by `after_fetch`.
    var key: String
    var rule: String
    var reason: String
    var summary: [(String, String)]
}

/// The part of a poll that does not depend on the protocol: a fetched message becomes an
/// event, staged durably, unless this mailbox handed the same message on before.
struct InboundIngest {
    let mailbox: InboundMailbox
    let contract: String?
    let builder: EventBuilder
    let store: any MailboxLedger
    let log: DaemonLog
    /// Where alerts go (`sender.flooding`), beside the messages' events.
    let events: any StateStore
    /// The mailbox's flood limits per correspondent.
    let flood: FloodGuard

    struct Fetched: Sendable {
        /// The source's key of the message (see `SourceItem.key`).
        var key: String
        var origin: MessageOrigin
        var bytes: [UInt8]
        var size: Int
        var oversize: Bool
        /// Given up after `Strike.limit` failed fetches: why (see `EventBuilder.Input`).
        var unreadable: String? = nil
    }

    /// A batch is committed (one group commit) every this many messages or bytes; a message
    /// larger than `batchBytes` goes alone.
    static let batchMessages = 200
    static let batchBytes = 16 << 20
    /// The first batch is small and each next one twice as large, up to `batchMessages`: the
    /// parsing and committing threads get work early instead of waiting for a full batch.
    static let firstBatchMessages = 25

    /// The largest size a server may announce that Carteiro takes at its word. Anything above
    /// (up to 2^64 − 1 from a lying server) counts as this much: far over any
    /// `max_message_size`, so the message is fetched as headers only and flagged oversize,
    /// and sums of sizes cannot overflow.
    static let largestAnnouncedSize = 1 << 40

    /// A size a server announced (`RFC822.SIZE`, POP3 `LIST`): nil or unreadable counts as
    /// the largest, so nothing unknown is downloaded whole.
    static func announcedSize(_ value: UInt64?) -> Int {
        guard let value else { return largestAnnouncedSize }
        return value > UInt64(largestAnnouncedSize) ? largestAnnouncedSize : Int(value)
    }

    /// The batches of a poll, with one bad message in mind: suspects (the messages of a batch
    /// whose fetch failed) and messages with strikes go one to a batch, so that a failure
    /// names its message; the rest are batched as usual.
    static func batches<Item>(_ items: [Item], size: (Item) -> Int, alone: (Item) -> Bool) -> [[Item]] {
        var batches: [[Item]] = []
        var run: [Item] = []
        for item in items {
            if alone(item) {
                batches += Self.batches(run, size: size)
                run.removeAll()
                batches.append([item])
            } else {
                run.append(item)
            }
        }
        return batches + Self.batches(run, size: size)
    }

    /// A batch's fetch failed: its messages become suspects (fetched alone from the next poll
    /// on), or, for a message already alone, it gets a strike. Called with the pipeline
    /// drained, so the state is the last one committed. Never throws: the poll's own failure
    /// is what the caller reports.
    func recordFetchFailure(keys: [String], reason full: String) {
        // What a server said can be a megabyte long: the state file keeps the start of it.
        let reason = full.count > 500 ? String(full.prefix(500)) + "…" : full
        var state = store.state
        if keys.count == 1, let key = keys.first {
            var strike = state.strikes[key] ?? MailboxState.Strike(count: 0, reason: reason)
            strike.count += 1
            strike.reason = reason
            state.strikes[key] = strike
            state.suspects.removeAll { $0 == key }
            log.log(.warning, strike.count >= MailboxState.Strike.limit
                    ? "a message cannot be fetched; it will be handed on as message.unreadable"
                    : "a message could not be fetched; it will be tried again alone",
                    ["mailbox": mailbox.name, "message": key, "failures": String(strike.count), "reason": reason])
        } else {
            state.suspects = Array(Set(state.suspects).union(keys)).sorted()
            log.log(.warning, "a batch could not be fetched; its messages will be fetched one at a time",
                    ["mailbox": mailbox.name, "messages": String(keys.count), "reason": reason])
        }
        do throws(DurableFiles.Failure) {
            try store.record(state)
        } catch {
            log.log(.error, "cannot record a failed fetch", ["mailbox": mailbox.name, "reason": error.description])
        }
    }

    /// Splits the messages to fetch, in order, into the batches of a poll.
    static func batches<Item>(_ items: [Item], size: (Item) -> Int) -> [[Item]] {
        var batches: [[Item]] = []
        var index = 0
        while index < items.count {
            var batch: [Item] = []
            var bytes = 0
            let limit = min(batchMessages, firstBatchMessages << min(batches.count, 8))
            while index < items.count, batch.count < limit, batch.isEmpty || bytes + Self.clamped(size(items[index])) <= batchBytes {
                batch.append(items[index])
                bytes += Self.clamped(size(items[index]))
                index += 1
            }
            batches.append(batch)
        }
        return batches
    }

    /// Before a poll fetches anything: a batch whose commit failed after its commit point is
    /// finished first (never fetched and handed on again); while the disk refuses, the poll fails.
    func finishInterruptedCommit() throws(PollFailure) {
        do {
            try store.finishInterruptedCommit()
        } catch {
            throw .storage("a batch handed on earlier could not be finished: \(error.description)")
        }
    }

    static func clamped(_ size: Int) -> Int { min(max(size, 0), largestAnnouncedSize) }

    /// What recognises a message handed on before (after a new UIDVALIDITY, say): its
    /// Message-ID together with a hash of who sent it to whom, when and about what. The
    /// Message-ID alone is not enough: broken generators and forgers reuse one for different
    /// messages, which must not become one event. A message without one: a hash of its header.
    static func dedupeKey(_ event: RequestEvent, bytes: [UInt8]) -> String {
        // The event's message is already parsed: its header is read again only without a Message-ID.
        guard let message = event.message, let id = message.messageID, !id.isEmpty else {
            let (_, bodyStart) = HeaderBlock.parse(bytes[...])
            return "sha256:" + Digest.hex(Digest.sha256(Array(bytes[..<bodyStart])))
        }
        return identityKey(id: id, header: message.header)
    }

    /// The key of a message that has a Message-ID, from its header alone (the ledger's
    /// compaction reads only headers from the server).
    static func dedupeKey(header bytes: [UInt8]) -> String? {
        let message = MailMessage.parse(bytes)
        guard let id = message.messageID, !id.isEmpty else { return nil }
        return identityKey(id: id, header: message.header)
    }

    static func identityKey(id: String, header: HeaderBlock) -> String {
        var identity: [UInt8] = []
        for field in ["from", "to", "cc", "date", "subject"] {
            identity += header.raw(field) ?? []
            identity.append(0)
        }
        return "id:" + id + " " + String(Digest.hex(Digest.sha256(identity)).prefix(16))
    }

    /// Whether `key` was handed on: as it is, or as versions before 2026-11 kept it (the
    /// Message-ID alone), so that state written by them still recognises their messages.
    static func handedOnBefore(_ key: String, keys: Set<String>) -> Bool {
        if keys.contains(key) { return true }
        guard key.hasPrefix("id:"), let space = key.lastIndex(of: " ") else { return false }
        return keys.contains(String(key[..<space]))
    }

    /// Parses each message, renders its event and writes its files under temporary names:
    /// pure work and independent files, so spread over the cores. `token` makes the temporary
    /// names of this batch unique. Batches of a mailbox are built one at a time, in order (their
    /// events' times, taken here, are the spool's order).
    func build(_ messages: [Fetched], token: String) -> BuildResults {
        let now = Int64(Date().timeIntervalSince1970)
        let built = BuildResults(count: messages.count)
        // Batches are built one after the other: their events' times follow the poll's order.
        let stamps = store.reserveStamps(messages.count)
        for entry in store.prepareBatch() { log.log(.warning, RefusedEntry.message, entry.fields) }
        // Counted in the source's order, before the events are built side by side.
        let (floods, crossed) = flood.check(messages, store: store, now: now)
        for crossing in crossed {
            let alert = SenderFlooding(mailbox: mailbox.name, contract: contract, sender: crossing.sender, count: crossing.count,
                                       limit: crossing.limit, windowSeconds: mailbox.floodWindow.components.seconds, at: now)
            log.log(.warning, "sender flooding", ["mailbox": mailbox.name, "contract": contract ?? "", "sender": crossing.sender,
                                                  "limit": String(crossing.limit), "window": ConfigDuration.format(mailbox.floodWindow)])
            do {
                try events.writeEvent(id: alert.id, bytes: alert.json().renderedBytes())
            } catch {
                log.log(.error, "cannot write event", ["mailbox": mailbox.name, "event": "sender.flooding", "reason": error.description])
            }
        }
        DispatchQueue.concurrentPerform(iterations: messages.count) { index in
            let message = messages[index]
            var input = EventBuilder.Input(mailbox: mailbox.name, contract: contract, origin: message.origin,
                                           receivedAt: now, bytes: message.bytes, size: message.size, oversize: message.oversize,
                                           unreadable: message.unreadable)
            input.authservIDs = Set(mailbox.authservIDs)
            input.flagsUnverifiedSender = mailbox.senderVerification != .off
            input.flood = floods[index]
            let (event, attachments) = builder.build(input)
            if let drop = event.routing?.dropped {
                built.set(index, .dropped(DroppedMessage(key: message.key, rule: drop.rule, reason: drop.reason, summary: [
                    ("event", event.id), ("message_id", event.message?.messageID ?? ""), ("from", event.message?.from?.address ?? ""),
                    ("subject", event.message?.subject ?? ""), ("rule", drop.rule), ("reason", drop.reason),
                ])))
                return
            }
            // A forged-looking sender, where the mailbox says so, waits for a person.
            let held = mailbox.senderVerification == .quarantine && event.authentication?.verdict == .fail
            do throws(DurableFiles.Failure) {
                // An unreadable message has no content to recognise it by: its own id is its key.
                let key = message.unreadable == nil ? Self.dedupeKey(event, bytes: message.bytes) : "unreadable:" + event.id
                var staged = try store.stage(id: event.id, token: "\(token)-\(index)", dedupeKey: key,
                                             event: event.renderedBytes(), raw: message.bytes, attachments: attachments,
                                             stamp: stamps.advanced(byMicroseconds: index), held: held)
                // The contract a rule set, if one did: the journal names the event's own.
                staged.summary = [("contract", event.contract ?? ""), ("event", event.id), ("type", event.type), ("message_id", event.message?.messageID ?? ""),
                                  ("from", event.message?.from?.address ?? ""), ("request", event.request ?? "")]
                if held { staged.summary.append(("quarantined", "sender failed authentication")) }
                built.set(index, .staged(staged))
            } catch {
                built.set(index, .failed(.storage(error.description)))
            }
        }
        return built
    }

    /// Removes the temporary files of every message of a batch that will not be committed.
    func discard(_ count: Int, built: BuildResults) {
        for index in 0..<count {
            if case .staged(let message)? = built.get(index) { store.discard(message) }
        }
    }

    /// Keeps each staged message not handed on before, in order, and discards the files of the
    /// others; returns what to commit, how many were duplicates, and what the rules dropped.
    func select(_ count: Int, built: BuildResults, seenInBatch: inout Set<String>) throws(PollFailure)
        -> (staged: [StagedMessage], duplicates: Int, dropped: [DroppedMessage]) {
        var staged: [StagedMessage] = []
        var duplicates = 0
        var dropped: [DroppedMessage] = []
        var failure: PollFailure?
        for index in 0..<count {
            switch built.get(index) {
            case .dropped(let message)?:
                dropped.append(message)
            case .staged(let message)?:
                if failure != nil || Self.handedOnBefore(message.dedupeKey, keys: store.dedupeKeys) || seenInBatch.contains(message.dedupeKey) {
                    if failure == nil { duplicates += 1 }
                    store.discard(message)
                    continue
                }
                seenInBatch.insert(message.dedupeKey)
                staged.append(message)
            case .failed(let error)?:
                failure = failure ?? error
            case nil:
                failure = failure ?? .storage("a message of the batch was not built")
            }
        }
        if let failure {
            staged.forEach(store.discard)
            throw failure
        }
        return (staged, duplicates, dropped)
    }
}

/// A poll's hand-over, off the poll's thread: while the poll reads batch n+1 from the server,
/// batch n is parsed (on every core) and then staged and committed (one serial queue, so the
/// store sees batches in order). At most `depth` batches wait or work behind the one being read.
///
/// The poll learns which batches are durable from `takeCommitted`, so that `after_fetch` is
/// only ever applied to those; a failed commit stops every later one, so the state never moves
/// past a batch that is not on disk. `drain` must run before the poll returns, whatever happens.
final class IngestPipeline<Token: Sendable>: Sendable {
    private let ingest: InboundIngest
    private let building = DispatchQueue(label: "carteiro.ingest.build")
    private let committing = DispatchQueue(label: "carteiro.ingest.commit")
    private let room: DispatchSemaphore
    private let inFlight = DispatchGroup()
    /// What the poll learns: the first failure, the batches committed since it last asked, the counts.
    private struct Progress {
        var failure: PollFailure?
        var committed: [Token] = []
        var handedOn = 0
        var duplicates = 0
        var dropped = 0
        var reported = false
    }
    private let progress = Mutex(Progress())
    /// The keys of the poll's messages so far (the committing queue's alone, so never contended).
    private let seenInBatch = Mutex<Set<String>>([])
    /// Batches submitted (the poll's thread alone): names each batch's temporary files.
    private let batchCount = Atomic<Int>(0)
    private let nonce = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    init(_ ingest: InboundIngest, depth: Int = 2) {
        self.ingest = ingest
        room = DispatchSemaphore(value: depth)
    }

    /// Queues a batch; `advance` turns the state before it into the state after it. Blocks
    /// while `depth` batches are already queued.
    func submit(_ messages: [InboundIngest.Fetched], token: Token, advance: @escaping @Sendable (inout MailboxState) -> Void) throws(PollFailure) {
        if let failure = progress.withLock({ $0.failure }) { throw failure }
        room.wait()
        inFlight.enter()
        let number = batchCount.add(1, ordering: .relaxed).newValue
        let prefix = "\(nonce)-\(number)"
        building.async {
            let built = self.ingest.build(messages, token: prefix)
            self.committing.async {
                defer { self.room.signal(); self.inFlight.leave() }
                guard self.progress.withLock({ $0.failure == nil }) else {
                    // An earlier batch failed: this one is not committed, its files go.
                    self.ingest.discard(messages.count, built: built)
                    return
                }
                do throws(PollFailure) {
                    let (staged, duplicates, dropped) = try self.seenInBatch.withLock { seen throws(PollFailure) in
                        try self.ingest.select(messages.count, built: built, seenInBatch: &seen)
                    }
                    var next = self.ingest.store.state
                    advance(&next)
                    // A dropped message stays on the server: its key is kept, so that no
                    // after_fetch (now, or as a leftover later) touches it.
                    if self.ingest.mailbox.afterFetch != .keep { next.kept.formUnion(dropped.map(\.key)) }
                    do throws(DurableFiles.Failure) {
                        try self.ingest.store.commit(staged, newState: next)
                    } catch {
                        throw .storage(error.description)
                    }
                    self.progress.withLock {
                        $0.committed.append(token)
                        $0.handedOn += staged.count
                        $0.duplicates += duplicates
                        $0.dropped += dropped.count
                    }
                    // One line per message handed on: "did the mail from X arrive?" is a journal query.
                    let mailbox = self.ingest.mailbox.name, contract = self.ingest.contract ?? ""
                    self.ingest.log.log(.info, "message handed on", lines: staged.map {
                        [("mailbox", mailbox)] + $0.summary.filter { !$0.1.isEmpty }
                    })
                    if !dropped.isEmpty {
                        self.ingest.log.log(.notice, "message dropped by a routing rule", lines: dropped.map {
                            [("mailbox", mailbox), ("contract", contract)] + $0.summary.filter { !$0.1.isEmpty }
                        })
                    }
                } catch {
                    self.progress.withLock { if $0.failure == nil { $0.failure = error } }
                }
            }
        }
    }

    /// The batches committed since the last call, oldest first; throws the first failure.
    func takeCommitted() throws(PollFailure) -> [Token] {
        let (failure, committed) = progress.withLock { progress -> (PollFailure?, [Token]) in
            if let failure = progress.failure { return (failure, []) }
            defer { progress.committed.removeAll() }
            return (nil, progress.committed)
        }
        if let failure { throw failure }
        return committed
    }

    /// Waits for every queued batch; then the counts are final.
    func drain() {
        inFlight.wait()
    }

    /// Waits for every queued batch and returns the counts, which the poll then reports.
    func finish() -> (handedOn: Int, duplicates: Int, dropped: Int) {
        drain()
        return progress.withLock {
            $0.reported = true
            return ($0.handedOn, $0.duplicates, $0.dropped)
        }
    }

    /// The way out of every poll (a `defer`), failed or not: waits for every queued batch, and
    /// logs what was handed on all the same if the poll failed, which its outcome cannot carry.
    func close() {
        drain()
        // Nothing is staged or committed any more: the store's open directories are closed.
        ingest.store.pollEnded()
        do {
            try ingest.flood.save(to: ingest.store)
        } catch {
            ingest.log.log(.error, "cannot keep the flood counts", ["mailbox": ingest.mailbox.name, "reason": error.description])
        }
        let (count, unreported) = progress.withLock { ($0.handedOn, !$0.reported) }
        if unreported && count > 0 {
            ingest.log.log(.info, "messages handed on before the poll failed",
                           ["mailbox": ingest.mailbox.name, "contract": ingest.contract ?? "", "count": String(count)])
        }
    }
}
