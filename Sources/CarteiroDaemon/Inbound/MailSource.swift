import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroStore

/// A kind of server Carteiro fetches mail from: what `struct driver` is to mbsync. IMAP and POP3
/// are its conformers (`IMAPSource`, `POP3Source`); `SourcePoll` drives any of them through the
/// same rounds, batches, strikes, exactly-once commit and `after_fetch`, and nothing above it
/// knows which protocol it talks.
///
/// A source owns its protocol: connecting and logging in, listing what is new since its
/// cursor, fetching a batch, applying `after_fetch`, naming a message's origin. Its cursor is
/// its own `Codable` value, which the mailbox's store keeps opaque with each batch it commits.
protocol MailSource: Sendable {
    associatedtype Cursor: Codable & Equatable & Sendable
    associatedtype Connection: SourceConnection where Connection.Cursor == Cursor

    /// The name its cursors are stored under (`imap`, `pop3` …).
    static var kind: String { get }

    var mailbox: InboundMailbox { get }

    /// The position a stored cursor holds, when this kind wrote it (or, for a built-in source,
    /// when a state file older than cursors holds its members); nil: poll as the first time.
    static func cursor(from stored: SourceCursor) -> Cursor?

    /// Runs one round of a poll on a logged-in connection, made for it (`fresh`) or kept from
    /// an earlier poll, and then keeps or closes that connection as the round ended. Whatever
    /// the round throws is sorted into a `PollFailure`, with the password taken out.
    func withConnection(credentials: MailSession.Credentials, login: MailboxLogin, fresh: Bool, deadline: ContinuousClock.Instant,
                        _ round: (Connection) throws -> PollRound) throws(PollFailure) -> PollRound

    /// What tells the scheduler of new mail between polls (IMAP IDLE), when the source and the
    /// mailbox have one; nil: the schedule alone.
    func newsWatcher(login: MailboxLogin, log: DaemonLog, news: @escaping @Sendable () -> Void) -> NewsWatcher?
}

extension MailSource {
    static func cursor(from stored: SourceCursor) -> Cursor? { stored.decode(Cursor.self, kind: kind) }

    func newsWatcher(login: MailboxLogin, log: DaemonLog, news: @escaping @Sendable () -> Void) -> NewsWatcher? { nil }

    /// The mailbox polled through this source: the pipeline, commit and rounds of `SourcePoll`.
    func poll(_ ingest: InboundIngest, login: MailboxLogin) throws(PollFailure) -> PollOutcome {
        try SourcePoll(source: self, ingest: ingest, login: login).poll()
    }
}

/// Something that waits on the server for news between polls (an IDLE connection).
protocol NewsWatcher: AnyObject, Sendable {
    var mailbox: InboundMailbox { get }
    var isStopped: Bool { get }
    func start()
    func stop()
}

/// A message as a source lists it, before its content is fetched.
struct SourceItem: Sendable, Hashable {
    /// What names the message across sessions (`UIDVALIDITY/UID`, a UIDL): its suspicion and its
    /// strikes are kept under it, so it must not change from poll to poll.
    var key: String
    /// The size the server announces (clamped; never trusted for memory).
    var size: Int
    /// Its event's id under the mailbox.
    var origin: MessageOrigin
    /// What the source calls it in this session (IMAP: its UID; POP3: its message number), so
    /// that its commands need not parse the key again.
    var number: Int = 0
}

/// What a source finds in one round of a poll.
struct SourceListing<Cursor: Sendable> {
    /// The messages to hand on, in the order their events take.
    var items: [SourceItem] = []
    /// Messages handed on earlier whose `after_fetch` never ran (a crash, a refusal, a
    /// connection lost after the commit): applied before anything is fetched.
    var leftovers: [SourceItem] = []
    /// A position to record before anything is fetched: the first poll, a new UIDVALIDITY.
    var restart: Cursor?
    /// Whether a key of a suspect or a strike no longer names a message on the server: it is
    /// forgotten.
    var isStale: @Sendable (String) -> Bool = { _ in false }
    /// The position once `handed` (the next batch, in order) is handed on; `last`: every item
    /// of the listing is then handed on.
    var advance: @Sendable (_ from: Cursor?, _ handed: [SourceItem], _ last: Bool) -> Cursor
    /// How many messages the server holds, for the dedupe ledger's compaction; nil: no compaction.
    var messageCount: Int?
    /// false when a message has no name across sessions (POP3 without UIDL): one that fails to
    /// fetch then fails the poll, since no strike could find it again.
    var keysAreStable = true
}

/// One logged-in session with a source, for one round of a poll. Used from the poll's thread only.
protocol SourceConnection: AnyObject {
    associatedtype Cursor: Sendable
    associatedtype Request

    /// What is new since `cursor` (nil: the first poll), less the messages in `skipping`
    /// (they broke this poll's connection in an earlier round). `strikes` are the failed
    /// fetches on record: messages with strikes the source has passed over are listed again.
    func list(since cursor: Cursor?, strikes: [String: MailboxState.Strike], skipping: Set<String>) throws -> SourceListing<Cursor>

    /// Asks for a batch's content. The answer is read by `collect`; the next batch is asked for
    /// before this one is committed, so that the server streams while Carteiro parses.
    func request(_ batch: [SourceItem]) throws -> Request

    /// The messages of a batch asked for, in order; one the server no longer has is left out.
    /// Throws `MailConnectionError` when the server cannot or will not send them.
    func collect(_ request: Request) throws -> [InboundIngest.Fetched]

    /// `after_fetch` for messages already handed on durably. A refusal is returned, not
    /// thrown: the messages are safe and will not be fetched again.
    func afterFetch(_ items: [SourceItem]) throws -> String?

    /// Every message's header, for the dedupe ledger's compaction; nil when not every one could be read.
    func everyHeader() throws -> [[UInt8]]?

    /// Whether the connection can carry no further command.
    var isBroken: Bool { get }

    /// The end of a round that went well; returns what it reveals about `after_fetch` (POP3:
    /// a QUIT that failed rolled the deletions back).
    func finish() -> String?
}
