import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Foundation

/// IMAP as a mail source: the folder examined (or selected, when `after_fetch` changes it), the
/// new UIDs listed with their sizes, bodies fetched with BODY.PEEK[] (headers only above
/// max_message_size), and `after_fetch` as flags, EXPUNGE or MOVE. Sessions are kept between
/// polls, and the mailbox's IDLE connection is lent to its polls (`KeptSessions`).
struct IMAPSource: MailSource {
    /// Where the folder stands: its UIDVALIDITY, the highest UID handed on, and the floor from
    /// which every UID was handed on (older ones may predate Carteiro, with import_existing =
    /// unseen or none), so that after_fetch may be applied to them. The member names are those
    /// of the state files written before cursors, which therefore read as one.
    struct Cursor: Codable, Equatable, Sendable {
        var uidValidity: UInt32
        var lastUID: UInt32
        var afterFetchFrom: UInt32 = 1

        enum CodingKeys: String, CodingKey {
            case uidValidity = "uidvalidity", lastUID = "last_uid", afterFetchFrom = "after_fetch_from"
        }
    }

    static let kind = "imap"

    let mailbox: InboundMailbox
    let log: DaemonLog
    /// Where the session waits between polls (nil: a new connection for each poll).
    var sessions: KeptSessions?

    static func cursor(from stored: SourceCursor) -> Cursor? {
        stored.decode(Cursor.self, kind: stored.kind == SourceCursor.legacy ? SourceCursor.legacy : kind)
    }

    func newsWatcher(login: MailboxLogin, log: DaemonLog, news: @escaping @Sendable () -> Void) -> NewsWatcher? {
        guard mailbox.idle else { return nil }
        let watcher = IdleWatcher(mailbox: mailbox, login: login, log: log, arrived: news)
        sessions?.register(watcher, for: mailbox.name)
        return watcher
    }

    /// A round on the kept or lent connection when there is one (not after a round cut by a
    /// message: `fresh`), else on a new one.
    func withConnection(credentials: MailSession.Credentials, login: MailboxLogin, fresh: Bool, deadline: ContinuousClock.Instant,
                        _ round: (IMAPConnection) throws -> PollRound) throws(PollFailure) -> PollRound {
        let password = credentials.password
        if !fresh, let sessions, let taken = sessions.session(for: mailbox, credentials: credentials) {
            let client = taken.client
            var lender: IdleWatcher?
            if case .lent(_, let watcher) = taken { lender = watcher }
            client.session.sessionDeadline = deadline
            client.maximumFetchLiteral = maximumLiteral
            let before = client.session.bytesReceived
            do throws(PollFailure) {
                let result = try PollFailure.sorting(mailbox, password: password) { try round(IMAPConnection(source: self, client: client)) }
                sessions.done(with: client, lentFrom: lender, failure: result.failure, mailbox: mailbox, credentials: credentials)
                return result
            } catch {
                sessions.done(with: client, lentFrom: lender, failure: error, mailbox: mailbox, credentials: credentials)
                // The kept connection died while it waited, silently (no FIN, no BYE: a server
                // restarted behind a firewall, a NAT that forgot it), and the server said nothing
                // in this poll: a new connection, now. Any other failure is the poll's.
                guard lender == nil, case .connection(let failure) = error, [.connectionLost, .noAnswer].contains(failure.kind),
                      client.session.bytesReceived == before else {
                    throw error
                }
                log.log(.info, "kept connection lost; connecting again", ["mailbox": mailbox.name, "reason": failure.description])
            }
        }
        let session = try PollFailure.openSession(mailbox, credentials: credentials, login: login)
        session.sessionDeadline = deadline
        let client = IMAPClient(session: session)
        client.maximumFetchLiteral = maximumLiteral
        do throws(PollFailure) {
            let result = try PollFailure.sorting(mailbox, password: password) { try round(IMAPConnection(source: self, client: client)) }
            if let sessions, result.failure == nil { sessions.done(with: client, lentFrom: nil, failure: nil, mailbox: mailbox, credentials: credentials) } else { client.logout() }
            return result
        } catch {
            client.logout()
            throw error
        }
    }

