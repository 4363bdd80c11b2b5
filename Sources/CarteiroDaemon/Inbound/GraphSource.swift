import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Dispatch
import Synchronization

/// Microsoft Graph as a mail source, for Microsoft 365 tenants without IMAP: one folder of a
/// user's or a shared mailbox, read by the folder's delta query.
///
/// A round follows every page of the delta query (created messages only, immutable ids) to its
/// deltaLink; the messages are then fetched as MIME (`$value`) in batches, at most 4 requests at
/// once, through the same parser, pipeline and commit as IMAP. The deltaLink is the cursor, kept
/// only once the whole round is committed; until then the cursor keeps the old link and the ids
/// handed on so far, so that a round begun again after a crash passes over them. A link the
/// service no longer knows (410 SyncStateNotFound) starts the folder over: what was handed on
/// before is recognised by its dedupe key, never handed on twice.
struct GraphSource: MailSource {
    struct Cursor: Codable, Equatable, Sendable {
        /// The deltaLink of the last whole round; nil before the first.
        var delta: String?
        /// The messages handed on in the round under way.
        var handed: [String] = []
        /// Messages handed on whose `after_fetch` is not known to have run (a crash, a refusal
        /// between the commit and the change): applied again at the next poll.
        var pending: [String] = []

        init(delta: String?, handed: [String] = [], pending: [String] = []) {
            self.delta = delta
            self.handed = handed
            self.pending = pending
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            delta = try container.decodeIfPresent(String.self, forKey: .delta)
            handed = try container.decodeIfPresent([String].self, forKey: .handed) ?? []
            pending = try container.decodeIfPresent([String].self, forKey: .pending) ?? []
        }
    }

    static let kind = "graph"
    /// Messages per delta page (`Prefer: odata.maxpagesize`).
    static let pageSize = 200
    /// The most messages the cursor keeps waiting for their after_fetch.
    static let pendingLimit = 5_000

    let mailbox: InboundMailbox
    let log: DaemonLog

    func withConnection(credentials: MailSession.Credentials, login: MailboxLogin, fresh: Bool, deadline: ContinuousClock.Instant,
                        _ round: (GraphConnection) throws -> PollRound) throws(PollFailure) -> PollRound {
        let api = GraphAPI(base: GraphAPI.base(server: mailbox.server, port: mailbox.port), user: mailbox.user, token: credentials.password,
                           tls: mailbox.tls, timeout: mailbox.timeout, deadline: deadline)
        let connection = GraphConnection(source: self, api: api)
        return try PollFailure.sorting(mailbox, password: credentials.password) {
            do {
                return try round(connection)
            } catch let failure as GraphAPI.Failure {
                if failure.status == 401 { login.rejected(credentials) }
                throw failure.connectionError
            }
        }
    }
}

/// The messages whose `after_fetch` ran in this round: the cursor's `pending` forgets them.
final class AppliedAfterFetch: Sendable {
    private let ids = Mutex<Set<String>>([])
    func insert(_ id: String) { ids.withLock { _ = $0.insert(id) } }
    func contains(_ id: String) -> Bool { ids.withLock { $0.contains(id) } }
}

/// One round of a Graph mailbox: a token, the folder, the delta pages, the messages.
final class GraphConnection: SourceConnection {
    typealias Cursor = GraphSource.Cursor

    let source: GraphSource
    let api: GraphAPI
    private var folder: String?
    private var destination: String?
    let applied = AppliedAfterFetch()

    init(source: GraphSource, api: GraphAPI) {
        self.source = source
        self.api = api
    }

    var mailbox: InboundMailbox { source.mailbox }
    var isBroken: Bool { false }

    func folderID() throws(GraphAPI.Failure) -> String {
        if let folder { return folder }
        let id = try api.folderID(mailbox.folder)
        folder = id
        return id
    }

