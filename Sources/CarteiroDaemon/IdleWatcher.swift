import CarteiroConfig
import CarteiroCurl
import CarteiroMail
import Foundation
import Synchronization

/// The one loop every IDLE connection waits on. A connection in IDLE costs a read source and a
/// timer on `queue` (libdispatch waits on all of them with one epoll), no thread; the steps that
/// block (connecting, logging in, ending and beginning IDLE) run on `work`, at most
/// `maximumWorkers` at once, so a thousand mailboxes starting together do not make a thousand
/// threads.
final class IdleLoop: Sendable {
    static let shared = IdleLoop()
    /// Owns every watcher's state.
    let queue = DispatchQueue(label: "carteiro.idle")
    private let work = DispatchQueue(label: "carteiro.idle.work", attributes: .concurrent)
    static let maximumWorkers = 16
    /// The jobs running, and those waiting for a worker (changed on `queue` only).
    private let jobs = Mutex<(running: Int, waiting: [@Sendable () -> Void])>((0, []))

    /// Runs `job` on a worker when one is free (called on `queue`).
    func perform(_ job: @escaping @Sendable () -> Void) {
        dispatchPrecondition(condition: .onQueue(queue))
        let start = jobs.withLock { jobs -> Bool in
            guard jobs.running < Self.maximumWorkers else {
                jobs.waiting.append(job)
                return false
            }
            jobs.running += 1
            return true
        }
        guard start else { return }
        work.async { [self] in
            job()
            queue.async { [self] in
                let next = jobs.withLock { jobs -> (@Sendable () -> Void)? in
                    jobs.running -= 1
                    return jobs.waiting.isEmpty ? nil : jobs.waiting.removeFirst()
                }
                if let next { perform(next) }
            }
        }
    }
}

/// IMAP IDLE (RFC 2177) for one mailbox: a connection of its own waits in IDLE, and when the
/// server says a message arrived (`* N EXISTS`) the mailbox is polled at once, through the
/// scheduler like any poll (so exactly-once, `after_fetch` and `UIDVALIDITY` behave as for
/// polls, and never two polls of one mailbox run together). IDLE is ended and begun again every
/// `idle_refresh`, with a NOOP in between: a dead or silent connection is noticed within that plus
/// the mailbox's `timeout`, and reconnected with backoff. A server without IDLE is only polled.
///
/// The watcher's lifecycle is an `IdleMachine` on `IdleLoop.queue`; its connection belongs to
/// the loop while it idles and to the one job that runs a blocking step (or the poll it is lent
/// to) otherwise, never to both.
final class IdleWatcher: Sendable {
    let mailbox: InboundMailbox
    let login: MailboxLogin
    let log: DaemonLog
    /// Asks for a poll of the mailbox now.
    let arrived: @Sendable () -> Void
    private let loop: IdleLoop
    /// Raised once by `stop` (read from any thread; the machine knows it too).
    private let stopped = StopFlag()

    /// Everything that changes, owned by the loop's queue.
    private let state: QueueOwned<State>

    private struct State {
        /// The connection while it idles (during a blocking step, the step holds it).
        var connection: Connection?
        var readSource: DispatchSourceRead?
        var refreshTimer: DispatchSourceTimer?
        /// Where the lifecycle stands, and the backoff.
        var machine: IdleMachine
        /// What the server's news leads to: coalesced, spaced polls (see `IdleNews`).
        var news = IdleNews()
        /// Armed while a poll is pending for news within the spacing.
        var newsTimer: DispatchSourceTimer?
    }

    /// An authenticated connection in IDLE: the session, its client and the IDLE command's tag.
    /// Handed between the loop and the one blocking step or poll that has it (see `IdleMachine`).
    struct Connection: Sendable {
        private let handle: Handover<IMAPClient>
        var tag: String
        init(client: IMAPClient, tag: String) {
            handle = Handover(client)
            self.tag = tag
        }
        var client: IMAPClient { handle.value }
        var session: MailSession { client.session }
    }

    init(mailbox: InboundMailbox, login: MailboxLogin, log: DaemonLog, loop: IdleLoop = .shared, arrived: @escaping @Sendable () -> Void) {
        self.mailbox = mailbox
        self.login = login
        self.log = log
        self.loop = loop
        self.arrived = arrived
        state = QueueOwned(State(machine: IdleMachine(pollInterval: mailbox.pollInterval)), on: loop.queue)
    }

