import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroMail
import CarteiroStore

/// POP3 as a mail source: UIDL to know what was handed on, LIST for sizes before RETR (TOP 0
/// above max_message_size), and DELE only for messages already handed on, made effective by a
/// QUIT whose reply is checked. A new connection for every round.
struct POP3Source: MailSource {
    /// The UIDLs handed on that the server still lists. (State files written before cursors
    /// hold the same member.)
    struct Cursor: Codable, Equatable, Sendable {
        var uidls: [String]
    }

    static let kind = "pop3"

    let mailbox: InboundMailbox
    let log: DaemonLog

    static func cursor(from stored: SourceCursor) -> Cursor? {
        stored.decode(Cursor.self, kind: stored.kind == SourceCursor.legacy ? SourceCursor.legacy : kind)
    }

    func withConnection(credentials: MailSession.Credentials, login: MailboxLogin, fresh: Bool, deadline: ContinuousClock.Instant,
                        _ round: (POP3Connection) throws -> PollRound) throws(PollFailure) -> PollRound {
        let session = try PollFailure.openSession(mailbox, credentials: credentials, login: login)
        session.sessionDeadline = deadline
        let connection = POP3Connection(source: self, client: POP3Client(session: session))
        do throws(PollFailure) {
            let result = try PollFailure.sorting(mailbox, password: credentials.password) { try round(connection) }
            if result.failure != nil { connection.close() }
            return result
        } catch {
            connection.close()
            throw error
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
}

/// One POP3 session's round: the maildrop listed, messages retrieved, deletions made and QUIT.
final class POP3Connection: SourceConnection {
    typealias Cursor = POP3Source.Cursor

    let source: POP3Source
    let client: POP3Client
    private var allNumbers: [Int] = []
    private var hasUIDL = true
    private var pipelining: Bool?
    private var deleted = false
    private var closed = false

    init(source: POP3Source, client: POP3Client) {
        self.source = source
        self.client = client
    }

    var mailbox: InboundMailbox { source.mailbox }
    var isBroken: Bool { client.session.isBroken }

    func list(since stored: Cursor?, strikes: [String: MailboxState.Strike], skipping: Set<String>) throws -> SourceListing<Cursor> {
        let endpoint = client.session.endpoint.description
        var uidlByNumber: [Int: String] = [:]
        switch Result(catching: { () throws(MailConnectionError) in try client.runMultiline("UIDL") }) {
        case .success(let lines):
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2, let number = Int(parts[0]), number > 0 { uidlByNumber[number] = String(parts[1]) }
            }
            uidlByNumber = POP3Source.disambiguated(uidlByNumber, mailbox: mailbox.name, log: source.log)
        case .failure(let error):
            guard error.kind == .commandRefused else { throw error }
            hasUIDL = false
        }
        if !hasUIDL && mailbox.afterFetch != .delete {
            _ = finish()
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
        allNumbers = sizes.map(\.number)
        let hasUIDL = self.hasUIDL
        // Without UIDL a message has no name across sessions: it is known by its number in
        // this one (and its event by a hash of its content, see `collect`).
        func key(_ number: Int) -> String? { hasUIDL ? uidlByNumber[number] : "#\(number)" }
        var items: [SourceItem] = []
        for (number, size) in sizes {
            guard let key = key(number) else { continue }
            items.append(SourceItem(key: key, size: size, origin: .pop3(uidl: key), number: number))
        }
        let listed = Set(items.map(\.key))

        // POP3 knows no \Seen: import_existing = none means "what is there now is old".
        if stored == nil && mailbox.importExisting == .none && hasUIDL {
            let all = Cursor(uidls: items.map(\.key))
            return SourceListing(restart: all, isStale: { !listed.contains($0) },
                                 advance: { from, _, _ in Cursor(uidls: (from ?? all).uidls.filter { listed.contains($0) }) })
        }
        let handed = Set(stored?.uidls ?? [])
        // Handed on before but still on the server (a QUIT that failed, a crash): deleted now.
        // (Not those given up as unreadable: they stay on the server.)
        let givenUp = Set(strikes.filter { $0.value.count >= MailboxState.Strike.limit }.keys)
        let leftovers = mailbox.afterFetch == .delete && hasUIDL ? items.filter { handed.contains($0.key) && !givenUp.contains($0.key) } : []
        return SourceListing(
            items: items.filter { !hasUIDL || (!handed.contains($0.key) && !skipping.contains($0.key)) },
            leftovers: leftovers,
            // A message the server no longer lists needs no more tries, given up or not.
            isStale: { hasUIDL && !listed.contains($0) },
            advance: { from, batch, _ in
                // A UIDL is kept until the server stops listing it.
                guard hasUIDL else { return Cursor(uidls: []) }
                var uidls = (from?.uidls ?? []).filter { listed.contains($0) }
                let known = Set(uidls)
                uidls += batch.map(\.key).filter { !known.contains($0) }
                return Cursor(uidls: uidls)
            },
            messageCount: sizes.count,
            keysAreStable: hasUIDL)
    }

    /// Reads every message's header (TOP n 0, 100 at a time).
    func everyHeader() throws -> [[UInt8]]? {
        var headers: [[UInt8]] = []
        var start = 0
        while start < allNumbers.count {
            let chunk = Array(allNumbers[start..<min(start + 100, allNumbers.count)])
            start += chunk.count
            let read = try client.retrieve(chunk.map { (command: "TOP \($0) 0", bytes: MessageLimits.maximumHeaderBytes + (64 << 10)) }, pipelined: try usesPipelining())
            guard read.count == chunk.count else { return nil }
            headers += read
        }
        return headers
    }

    /// With PIPELINING (RFC 2449) a batch's RETRs go out together: one round trip, not one a message.
    func usesPipelining() throws -> Bool {
        if let pipelining { return pipelining }
        let offered = try client.capabilities().contains("PIPELINING")
        pipelining = offered
        return offered
    }

    /// POP3 answers one command at a time: the batch is retrieved when collected.
    func request(_ batch: [SourceItem]) throws -> [SourceItem] { batch }

    func collect(_ batch: [SourceItem]) throws -> [InboundIngest.Fetched] {
        let limit = mailbox.maxMessageSize
        // What each answer may hold: the announced size twice over (RFC 1939 §11: sizes may be
        // approximate), or a header block for TOP.
        let commands = batch.map { item -> (command: String, bytes: Int) in
            item.size > limit ? (command: "TOP \(item.number) 0", bytes: MessageLimits.maximumHeaderBytes + (64 << 10))
                              : (command: "RETR \(item.number)", bytes: 2 * item.size + (64 << 10))
        }
        let bodies = try client.retrieve(commands, pipelined: try usesPipelining())
        return zip(batch, bodies).map { item, body in
            let origin = hasUIDL ? item.origin : .pop3(uidl: "sha256-" + String(Digest.hex(Digest.sha256(body)).prefix(32)))
            return InboundIngest.Fetched(key: item.key, origin: origin, bytes: body, size: item.size, oversize: item.size > limit)
        }
    }

    /// DELE for messages handed on, when `after_fetch` is delete: they go only with a
    /// successful QUIT (see `finish`).
    func afterFetch(_ items: [SourceItem]) throws -> String? {
        guard mailbox.afterFetch == .delete else { return nil }
        var problem: String?
        for item in items {
            if (try? client.run("DELE \(item.number)")) == nil {
                problem = "the server refused DELE \(item.number)"
            } else {
                deleted = true
            }
        }
        return problem
    }

    /// DELE takes effect only with a successful QUIT; otherwise the server keeps the messages.
    func finish() -> String? {
        closed = true
        do {
            try client.quit()
            return nil
        } catch {
            return deleted ? "QUIT failed, so the server rolled back the deletions: \(error.description)" : nil
        }
    }

    /// The end of a round that failed: the connection is dropped without QUIT, so the server
    /// keeps every message (deletions are made again by the next poll, for what is handed on).
    func close() {
        guard !closed else { return }
        closed = true
        client.session.interrupt()
    }
}