    func list(since stored: Cursor?, strikes: [String: MailboxState.Strike], skipping: Set<String>) throws -> SourceListing<Cursor> {
        let folder = try folderID()
        var link = stored?.delta ?? api.initialDeltaURL(folder: folder)
        var resynced = false
        var round: (items: [GraphAPI.DeltaItem], deltaLink: String)
        while true {
            switch try api.deltaRound(from: link, pageSize: GraphSource.pageSize) {
            case .round(let items, let deltaLink):
                round = (items, deltaLink)
            case .expired:
                // The service forgot the link: the folder is read from the start, and what was
                // handed on before is recognised by its dedupe key.
                guard !resynced else {
                    throw GraphAPI.Failure(status: 410, code: "SyncStateNotFound", message: "Graph forgot a delta round it had just begun", requestID: nil, kind: .other)
                }
                source.log.log(.warning, "the Graph delta link expired; the folder is read again (nothing is handed on twice)",
                               ["mailbox": mailbox.name, "folder": mailbox.folder])
                resynced = true
                link = api.initialDeltaURL(folder: folder)
                continue
            }
            break
        }
        // A cursor without a deltaLink is a first round not yet finished: import_existing
        // still decides (the ids handed on so far are in the cursor).
        let firstPoll = stored?.delta == nil && !resynced
        var chosen = round.items
        if firstPoll {
            switch mailbox.importExisting {
            case .none: chosen = []
            case .unseen: chosen = chosen.filter { !$0.isRead }
            case .all: break
            }
        }
        let handed = Set(stored?.handed ?? [])
        var items = chosen.filter { !handed.contains($0.id) && !skipping.contains($0.id) }.map(Self.item)
        // Messages whose fetch failed earlier are not in this round's pages: asked for by id.
        let listed = Set(items.map(\.key))
        for (key, strike) in strikes.sorted(by: { $0.key < $1.key }) where strike.count < MailboxState.Strike.limit && !listed.contains(key) && !skipping.contains(key) {
            items.append(Self.item(GraphAPI.DeltaItem(id: key, isRead: false)))
        }
        let deltaLink = round.deltaLink
        let previous = stored?.delta
        let applied = self.applied
        // Committed batches wait for their after_fetch in `pending` until it is known to have run.
        let changes = mailbox.afterFetch != .keep
        let leftovers = (stored?.pending ?? []).filter { !skipping.contains($0) }.map { Self.item(GraphAPI.DeltaItem(id: $0, isRead: false)) }
        return SourceListing(
            items: items,
            leftovers: leftovers,
            advance: { from, batch, last in
                let start = from ?? Cursor(delta: previous, pending: stored?.pending ?? [])
                // At most `pendingLimit` (the newest): a tenant that refuses after_fetch for
                // good must not grow the cursor without end.
                let pending = changes ? Array((start.pending + batch.map(\.key)).filter { !applied.contains($0) }.suffix(GraphSource.pendingLimit)) : []
                if last { return Cursor(delta: deltaLink, handed: [], pending: pending) }
                return Cursor(delta: start.delta, handed: start.handed + batch.map(\.key), pending: pending)
            },
            messageCount: nil)
    }

    static func item(_ item: GraphAPI.DeltaItem) -> SourceItem {
        // The size is asked for with the batch, before the MIME.
        SourceItem(key: item.id, size: 0, origin: .graph(id: item.id))
    }

    /// Graph answers each message on its own: the batch is fetched when collected.
    func request(_ batch: [SourceItem]) throws -> [SourceItem] { batch }

    /// Each message's size, then its MIME (or its header alone, above max_message_size), at
    /// most `GraphAPI.concurrency` requests at once. A message the service no longer has is
    /// left out; any other failure fails the batch (its messages become suspects).
    func collect(_ batch: [SourceItem]) throws -> [InboundIngest.Fetched] {
        let results = Mutex<[Result<InboundIngest.Fetched?, GraphAPI.Failure>?]>(Array(repeating: nil, count: batch.count))
        let next = Atomic<Int>(0)
        let api = self.api, limit = mailbox.maxMessageSize
        // Its own concurrent queue: requests wait on the network, so four may run on fewer cores.
        let workers = DispatchQueue(label: "carteiro.graph.fetch", attributes: .concurrent)
        let group = DispatchGroup()
        for _ in 0..<min(GraphAPI.concurrency, batch.count) {
            workers.async(group: group) {
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < batch.count else { return }
                    let item = batch[index]
                    let result = Result { () throws(GraphAPI.Failure) -> InboundIngest.Fetched? in
                        do throws(GraphAPI.Failure) {
                            // A size from the service is clamped like any announced size.
                            let size = InboundIngest.announcedSize(UInt64(exactly: try api.size(of: item.key) ?? 0) ?? 0)
                            let oversize = size > limit
                            // A size the service understated still cannot take more than the limit's room.
                            let bytes = oversize ? try api.header(of: item.key) : try api.mime(of: item.key, limit: limit + (64 << 10))
                            return InboundIngest.Fetched(key: item.key, origin: item.origin, bytes: bytes, size: max(size, bytes.count), oversize: oversize)
                        } catch {
                            if error.status == 404 { return nil }
                            if error.kind == .tooLarge {
                                // Larger than announced: its header alone, flagged oversize.
                                let header = try api.header(of: item.key)
                                return InboundIngest.Fetched(key: item.key, origin: item.origin, bytes: header, size: limit + 1, oversize: true)
                            }
                            throw error
                        }
                    }
                    results.withLock { $0[index] = result }
                }
            }
        }
        group.wait()
        var fetched: [InboundIngest.Fetched] = []
        for result in results.withLock({ $0 }) {
            switch result {
            case .success(let message)?: if let message { fetched.append(message) }
            case .failure(let failure)?: throw failure.connectionError
            case nil: throw MailConnectionError(.other, endpoint: "graph", message: "a message of the batch was not fetched")
            }
        }
        return fetched
    }

    /// seen: isRead; delete: into Deleted Items (recoverable); move: to the folder named. Each
    /// one done (or whose message is gone) is noted, so that the cursor stops naming it.
    func afterFetch(_ items: [SourceItem]) throws -> String? {
        var problem: String?
        for item in items {
            do throws(GraphAPI.Failure) {
                switch mailbox.afterFetch {
                case .keep: return nil
                case .seen: try api.markRead(item.key)
                case .delete: try api.delete(item.key)
                case .move(let name):
                    if destination == nil { destination = try api.folderID(name) }
                    if let destination { try api.move(item.key, to: destination) }
                }
                applied.insert(item.key)
            } catch {
                if error.status == 404 {
                    applied.insert(item.key)
                    continue
                }
                problem = error.description
                if error.status == 403 || error.kind == .folderMissing { break }
            }
        }
        return problem
    }

    func everyHeader() throws -> [[UInt8]]? { nil }

    func finish() -> String? { nil }
}
