import CarteiroConfig
import CarteiroOAuth
import CarteiroEvents
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// The inbound half of the daemon: a store and a poller per inbound mailbox, driven by the scheduler.
package final class InboundService: Sendable {
    package enum StartFailure: Error, CustomStringConvertible {
        case secrets([String])
        case storage(String)
        package var description: String {
            switch self {
            case .secrets(let problems): problems.joined(separator: "\n")
            case .storage(let text): "the state directory: \(text)"
            }
        }
    }

    /// Where the mailboxes' ledgers and the spool are kept.
    let store: any StateStore
    let scheduler: InboundScheduler
    let log: DaemonLog
    /// The contract of each mailbox, for alert events (replaced by a reload).
    let contracts = ContractTable()
    /// OAuth tokens, shared with the outbound lanes (one refresh at a time per account).
    let broker: TokenBroker
    /// Makes the source of a mailbox (the built-in ones by default; a test adds its own).
    let makeSource: SourceFactory
    /// IMAP sessions kept between polls.
    let keptSessions = KeptSessions()
    /// Stops the stores' commits at a named step (the crash tests); nil in the daemon.
    let storeFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?
    /// Start, reload and stop happen here, one at a time, whoever asks (the daemon, a test).
    let queue = DispatchQueue(label: "carteiro.inbound")
    /// Everything that changes, owned by `queue`.
    let state: QueueOwned<State>

    struct State {
        /// Per mailbox, kept across reloads: a ledger is made once, when its mailbox first appears.
        var ledgers: [String: any MailboxLedger] = [:]
        /// The enabled mailboxes, and how each logs in and what its source is, as last prepared
        /// (the scheduler has its own copy, on its queue).
        var mailboxes: [InboundMailbox] = []
        var logins: [String: MailboxLogin] = [:]
        var sources: [String: any MailSource] = [:]
        /// What waits for news between polls (IDLE), per mailbox whose source has it.
        var watchers: [String: NewsWatcher] = [:]
        var started = false
    }

    /// Resolves every password, prepares the state directory and recovers interrupted batches.
    package convenience init(configuration: Configuration, environment: [String: String], log: DaemonLog, broker: TokenBroker? = nil) throws(StartFailure) {
        try self.init(configuration: configuration, environment: environment, log: log, broker: broker, sources: Self.builtInSource)
    }

    /// With `sources` making each mailbox's source (`builtInSource` in the daemon) and
    /// `storeFaults` stopping its store's commits (nil in the daemon): the seams the tests use.
    init(configuration: Configuration, environment: [String: String], log: DaemonLog, broker: TokenBroker? = nil,
         sources: @escaping SourceFactory, storeFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) throws(StartFailure) {
        self.log = log
        makeSource = sources
        self.storeFaults = storeFaults
        self.broker = broker ?? TokenBroker(stateDirectory: configuration.daemon.stateDirectory, clients: configuration.oauthClients,
                                            secrets: SecretResolver(environment: environment, configurationFile: configuration.files.first))
        store = StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool)
        let store = self.store
        let contracts = self.contracts
        let alert: InboundScheduler.Alert = { mailbox, status, recovered in
            let event = MailboxAlert(kind: recovered ? .recovered : .failing, mailbox: mailbox.name, contract: contracts.get(mailbox.name),
                                     failingSince: status.failingSince ?? 0, failures: status.consecutiveFailures,
                                     error: status.lastError, at: Int64(Date().timeIntervalSince1970))
            do {
                try store.writeEvent(id: event.id, bytes: event.json().renderedBytes())
            } catch {
                log.log(.error, "cannot write event", ["mailbox": mailbox.name, "event": event.kind.rawValue, "reason": "\(error)"])
            }
        }
        scheduler = InboundScheduler(mailboxes: [], maxParallel: configuration.daemon.maxParallelPolls,
                                     statusPath: configuration.daemon.stateDirectory + "/status.json", log: log, alert: alert)
        state = QueueOwned(State(), on: queue)
        let prepared = queue.sync { [self] in Result { () throws(StartFailure) in try prepare(configuration, environment: environment) } }
        let first = try prepared.get()
        queue.sync { [self] in
            state.mailboxes = first.mailboxes
            state.logins = first.logins
            state.sources = first.sources
        }
        scheduler.install(mailboxes: first.mailboxes, pollers: first.pollers, contracts: first.contracts)
    }

    /// What a reload will change, made ready without changing anything that runs.
    package struct Reload {
        let mailboxes: [InboundMailbox]
        let pollers: [String: InboundScheduler.Poller]
        let contracts: [String: String]
        let maxParallel: Int
        let logins: [String: MailboxLogin]
        let sources: [String: any MailSource]
    }

    /// The first half of a reload: everything that can fail (passwords, the state directory).
    /// Throws, and changes nothing that runs, when a password cannot be read.
    package func prepareReload(_ configuration: Configuration, environment: [String: String]) throws(StartFailure) -> Reload {
        try queue.sync { [self] in Result { () throws(StartFailure) in try prepare(configuration, environment: environment) } }.get()
    }

    /// The second half, which cannot fail: new and changed mailboxes get new pollers, removed
    /// ones stop, unchanged ones go on undisturbed.
    package func apply(_ reload: Reload) {
        queue.sync { [self] in
            state.mailboxes = reload.mailboxes
            scheduler.update(mailboxes: reload.mailboxes, pollers: reload.pollers, contracts: reload.contracts, maxParallel: reload.maxParallel)
            state.logins = reload.logins
            state.sources = reload.sources
            keptSessions.prune(keeping: reload.mailboxes)
            if state.started { updateWatchers(reload.mailboxes) }
        }
    }

    /// A news watcher (IDLE) for each mailbox whose source has one: changed and removed ones
    /// end, new ones begin; unchanged ones go on (on `queue`).
    func updateWatchers(_ mailboxes: [InboundMailbox]) {
        let wanted = Dictionary(mailboxes.filter(\.enabled).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, watcher) in state.watchers where wanted[name] != watcher.mailbox || watcher.isStopped {
            watcher.stop()
            state.watchers[name] = nil
            keptSessions.register(nil, for: name)
        }
        let scheduler = self.scheduler
        for (name, mailbox) in wanted where state.watchers[name] == nil {
            guard let login = state.logins[name], let source = state.sources[name], source.mailbox == mailbox,
                  let watcher = source.newsWatcher(login: login, log: log, news: { scheduler.pollNow([name]) { _ in } }) else { continue }
            state.watchers[name] = watcher
            watcher.start()
        }
    }

    /// Reads the passwords, prepares the state directory and each new mailbox's ledger, and
    /// makes every enabled mailbox's source and poller (on `queue`).
    func prepare(_ configuration: Configuration, environment: [String: String]) throws(StartFailure) -> Reload {
        let resolver = SecretResolver(environment: environment, configurationFile: configuration.files.first)
        var logins: [String: MailboxLogin] = [:]
        var sources: [String: any MailSource] = [:]
        var problems: [String] = []
        for mailbox in configuration.inboundMailboxes where mailbox.enabled {
            if let oauth = mailbox.oauth {
                logins[mailbox.name] = .oauth(user: mailbox.user, oauth, broker: broker)
                continue
            }
            switch resolver.resolve(mailbox.password) {
            case .success(let secret): logins[mailbox.name] = .password(user: mailbox.user, secret)
            case .failure(let failure): problems.append("\(mailbox.location): mailbox \"\(mailbox.name)\": \(failure)")
            }
        }
        guard problems.isEmpty else { throw .secrets(problems) }
        let builder: EventBuilder
        do {
            for entry in try store.prepare(mailboxes: configuration.inboundMailboxes.map(\.name)) {
                log.log(.warning, RefusedEntry.message, entry.fields)
            }
            for mailbox in configuration.inboundMailboxes where state.ledgers[mailbox.name] == nil {
                state.ledgers[mailbox.name] = try store.ledger(for: mailbox.name, faults: storeFaults)
            }
            let contracts = RequestContracts(stateDirectory: configuration.daemon.stateDirectory)
            builder = EventBuilder(threading: RequestThreading(secret: try store.threadingSecret()),
                                   ownAddresses: Set(configuration.outboundMailboxes.map(\.sender.address)),
                                   rules: RoutingRules(configuration.rules), contractOfRequest: { contracts.contract(of: $0) })
        } catch {
            throw .storage(error.description)
        }
        var pollers: [String: InboundScheduler.Poller] = [:]
        let kept = keptSessions
        var table: [String: String] = [:]
        for mailbox in configuration.inboundMailboxes {
            guard let ledger = state.ledgers[mailbox.name], let login = logins[mailbox.name] else { continue }
            let contract = configuration.contract(owning: mailbox.name)?.id
            table[mailbox.name] = contract
            let ingest = InboundIngest(mailbox: mailbox, contract: contract, builder: builder, store: ledger, log: log, events: store,
                                       flood: FloodGuard(mailbox: mailbox))
            let source = makeSource(mailbox, log, kept)
            sources[mailbox.name] = source
            pollers[mailbox.name] = { Self.result { () throws(PollFailure) in try source.poll(ingest, login: login) } }
            if !mailbox.starttls && !mailbox.provider.usesImplicitTLS {
                log.log(.warning, "plain text allowed", ["mailbox": mailbox.name, "reason": "starttls = false"])
            }
        }
        contracts.set(table)
        // A disabled mailbox is not scheduled at all; its state stays for when it comes back.
        return Reload(mailboxes: configuration.inboundMailboxes.filter(\.enabled), pollers: pollers, contracts: table,
                      maxParallel: configuration.daemon.maxParallelPolls, logins: logins, sources: sources)
    }

    /// `carteiro poll`: polls `mailbox` (or every one for `*`) now; the answer says what each
    /// handed on, or why it failed.
    package func pollNow(_ mailbox: String, answer: @escaping @Sendable (QueueCommand.Answer) -> Void) {
        scheduler.control.async { [scheduler] in
            let names = mailbox == "*" ? scheduler.state.mailboxes.map(\.name) : [mailbox]
            guard mailbox == "*" || scheduler.state.status[mailbox] != nil else {
                answer(QueueCommand.Answer(done: false, message: "no enabled inbound mailbox \"\(mailbox)\""))
                return
            }
            scheduler.pollNow(names) { results in
                let lines = results.map { name, result -> String in
                    switch result {
                    case .success(let outcome): "\(name): \(outcome.handedOn) handed on" + (outcome.skippedDuplicates > 0 ? ", \(outcome.skippedDuplicates) seen before" : "")
                        + (outcome.dropped > 0 ? ", \(outcome.dropped) dropped by routing rules" : "")
                    case .failure(let failure): "\(name): FAILED: \(failure.description)"
                    }
                }
                let failed = results.contains { if case .failure = $0.1 { true } else { false } }
                answer(QueueCommand.Answer(done: !failed, message: lines.isEmpty ? "no mailbox to poll" : lines.joined(separator: "\n")))
            }
        }
    }

    /// Makes the source of a mailbox, from its configuration.
    typealias SourceFactory = @Sendable (InboundMailbox, DaemonLog, KeptSessions) -> any MailSource

    /// The sources Carteiro has, by the mailbox's protocol.
    static let builtInSource: SourceFactory = { mailbox, log, kept in
        switch mailbox.provider.family {
        case .imap: IMAPSource(mailbox: mailbox, log: log, sessions: kept)
        case .pop3: POP3Source(mailbox: mailbox, log: log)
        case .graph: GraphSource(mailbox: mailbox, log: log)
        }
    }

    static func result(_ body: () throws(PollFailure) -> PollOutcome) -> Result<PollOutcome, PollFailure> {
        do { return .success(try body()) } catch { return .failure(error) }
    }

    package func start() {
        queue.sync { [self] in
            log.log(.notice, "polling started", ["mailboxes": String(state.mailboxes.count),
                                                 "state_dir": store.location, "spool": store.spoolLocation])
            scheduler.start()
            state.started = true
            updateWatchers(state.mailboxes)
        }
    }

    package func heartbeat(every interval: Duration, _ beat: @escaping @Sendable () -> Void) {
        scheduler.heartbeat(every: interval, beat)
    }

    package func summary(_ done: @escaping @Sendable (String) -> Void) {
        scheduler.summary(done)
    }

    /// Polls each mailbox once; `completion` gets the number of mailboxes that failed.
    package func pollOnce(completion: @escaping @Sendable (Int) -> Void) {
        scheduler.pollOnce(completion: completion)
    }

    package func stop(completion: @escaping @Sendable () -> Void) {
        queue.sync { [self] in
            state.started = false
            for (name, watcher) in state.watchers {
                watcher.stop()
                keptSessions.register(nil, for: name)
            }
            state.watchers = [:]
        }
        let kept = keptSessions
        scheduler.stop {
            kept.closeAll()
            completion()
        }
    }
}

/// The contract of each inbound mailbox, replaced whole by a reload.
final class ContractTable: Sendable {
    private let table = Mutex<[String: String]>([:])
    func set(_ value: [String: String]) { table.withLock { $0 = value } }
    func get(_ name: String) -> String? { table.withLock { $0[name] } }
}