    /// The largest body a FETCH may carry: twice the size limit, for servers whose RFC822.SIZE
    /// is approximate; never unbounded.
    var maximumLiteral: Int { max(2 * mailbox.maxMessageSize, 1 << 20) }

    /// What a listing of sizes and flags may bring back for a folder of `exists` messages:
    /// 256 bytes each (flags and keywords included), counted for a million messages at most,
    /// so a folder whatever it announces costs at most 257 MB.
    static func listingAllowance(exists: Int) -> Int {
        (1 << 20) + 256 * min(max(exists, 0), 1 << 20)
    }
}

/// One IMAP session's round: the folder opened, listed, fetched and changed.
final class IMAPConnection: SourceConnection {
    typealias Cursor = IMAPSource.Cursor

    let source: IMAPSource
    let client: IMAPClient
    /// The folder's UIDVALIDITY, as the round's EXAMINE or SELECT said.
    private var uidValidity: UInt32 = 0
    /// How many messages the folder holds, as EXAMINE or SELECT said.
    private var exists = 0

    init(source: IMAPSource, client: IMAPClient) {
        self.source = source
        self.client = client
    }

    var mailbox: InboundMailbox { source.mailbox }
    var isBroken: Bool { client.session.isBroken }
    func finish() -> String? { nil }

    func key(_ uid: UInt32) -> String { "\(uidValidity)/\(uid)" }
    func item(_ uid: UInt32, size: Int) -> SourceItem {
        SourceItem(key: key(uid), size: size, origin: .imap(uidValidity: uidValidity, uid: uid), number: Int(uid))
    }
    /// The UID of an item of this round.
    func uid(of item: SourceItem) -> UInt32 { UInt32(clamping: item.number) }
    /// The UID of a key of this round's UIDVALIDITY.
    func uid(_ key: String) -> UInt32? {
        let prefix = "\(uidValidity)/"
        return key.hasPrefix(prefix) ? UInt32(key.dropFirst(prefix.count)) : nil
    }

