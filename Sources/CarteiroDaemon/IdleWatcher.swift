import CarteiroConfig
import CarteiroCurl
import CarteiroMail
import Foundation

/// IMAP IDLE (RFC 2177) for one mailbox: a connection of its own waits in IDLE, and when the
/// server says a message arrived (`* N EXISTS`) the mailbox is polled at once, through the
/// scheduler like any poll (so exactly-once, `after_fetch` and `UIDVALIDITY` behave as for
/// polls, and never two polls of one mailbox run together). IDLE is ended and begun again every
/// `idle_refresh`, with a NOOP in between: a dead or silent connection is noticed within that plus
/// the mailbox's `timeout`, and reconnected with backoff. A server without IDLE is only polled.
final class IdleWatcher: @unchecked Sendable {
    let mailbox: InboundMailbox
    let login: MailboxLogin
    let log: DaemonLog
    /// Asks for a poll of the mailbox now.
    let arrived: @Sendable () -> Void
    private let lock = NSLock()
    private var stopped = false
    private var session: MailSession?
    private var thread: Thread?
    /// The current connection got as far as IDLE (touched by the watcher's thread only).
    private var reachedIdle = false

    init(mailbox: InboundMailbox, login: MailboxLogin, log: DaemonLog, arrived: @escaping @Sendable () -> Void) {
        self.mailbox = mailbox
        self.login = login
        self.log = log
        self.arrived = arrived
    }

    var isStopped: Bool { lock.withLock { stopped } }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "carteiro.idle.\(mailbox.name)"
        thread.stackSize = 256 << 10
        lock.withLock { self.thread = thread }
        thread.start()
    }

    /// Ends the IDLE connection; the thread ends on its own.
    func stop() {
        let open = lock.withLock { () -> MailSession? in
            stopped = true
            return session
        }
        open?.interrupt()
    }

    private func run() {
        var failures = 0
        defer { if isStopped { log.log(.info, "idle ended", ["mailbox": mailbox.name]) } }
        while !isStopped {
            do {
                try watch(reconnecting: failures > 0)
                return // the server offers no IDLE: polling only
            } catch {
                guard !isStopped else { return }
                // A connection that reached IDLE worked: the backoff starts over.
                if reachedIdle { failures = 0 }
                reachedIdle = false
                failures += 1
                // 5 s, 10 s … at most the poll interval (which keeps running meanwhile).
                let wait = min(Double(5 << min(failures - 1, 8)), max(Double(mailbox.pollInterval.components.seconds), 5))
                log.log(failures == 1 ? .notice : .info, "idle connection lost; reconnecting", ["mailbox": mailbox.name, "reason": error.description,
                                                                                                "retry_in": "\(Int(wait))s"])
                let until = Date().addingTimeInterval(wait)
                while !isStopped && Date() < until { Thread.sleep(forTimeInterval: 0.2) }
            }
        }
    }

    /// One connection's life: returns only when the server offers no IDLE; throws when the
    /// connection fails (the caller reconnects).
    private func watch(reconnecting: Bool) throws(MailConnectionError) {
        let credentials: MailSession.Credentials
        switch login.credentials(mailbox: mailbox.name) {
        case .success(let value): credentials = value
        case .failure(let failure):
            throw MailConnectionError(.loginRejected, endpoint: MailEndpoint(mailbox).description, message: MailboxLogin.explain(failure, mailbox: mailbox.name))
        }
        let opened: MailSession
        do {
            opened = try MailSession.open(MailEndpoint(mailbox), credentials: credentials)
        } catch {
            if error.kind == .loginRejected { login.rejected(credentials) }
            throw error.redacting(credentials.password, user: mailbox.user)
        }
        let stop = lock.withLock { () -> Bool in
            if !stopped { session = opened }
            return stopped
        }
        let client = IMAPClient(session: opened)
        defer {
            lock.withLock { session = nil }
            client.logout()
        }
        guard !stop else { return }
        let capabilities = try client.run("CAPABILITY")
        let offersIdle = capabilities.untagged.contains { $0.uppercased().split(separator: " ").contains("IDLE") }
        guard offersIdle else {
            log.log(.notice, "the server offers no IDLE; the mailbox is polled only", ["mailbox": mailbox.name])
            return
        }
        guard let folder = IMAPString.quoted(IMAPMailboxName.encode(mailbox.folder)) else { return }
        let examine = try client.run("EXAMINE " + folder)
        guard examine.isOK else {
            throw MailConnectionError(.folderMissing, endpoint: opened.endpoint.description, message: "the folder \"\(mailbox.folder)\" cannot be opened for IDLE")
        }
        log.log(.info, "idle", ["mailbox": mailbox.name])
        reachedIdle = true
        // Mail that came while the connection was down was announced to nobody: a poll now.
        if reconnecting { arrived() }
        while !isStopped {
            let arrivedDuring = try idleOnce(client, session: opened)
            if arrivedDuring { arrived() }
            // Between two IDLEs, a NOOP: a dead connection fails here within `timeout`.
            let noop = try client.run("NOOP")
            if noop.untagged.contains(where: Self.announcesMail) { arrived() }
        }
    }

    /// One IDLE: until the server announces mail, or `idle_refresh` passes. Whether mail came.
    private func idleOnce(_ client: IMAPClient, session: MailSession) throws(MailConnectionError) -> Bool {
        let tag = "I\(UInt32.random(in: 1...UInt32.max))"
        session.expectReply(to: "IDLE", bytes: 1 << 20)
        try session.sendLine("\(tag) IDLE")
        // The continuation ("+ idling"); untagged lines may come first.
        while true {
            let line = try session.readLine()
            if line.hasPrefix("+") { break }
            if line.hasPrefix(tag + " ") {
                throw MailConnectionError(.commandRefused, endpoint: session.endpoint.description, message: "\(session.endpoint) refused IDLE: \(line)", serverReply: line)
            }
            if line.uppercased().hasPrefix("* BYE") { throw Self.bye(line, session) }
        }
        var mail = false
        let end = ContinuousClock.now + mailbox.idleRefresh
        while !mail && !isStopped && ContinuousClock.now < end {
            let left = end - ContinuousClock.now
            guard try session.waitForData(upTo: min(left, .seconds(1))) else { continue }
            session.expectReply(to: "IDLE", bytes: 1 << 20)
            let line = try session.readLine()
            if line.uppercased().hasPrefix("* BYE") { throw Self.bye(line, session) }
            // A new message, or the folder changed under the session (UIDVALIDITY): poll.
            if Self.announcesMail(line) || line.uppercased().contains("[UIDVALIDITY") { mail = true }
        }
        guard !isStopped else { return false }
        session.expectReply(to: "DONE", bytes: 1 << 20)
        try session.sendLine("DONE")
        while true {
            let line = try session.readLine()
            if line.hasPrefix(tag + " ") { break }
            if Self.announcesMail(line) { mail = true }
            if line.uppercased().hasPrefix("* BYE") { throw Self.bye(line, session) }
        }
        return mail
    }

    /// `* N EXISTS` (a message arrived) or `* N RECENT`.
    static func announcesMail(_ line: String) -> Bool {
        let words = line.uppercased().split(separator: " ")
        return words.count >= 3 && words[0] == "*" && UInt32(words[1]) != nil && (words[2] == "EXISTS" || words[2] == "RECENT")
    }

    static func bye(_ line: String, _ session: MailSession) -> MailConnectionError {
        MailConnectionError(.connectionLost, endpoint: session.endpoint.description, message: "\(session.endpoint) ended the IDLE connection: \(line.prefix(200))", serverReply: line)
    }
}
