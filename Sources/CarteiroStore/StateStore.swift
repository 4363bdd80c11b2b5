#if canImport(Glibc)
import Glibc
#endif

/// Why a store could not do what was asked (a disk that refuses, a file that cannot be made).
package typealias StoreFailure = DurableFiles.Failure

/// Where Carteiro keeps what it must not lose, as the daemon sees it: each inbound mailbox's
/// ledger, the spool's events, the threading secret. The state directory (`StateDirectory`) is
/// the first conformer; a store shared by several nodes (a database) would be another, and the
/// pipeline, the scheduler and the sources would not change.
package protocol StateStore: Sendable {
    /// Where the store is, for the journal (a directory, a database's name).
    var location: String { get }
    /// Where the desk finds the events.
    var spoolLocation: String { get }

    /// Makes ready what the mailboxes need; what it had to refuse on the way (something a
    /// member of the desk's group put where the store's own entries go) is returned, to report.
    func prepare(mailboxes: [String]) throws(StoreFailure) -> [RefusedEntry]

    /// The ledger of one inbound mailbox: its cursor, strikes, dedupe keys and batch commit.
    /// `faults` stops its commits at a named step (the crash tests); nil in the daemon.
    func ledger(for mailbox: String, faults: (@Sendable (String) throws(StoreFailure) -> Void)?) throws(StoreFailure) -> any MailboxLedger

    /// The key that signs request ids in subjects and Message-IDs, made once and kept.
    func threadingSecret() throws(StoreFailure) -> [UInt8]

    /// An event that is not a message (a mailbox failing, an authorization running out),
    /// written into the spool durably.
    func writeEvent(id: String, bytes: [UInt8]) throws(StoreFailure)

    /// The outbound queue. `faults` stops its writes at a named step (the crash tests).
    func outboundQueue(faults: (@Sendable (String) throws(StoreFailure) -> Void)?) -> any OutboundQueueStore

    /// Claims the store for this process, without waiting: one daemon at a time polls its
    /// mailboxes into its spool and drains its queue. Held while the claim is kept; a store
    /// drops it when its holder ends, however it ends.
    func claim() throws(StateLock.Failure) -> any StoreClaim
}

/// A daemon's hold on its store (see `StateStore.claim`): released when the last reference goes.
package protocol StoreClaim: AnyObject, Sendable {
    /// What is held, for messages about it (a lock file, a database's lease).
    var location: String { get }
}

/// One inbound mailbox's durable state, as the poll and its pipeline use it, in this order:
/// messages staged (their files or rows written, not yet handed on), then committed together
/// with the cursor they reach (the commit point: after it each message is handed on exactly
/// once, whatever crashes), and only then `after_fetch` on the server.
///
/// One poll at a time uses a ledger (the scheduler never runs two polls of a mailbox); within
/// it, messages are staged from several threads at once, and batches are committed in order.
package protocol MailboxLedger: AnyObject, Sendable {
    var name: String { get }
    /// The state as last committed or recorded.
    var state: MailboxState { get }
    /// The keys of every message handed on (see `InboundIngest.dedupeKey`).
    var dedupeKeys: Set<String> { get }

    /// A commit cut short after its commit point is finished before anything else is fetched.
    func finishInterruptedCommit() throws(StoreFailure)
    /// A state change that hands nothing on (a new cursor, a strike).
    func record(_ state: MailboxState) throws(StoreFailure)
    /// Times for a batch's events, `count` of them, increasing, later than any before.
    func reserveStamps(_ count: Int) -> timespec
    /// Writes a message's event, raw message and attachments, not yet handed on. Safe from
    /// several threads at once for different messages.
    /// `held`: the event goes to the quarantine instead of the spool.
    func stage(id: String, token: String, dedupeKey: String, event: [UInt8], raw: [UInt8], attachments: [(sha256: String, data: [UInt8])],
               stamp: timespec?, held: Bool) throws(StoreFailure) -> StagedMessage
    /// A staged message that will not be committed: what it wrote goes.
    func discard(_ message: StagedMessage)
    /// Hands the batch on with the state it reaches: all of it, or (after a crash) none.
    func commit(_ messages: [StagedMessage], newState: MailboxState) throws(StoreFailure)
    /// Keeps the dedupe keys of messages still on the server; returns how many went.
    func compactKeys(keeping present: Set<String>) throws(StoreFailure) -> Int
    /// Before a batch is built: what the store had to refuse since the last (to report).
    func prepareBatch() -> [RefusedEntry]
    /// After a poll's last batch: whatever the store held open for the poll is let go.
    func pollEnded()
    /// How many messages each correspondent sent in the current window (flood limits), as last kept.
    func senderCounts() -> SenderCounts
    /// Keeps the counts (at the end of a poll that changed them); they survive restarts.
    func recordSenderCounts(_ counts: SenderCounts) throws(StoreFailure)
}