    var isStopped: Bool { stopped.isRaised }

    func start() {
        loop.queue.async { [self] in
            if state.machine.start() == .connect { connect(reconnecting: false) }
        }
    }

    /// Ends the IDLE connection (at once if it idles, else when its blocking step returns).
    func stop() {
        guard !stopped.isRaised else { return }
        stopped.raise()
        loop.queue.async { [self] in
            log.log(.info, "idle ended", ["mailbox": mailbox.name])
            state.newsTimer?.cancel()
            state.newsTimer = nil
            if state.machine.stop() == .close { close() }
        }
    }

    // MARK: - States (on the loop's queue)

    private func connect(reconnecting: Bool) {
        loop.perform { [self] in
            let result: Result<Connection?, MailConnectionError>
            do throws(MailConnectionError) { result = .success(try establish()) } catch { result = .failure(error) }
            loop.queue.async { [self] in
                switch result {
                case .success(let connection?):
                    guard state.machine.connected(at: .now) == .wait else { return Self.discard(connection) }
                    log.log(.info, "idle", ["mailbox": mailbox.name])
                    state.news.reset(known: connection.client.folderCount)
                    // Mail that came while the connection was down was announced to nobody: a poll now.
                    if reconnecting { announce() }
                    wait(on: connection)
                case .success(nil):
                    state.machine.offersNoIdle()
                case .failure(let error):
                    lost(error)
                }
            }
        }
    }

    /// Idles: the socket's read source and the refresh timer are armed; nothing blocks.
    private func wait(on connection: Connection) {
        guard let socket = connection.session.socket else { return lost(MailConnectionError(.connectionLost, endpoint: connection.session.endpoint.description, message: "the IDLE connection has no socket")) }
        state.connection = connection
        let source = DispatchSource.makeReadSource(fileDescriptor: socket, queue: loop.queue)
        source.setEventHandler { [weak self] in self?.readable() }
        source.resume()
        state.readSource = source
        let timer = DispatchSource.makeTimerSource(queue: loop.queue)
        timer.schedule(deadline: .now() + Self.interval(mailbox.idleRefresh))
        timer.setEventHandler { [weak self] in self?.refresh() }
        timer.resume()
        state.refreshTimer = timer
        // What arrived with the continuation is already buffered: the socket will not say so.
        readable()
    }

    /// The server said something while idling: every whole line is read without waiting.
    private func readable() {
        guard let connection = state.connection else { return }
        let session = connection.session
        var mail = false
        do throws(MailConnectionError) {
            // Each wake-up may bring at most this much: a server that floods the idle
            // connection is dropped (and reconnected with backoff), never buffered without end.
            session.expectReply(to: "IDLE", bytes: 1 << 20)
            while let line = try session.readLineIfReady() {
                if Self.isBye(line) { throw Self.bye(line, session) }
                // The folder grew, or changed under the session (UIDVALIDITY): news.
                if state.news.heard(line) { mail = true }
            }
        } catch {
            if mail { announce() }
            return lost(error)
        }
        if mail { announce() }
    }

    /// News: a poll now, or at the end of the spacing (one timer, however much news comes).
    private func announce() {
        switch state.news.news(now: .now) {
        case .nothing:
            return
        case .pollNow:
            arrived()
        case .pollAt(let at):
            let timer = DispatchSource.makeTimerSource(queue: loop.queue)
            timer.schedule(deadline: .now() + Self.interval(max(at - .now, .zero)))
            timer.setEventHandler { [weak self] in
                guard let self else { return }
                state.newsTimer?.cancel()
                state.newsTimer = nil
                state.news.fire(now: .now)
                if !isStopped { arrived() }
            }
            state.newsTimer = timer
            timer.resume()
        }
    }

    /// Every `idle_refresh`: DONE, a NOOP (a dead connection fails here within `timeout`), IDLE again.
    private func refresh() {
        guard state.machine.state == .idling, let connection = disarm() else { return }
        _ = state.machine.refreshDue()
        let heard = state.news
        loop.perform { [self] in
            let result: Result<(Connection, IdleNews), MailConnectionError>
            do throws(MailConnectionError) { result = .success(try renew(connection, news: heard)) } catch { result = .failure(error) }
            loop.queue.async { [self] in
                switch result {
                case .success(let (renewed, after)):
                    state.news.reset(known: after.known)
                    if after.grew { announce() }
                    guard state.machine.resumed() == .wait else { return Self.discard(renewed) }
                    wait(on: renewed)
                case .failure(let error):
                    connection.session.interrupt()
                    lost(error)
                }
            }
        }
    }