    func list(since stored: Cursor?, strikes: [String: MailboxState.Strike], skipping: Set<String>) throws -> SourceListing<Cursor> {
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
        var uidNext: UInt32 = 0
        for line in select.untagged {
            if let n = IMAPResponseText.count(line, keyword: "EXISTS") { exists = n }
            if let code = IMAPResponseText.responseCode(line) {
                if code.name == "UIDVALIDITY" { uidValidity = UInt32(code.argument) ?? 0 }
                if code.name == "UIDNEXT" { uidNext = UInt32(code.argument) ?? 0 }
            }
        }
        let uidValidity = self.uidValidity, exists = self.exists
        let firstPoll = stored == nil
        // UIDs only grow under one UIDVALIDITY (RFC 3501 §2.3.1.1). A server whose UIDNEXT is
        // not past what was handed on has renumbered its folder without saying so: treated as a
        // new UIDVALIDITY (everything looked at again, old messages recognised by their key),
        // instead of never fetching the new messages whose UIDs lie below the old ones.
        let uidsWentBack = !firstPoll && stored?.uidValidity == uidValidity && uidNext > 0 && uidNext <= stored?.lastUID ?? 0
        if uidsWentBack, let stored {
            source.log.log(.warning, "the server's UIDs went backwards without a new UIDVALIDITY; the folder is examined again",
                           ["mailbox": mailbox.name, "uidnext": String(uidNext), "last_uid": String(stored.lastUID)])
        }
        let validityChanged = !firstPoll && (stored?.uidValidity != uidValidity || uidsWentBack)
        let fresh = firstPoll || validityChanged
        // With unseen or none, what is in the folder now predates Carteiro (unseen ones are
        // handed on in this poll, and after_fetch applied batch by batch).
        let start = Cursor(uidValidity: uidValidity, lastUID: 0, afterFetchFrom: (firstPoll && mailbox.importExisting != .all) ? max(uidNext, 1) : 1)
        let cursor = fresh ? start : (stored ?? start)

        // Which UIDs to consider, with their sizes.
        var candidates: [(uid: UInt32, size: Int)] = []
        if exists > 0 {
            if firstPoll && mailbox.importExisting == .none {
                candidates = []
            } else if firstPoll && mailbox.importExisting == .unseen {
                let uids = try searchUIDs("UID SEARCH UNSEEN", exists: exists)
                if !uids.isEmpty { candidates = try sizes(set: IMAPSequenceSet.render(uids), exists: exists).map { ($0.uid, $0.size) } }
            } else {
                // The highest UID there can be was handed on: no later message can have a UID.
                let from = fresh ? 1 : cursor.lastUID == .max ? .max : cursor.lastUID + 1
                candidates = try sizes(set: "\(from):*", exists: exists).filter { item in
                    if fresh { return true }
                    guard item.uid > cursor.lastUID else { return false }
                    // Below the floor lie the messages that were there before Carteiro: a first
                    // poll interrupted half-way must still follow import_existing for them.
                    if item.uid < cursor.afterFetchFrom {
                        return mailbox.importExisting == .all || (mailbox.importExisting == .unseen && !item.seen)
                    }
                    return true
                }.map { ($0.uid, $0.size) }
            }
        }
        // Messages passed over by an earlier poll because their fetch failed (they have strikes,
        // not yet the limit): below `lastUID`, so listed by their UIDs. One the server no
        // longer lists needs no more tries.
        var gone: Set<String> = []
        if !fresh {
            let holes = strikes.compactMap { key, strike -> UInt32? in
                guard strike.count < MailboxState.Strike.limit, let uid = uid(key), uid <= cursor.lastUID else { return nil }
                return uid
            }.sorted()
            if !holes.isEmpty {
                let listed = exists > 0 ? try sizes(set: IMAPSequenceSet.render(holes), exists: exists).filter { holes.contains($0.uid) } : []
                candidates += listed.map { ($0.uid, $0.size) }
                let present = Set(listed.map(\.uid))
                gone = Set(holes.filter { !present.contains($0) }.map(key))
            }
        }
        candidates.sort { $0.uid < $1.uid }
        let candidateUIDs = Set(candidates.map(\.uid))

        // Messages handed on whose after_fetch never ran (a crash, a refusal): apply it now.
        // Not those with strikes: given up (handed on as unreadable) or not handed on yet.
        var leftovers: [SourceItem] = []
        if !fresh && mailbox.afterFetch != .keep && cursor.lastUID >= cursor.afterFetchFrom && exists > 0 {
            let criteria = mailbox.afterFetch == .seen ? " UNSEEN" : ""
            leftovers = try searchUIDs("UID SEARCH UID \(cursor.afterFetchFrom):\(cursor.lastUID)\(criteria)", exists: exists)
                .filter { $0 >= cursor.afterFetchFrom && $0 <= cursor.lastUID && strikes[key($0)] == nil }
                .map { item($0, size: 0) }
        }

        // Where the folder stands once everything is handed on; new arrivals get UIDs from UIDNEXT on.
        let finalLastUID = max(candidates.last?.uid ?? 0, uidNext > 0 ? uidNext - 1 : 0)
        let prefix = "\(uidValidity)/"
        let lastUID = cursor.lastUID
        let goneHoles = gone
        return SourceListing(
            items: candidates.map { item($0.uid, size: $0.size) },
            leftovers: leftovers,
            restart: fresh ? start : nil,
            // Keys of another UIDVALIDITY name other messages; holes the server no longer lists
            // are gone; a suspect below the position that is not listed again was handed on.
            isStale: { key in
                guard key.hasPrefix(prefix), let uid = UInt32(key.dropFirst(prefix.count)) else { return true }
                return goneHoles.contains(key) || (uid <= lastUID && strikes[key] == nil && !candidateUIDs.contains(uid))
            },
            advance: { from, handed, last in
                // Never below where the folder stood: a batch of a message passed over earlier
                // (below it) does not take the position back.
                var next = from ?? start
                let batchLast = UInt32(clamping: handed.map(\.number).max() ?? 0)
                next.lastUID = max(next.lastUID, batchLast, last ? finalLastUID : 0)
                return next
            },
            messageCount: exists)
    }