extension StateDirectory: StateStore {
    package var location: String { root }
    package var spoolLocation: String { spool }

    package func ledger(for mailbox: String, faults: (@Sendable (String) throws(StoreFailure) -> Void)?) throws(StoreFailure) -> any MailboxLedger {
        try MailboxStore(directory: self, mailbox: mailbox, faults: faults)
    }

    package func outboundQueue(faults: (@Sendable (String) throws(StoreFailure) -> Void)?) -> any OutboundQueueStore {
        OutboundQueue(stateDirectory: root, faults: faults)
    }

    /// The directory's lock file (see `StateLock`).
    package func claim() throws(StateLock.Failure) -> any StoreClaim {
        try StateLock.acquire(stateDirectory: root)
    }
}

extension MailboxStore: MailboxLedger {}

extension timespec {
    /// This time plus `microseconds` (a batch's n-th event gets its first time plus n).
    package func advanced(byMicroseconds microseconds: Int) -> timespec {
        let nanoseconds = Int64(tv_nsec) + Int64(microseconds % 1_000_000) * 1_000
        return timespec(tv_sec: tv_sec + microseconds / 1_000_000 + Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    }
}

/// The outbound queue as the lanes, `carteiro send`, the queue commands and `status` use it:
/// each outbound mailbox's lane of messages (content and envelope, each recipient's state), the
/// messages given up, and each lane's sending ledger. `OutboundQueue` (`queue/LANE/ID.eml` and
/// `ID.json`) is the first conformer.
package protocol OutboundQueueStore: Sendable {
    /// Queues messages durably, all or none.
    func enqueue(_ items: [(QueuedMessage, [UInt8])]) throws(StoreFailure)
    /// A lane's messages, oldest first.
    func messages(in lane: String) -> [QueuedMessage]
    func message(in lane: String, id: String) -> QueuedMessage?
    /// A token for each of a lane's entries that changes when the entry does.
    func stamps(in lane: String) -> [String: Int64]
    /// A token that changes when anything in the lane does (nil: the lane holds nothing).
    func changeStamp(of lane: String) -> DirectoryStamp?
    func lanes() -> [String]
    func failedMessages() -> [QueuedMessage]
    func allIDs() -> Set<String>
    func holds(_ id: String, in lane: String) -> Bool
    func messageBytes(_ item: QueuedMessage) -> [UInt8]?
    func update(_ item: QueuedMessage) throws(StoreFailure)
    func remove(_ item: QueuedMessage)
    func fail(_ item: QueuedMessage) throws(StoreFailure)
    /// An entry that cannot be read, put where an operator sees it; where it went.
    func setAside(_ id: String, in lane: String) throws(StoreFailure) -> String
    func retry(id: String) throws(StoreFailure) -> Bool
    func delete(id: String) -> Bool
    /// What the lane sent lately, for its sending limits.
    func rateLedger(for lane: String) -> any SendingLedger
    /// How many notifications each recipient got from the lane in the current window.
    func recipientCounts(for lane: String) -> SenderCounts
    func recordRecipientCounts(_ counts: SenderCounts, for lane: String) throws(StoreFailure)
    /// Records which contract each request belongs to (see `RequestContracts`), before the
    /// messages about them are queued.
    func recordContracts(_ pairs: [(request: String, contract: String)]) throws(StoreFailure)
}

extension OutboundQueue: OutboundQueueStore {
    package func changeStamp(of lane: String) -> DirectoryStamp? { DirectoryStamp(self.lane(lane)) }
    package func rateLedger(for lane: String) -> any SendingLedger { RateLedger(path: root + "/" + lane + "/.rate") }

    package func recipientCounts(for lane: String) -> SenderCounts {
        DurableFiles.read(root + "/" + lane + "/.recipients.json").map { SenderCounts(json: $0) } ?? SenderCounts()
    }

    package func recordRecipientCounts(_ counts: SenderCounts, for lane: String) throws(StoreFailure) {
        try DurableFiles.makeDirectory(root + "/" + lane)
        try DurableFiles.replace(root + "/" + lane + "/.recipients.json", with: counts.json().renderedCompact())
    }

    package func recordContracts(_ pairs: [(request: String, contract: String)]) throws(StoreFailure) {
        guard !pairs.isEmpty else { return }
        let contracts = RequestContracts(stateDirectory: stateDirectory)
        for (request, contract) in pairs { try contracts.record(request: request, contract: contract) }
    }
}