    /// The connection failed: it is closed, and made again after a backoff of 5 s, 10 s … at
    /// most the poll interval (which keeps running meanwhile). The backoff starts again from
    /// 5 s only after a connection that lasted (`lastingConnection`).
    private func lost(_ error: MailConnectionError) {
        close()
        guard case .reconnect(let delay) = state.machine.lost(at: .now) else { return }
        log.log(state.machine.failures == 1 ? .notice : .info, "idle connection lost; reconnecting",
                ["mailbox": mailbox.name, "reason": error.description, "retry_in": ConfigDuration.format(delay)])
        loop.queue.asyncAfter(deadline: .now() + Self.interval(delay)) { [self] in
            if state.machine.reconnectDue() == .connect { connect(reconnecting: true) }
        }
    }

    /// Stops waiting on the connection and hands it to the caller.
    private func disarm() -> Connection? {
        state.refreshTimer?.cancel()
        state.refreshTimer = nil
        guard let connection = state.connection else { return nil }
        state.connection = nil
        if let readSource = state.readSource {
            // The socket stays open: the source only stops watching it.
            readSource.setCancelHandler { withExtendedLifetime(connection) {} }
            readSource.cancel()
            state.readSource = nil
        }
        return connection
    }

    /// Closes the connection: after the read source is cancelled, as libdispatch asks.
    private func close() {
        guard let connection = disarm() else { return }
        connection.session.interrupt()
        // The session (and with it libcurl's socket) is released when the closure goes, after
        // the cancelled source has let go of the descriptor.
        loop.queue.async { withExtendedLifetime(connection) {} }
    }

    private static func discard(_ connection: Connection) {
        connection.session.interrupt()
    }