    /// Reads every message's header (500 at a time, no flag touched).
    func everyHeader() throws -> [[UInt8]]? {
        let uids = try sizes(set: "1:*", exists: exists).map(\.uid)
        var headers: [[UInt8]] = []
        var start = 0
        while start < uids.count {
            let chunk = Array(uids[start..<min(start + 500, uids.count)])
            start += chunk.count
            let (responses, status) = try client.fetch("UID FETCH \(IMAPSequenceSet.render(chunk)) (UID BODY.PEEK[HEADER])", bytes: chunk.count * 65_536 + 65_536)
            guard status.isOK else { return nil }
            for response in responses where response.uid != nil {
                if let header = response.items["BODY[HEADER]"]?.bytes { headers.append(header) }
            }
        }
        return headers.count == uids.count ? headers : nil
    }

    struct Request {
        var batch: [SourceItem]
        var wholeTag: String?
        var headerTag: String?
        var wholeBytes = 0
        var headerBytes = 0
    }

    /// Sends the FETCH commands of a batch: bodies with BODY.PEEK[] (fetching never sets \Seen:
    /// only `after_fetch` changes the server, once the batch is handed on), headers only for
    /// messages above max_message_size.
    func request(_ batch: [SourceItem]) throws -> Request {
        let limit = mailbox.maxMessageSize
        let whole = batch.filter { $0.size <= limit }
        let oversize = batch.filter { $0.size > limit }
        // The sizes are the listing's: asked again, they would cost the server and the parse.
        func tag(_ items: [SourceItem], _ part: String) throws -> String? {
            items.isEmpty ? nil : try client.startFetch("UID FETCH \(IMAPSequenceSet.render(items.map(uid(of:)))) (UID \(part))")
        }
        return Request(batch: batch, wholeTag: try tag(whole, "BODY.PEEK[]"), headerTag: try tag(oversize, "BODY.PEEK[HEADER]"),
                       wholeBytes: fetchAllowance(whole.map(\.size), headersOnly: false),
                       headerBytes: fetchAllowance(oversize.map(\.size), headersOnly: true))
    }

    func collect(_ request: Request) throws -> [InboundIngest.Fetched] {
        var bodies: [UInt32: [UInt8]] = [:]
        // The two FETCHes are pipelined, so the server may interleave their responses: take
        // each body from whichever response carries it.
        for (tag, bytes) in [(request.wholeTag, request.wholeBytes), (request.headerTag, request.headerBytes)] {
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
        return request.batch.compactMap { item in
            guard let bytes = bodies[uid(of: item)] else { return nil }
            return InboundIngest.Fetched(key: item.key, origin: item.origin, bytes: bytes, size: item.size, oversize: item.size > mailbox.maxMessageSize)
        }
    }

    func afterFetch(_ items: [SourceItem]) throws -> String? {
        try applyAfterFetch(uids: items.map(uid(of:)))
    }

    /// What the FETCH of messages announced at `sizes` may bring back: each message twice
    /// over (servers' RFC822.SIZE is sometimes approximate) and its response's framing.
    func fetchAllowance(_ sizes: [Int], headersOnly: Bool) -> Int {
        let perMessage = headersOnly ? MessageLimits.maximumHeaderBytes : source.maximumLiteral
        return sizes.reduce(1 << 20) { total, size in
            total + min(2 * InboundIngest.clamped(size), perMessage) + (64 << 10)
        }
    }

    /// UID and RFC822.SIZE for a set, without touching any flag.
    func sizes(set: String, exists: Int) throws -> [(uid: UInt32, size: Int, seen: Bool)] {
        // About 60 bytes a message; a server that sends far more for the folder it announced
        // (`exists`) is flooding.
        let (responses, status) = try client.fetch("UID FETCH \(set) (UID RFC822.SIZE FLAGS)", bytes: IMAPSource.listingAllowance(exists: exists))
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
    func searchUIDs(_ command: String, exists: Int) throws -> [UInt32] {
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

    /// seen, delete or move:FOLDER for messages already handed on. A refusal is reported, not
    /// thrown: the messages are safe and will not be fetched again.
    func applyAfterFetch(uids: [UInt32]) throws -> String? {
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

extension IdleWatcher: NewsWatcher {}