    private static func interval(_ duration: Duration) -> DispatchTimeInterval {
        let (seconds, attoseconds) = duration.components
        // idle_refresh is between 30 s and 29 min: no overflow.
        return .milliseconds(Int(clamping: seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    // MARK: - Lending the connection to a poll

    /// The IDLE connection, out of IDLE, for a poll of the mailbox (called on the poll's
    /// thread): one connection and no login for the polls of a mailbox in IDLE. nil when the
    /// watcher is not idling just now (connecting, refreshing, lent) or DONE fails (the watcher
    /// then reconnects); the poll opens a connection of its own.
    func lend() -> IMAPClient? {
        let taken = loop.queue.sync { () -> Connection? in
            guard !isStopped, state.machine.state == .idling, let connection = disarm() else { return nil }
            _ = state.machine.lend()
            return connection
        }
        guard let connection = taken else { return nil }
        do {
            // What comes before DONE's completion is seen by the poll that follows anyway.
            var ignored = IdleNews()
            try Self.endIdle(connection, news: &ignored)
            return connection.client
        } catch {
            loop.queue.async { [self] in
                connection.session.interrupt()
                lost(error)
            }
            return nil
        }
    }

    /// The poll is done with the lent connection: IDLE again. Mail the server announced during
    /// the poll, after its SELECT, is polled for at once (the server will not announce it again).
    func giveBack(_ client: IMAPClient, failure: MailConnectionError?) {
        client.session.sessionDeadline = nil
        client.session.shrinkBuffers()
        let result: Result<String, MailConnectionError>
        if let failure {
            result = .failure(failure)
        } else {
            do throws(MailConnectionError) { result = .success(try Self.beginIdle(client.session)) } catch { result = .failure(error) }
        }
        let mailDuringPoll = client.announcedMailSinceOpened
        // Handed over whole: from here only the loop touches the client.
        let handed = Connection(client: client, tag: "")
        loop.queue.async { [self] in
            switch result {
            case .success(let tag):
                var connection = handed
                connection.tag = tag
                guard state.machine.resumed() == .wait else { return Self.discard(connection) }
                // The poll's SELECT and what it expunged told the folder's count.
                state.news.reset(known: handed.client.folderCount)
                wait(on: connection)
                if mailDuringPoll { announce() }
            case .failure(let error):
                handed.session.interrupt()
                lost(error)
            }
        }
    }

    /// Whether the watcher holds a connection (idling, refreshing or lent): a poll's own
    /// connection is then not kept, so a mailbox in IDLE has one connection, not two.
    var hasConnection: Bool {
        loop.queue.sync { state.machine.holdsConnection }
    }

    // MARK: - Blocking steps (on a worker)

    /// DONE, and the IDLE command's completion; what was heard meanwhile goes to `news`.
    private static func endIdle(_ connection: Connection, news: inout IdleNews) throws(MailConnectionError) {
        let session = connection.session
        session.expectReply(to: "DONE", bytes: 1 << 20)
        try session.sendLine("DONE")
        while true {
            let line = try session.readLine()
            if line.hasPrefix(connection.tag + " ") { return }
            if news.heard(line) { news.grew = true }
            if isBye(line) { throw bye(line, session) }
        }
    }

    /// Connects, logs in and begins IDLE; nil when the server offers no IDLE.
    private func establish() throws(MailConnectionError) -> Connection? {
        let credentials: MailSession.Credentials
        switch login.credentials(mailbox: mailbox.name) {
        case .success(let value): credentials = value
        case .failure(let failure):
            throw MailConnectionError(.loginRejected, endpoint: MailEndpoint(mailbox).description, message: MailboxLogin.explain(failure, mailbox: mailbox.name))
        }
        let session: MailSession
        do {
            session = try MailSession.open(MailEndpoint(mailbox), credentials: credentials)
        } catch {
            if error.kind == .loginRejected { login.rejected(credentials) }
            throw error.redacting(credentials.password, user: mailbox.user)
        }
        let client = IMAPClient(session: session)
        do throws(MailConnectionError) {
            guard !isStopped else { throw MailConnectionError(.other, endpoint: session.endpoint.description, message: "stopped") }
            let capabilities = try client.run("CAPABILITY")
            let offersIdle = capabilities.untagged.contains { $0.uppercased().split(separator: " ").contains("IDLE") }
            guard offersIdle else {
                log.log(.notice, "the server offers no IDLE; the mailbox is polled only", ["mailbox": mailbox.name])
                client.logout()
                return nil
            }
            guard let folder = IMAPString.quoted(IMAPMailboxName.encode(mailbox.folder)) else { return nil }
            let examine = try client.run("EXAMINE " + folder)
            guard examine.isOK else {
                throw MailConnectionError(.folderMissing, endpoint: session.endpoint.description, message: "the folder \"\(mailbox.folder)\" cannot be opened for IDLE")
            }
            return Connection(client: client, tag: try Self.beginIdle(session))
        } catch {
            client.logout()
            throw error
        }
    }

    /// Sends IDLE and reads up to its continuation ("+ idling"); the command's tag.
    private static func beginIdle(_ session: MailSession) throws(MailConnectionError) -> String {
        let tag = "I\(UInt32.random(in: 1...UInt32.max))"
        session.expectReply(to: "IDLE", bytes: 1 << 20)
        try session.sendLine("\(tag) IDLE")
        // Untagged lines may come before the continuation.
        while true {
            let line = try session.readLine()
            if line.hasPrefix("+") { return tag }
            if line.hasPrefix(tag + " ") {
                throw MailConnectionError(.commandRefused, endpoint: session.endpoint.description, message: "\(session.endpoint) refused IDLE: \(line)", serverReply: line)
            }
            if isBye(line) { throw bye(line, session) }
        }
    }

    /// Ends IDLE, sends a NOOP and begins IDLE again; `news` (a copy of the watcher's) hears
    /// what came meanwhile, and says whether the folder grew.
    private func renew(_ connection: Connection, news: IdleNews) throws(MailConnectionError) -> (Connection, IdleNews) {
        var news = news
        news.grew = false
        try Self.endIdle(connection, news: &news)
        let noop = try connection.client.run("NOOP")
        for line in noop.untagged where news.heard(line) { news.grew = true }
        var renewed = connection
        renewed.tag = try Self.beginIdle(connection.session)
        return (renewed, news)
    }

    static func isBye(_ line: String) -> Bool {
        line.utf8.count >= 5 && line.utf8.prefix(5).map { $0 | 0x20 }.elementsEqual("* bye".utf8.map { $0 | 0x20 })
    }

    static func bye(_ line: String, _ session: MailSession) -> MailConnectionError {
        MailConnectionError(.connectionLost, endpoint: session.endpoint.description, message: "\(session.endpoint) ended the IDLE connection: \(line.prefix(200))", serverReply: line)
    }
}
