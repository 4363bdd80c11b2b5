import CarteiroConfig
import CarteiroOAuth
import CarteiroEvents
import CarteiroOutbound
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// The outbound half of the daemon: the outbox watcher that turns submissions into queued
/// messages, and one SMTP lane per outbound mailbox.
package final class OutboundService: Sendable {
    /// How often the outbox and the control folder are looked at: when inotify tells of new
    /// files, only as a safety net; without it, often enough for a prompt `carteiro send`.
    static let outboxTick: DispatchTimeInterval = .milliseconds(200)
    static let notifiedOutboxTick: DispatchTimeInterval = .seconds(5)

    let directory: StateDirectory
    let queue: any OutboundQueueStore
    let log: DaemonLog
    /// OAuth tokens, shared with the inbound pollers.
    let broker: TokenBroker
    let outbox: String
    let watcher = DispatchQueue(label: "carteiro.outbox")
    let control: QueueControl
    /// The tests' seam into the lanes' queue writes (nil in the daemon).
    let laneFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?
    /// Everything that changes, owned by `watcher` (a reload replaces the resolver and the lanes).
    let state: QueueOwned<State>

    struct State {
        var resolver: SubmissionResolver
        var lanes: [OutboundLane]
        var started = false
        var timer: DispatchSourceTimer?
        var notifier: FolderNotifier?
        /// The outbox and the control folder are listed only when they changed.
        var outboxWatch = FolderWatch()
        var controlWatch = FolderWatch()
        /// Answers `carteiro poll` (set by the daemon: the inbound side polls).
        var pollHandler: (@Sendable (String, @escaping @Sendable (QueueCommand.Answer) -> Void) -> Void)?
        /// Control requests handed to a lane and not answered yet.
        var requestsInFlight: Set<String> = []
        /// When control/ was last swept of stale answers.
        var lastSweep: Int64 = 0
        /// `outbox/rejected/`, as opened by the last scan.
        var rejectedFolder: SharedFolder?
    }

    /// `queueFaults`: the crash tests' seam into the queue's enqueue (see `OutboundQueue`);
    /// `laneFaults`: the same into the lanes' writes (what an attempt changed, a give-up).
    package init(configuration: Configuration, environment: [String: String], log: DaemonLog, broker: TokenBroker? = nil,
                queueFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil,
                laneFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) throws(InboundService.StartFailure) {
        self.log = log
        directory = StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool)
        queue = directory.outboundQueue(faults: queueFaults)
        outbox = configuration.daemon.stateDirectory + "/outbox"
        control = QueueControl(stateDirectory: configuration.daemon.stateDirectory)
        self.broker = broker ?? TokenBroker(stateDirectory: configuration.daemon.stateDirectory, clients: configuration.oauthClients,
                                            secrets: SecretResolver(environment: environment, configurationFile: configuration.files.first))
        let passwords = try Self.passwords(configuration, environment: environment)
        let resolver: SubmissionResolver
        do {
            for entry in try directory.prepare(mailboxes: []) { log.log(.warning, RefusedEntry.message, entry.fields) }
            _ = try SharedFolder(outbox).ownFolder(".taken") { log.log(.warning, RefusedEntry.message, $0.fields) }
            resolver = SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: try directory.threadingSecret()),
                                          hostname: OutboundService.hostname(configuration))
        } catch {
            throw .storage(error.description)
        }
        self.laneFaults = laneFaults
        let lanes = configuration.outboundMailboxes.map { [broker = self.broker] in
            Self.lane($0, passwords: passwords, broker: broker, configuration: configuration, log: log, queueFaults: laneFaults)
        }
        state = QueueOwned(State(resolver: resolver, lanes: lanes), on: watcher)
    }

    static func passwords(_ configuration: Configuration, environment: [String: String]) throws(InboundService.StartFailure) -> [String: Secret] {
        let resolver = SecretResolver(environment: environment, configurationFile: configuration.files.first)
        var problems: [String] = []
        var passwords: [String: Secret] = [:]
        for mailbox in configuration.outboundMailboxes where mailbox.auth && mailbox.oauth == nil {
            guard let source = mailbox.password else { continue }
            switch resolver.resolve(source) {
            case .success(let secret): passwords[mailbox.name] = secret
            case .failure(let failure): problems.append("\(mailbox.location): mailbox \"\(mailbox.name)\": \(failure)")
            }
        }
        guard problems.isEmpty else { throw .secrets(problems) }
        return passwords
    }

    static func lane(_ mailbox: OutboundMailbox, passwords: [String: Secret], broker: TokenBroker, configuration: Configuration, log: DaemonLog,
                     queueFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) -> OutboundLane {
        var login: MailboxLogin?
        if let oauth = mailbox.oauth, let user = mailbox.user {
            login = .oauth(user: user, oauth, broker: broker)
        } else if let password = passwords[mailbox.name], let user = mailbox.user {
            login = .password(user: user, password)
        }
        let store = StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool)
        return OutboundLane(mailbox: mailbox, login: login, queue: store.outboundQueue(faults: queueFaults), directory: store,
                 lifetime: configuration.daemon.queueLifetime, ehloName: OutboundService.hostname(configuration), log: log)
    }

    /// A reload: lanes whose mailbox, password, lifetime and name are unchanged go on; changed
    /// ones finish the message in flight and are replaced; removed ones stop (their queue stays
    /// on disk); new ones start. Submissions are resolved against the new configuration.
    package struct Reload: Sendable {
        let configuration: Configuration
        let passwords: [String: Secret]
        let resolver: SubmissionResolver
    }

    /// The first half of a reload: everything that can fail, nothing that runs changed.
    package func prepareReload(_ configuration: Configuration, environment: [String: String]) throws(InboundService.StartFailure) -> Reload {
        let passwords = try Self.passwords(configuration, environment: environment)
        let secret: [UInt8]
        do { secret = try directory.threadingSecret() } catch { throw .storage(error.description) }
        return Reload(configuration: configuration, passwords: passwords,
                      resolver: SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: secret),
                                                   hostname: OutboundService.hostname(configuration)))
    }

    /// The second half, which cannot fail.
    package func apply(_ reload: Reload) {
        let (configuration, passwords, nextResolver) = (reload.configuration, reload.passwords, reload.resolver)
        let log = self.log
        watcher.async { [self] in
            state.resolver = nextResolver
            var next: [OutboundLane] = []
            let hostname = OutboundService.hostname(configuration)
            for mailbox in configuration.outboundMailboxes {
                if let old = state.lanes.first(where: { $0.mailbox.name == mailbox.name }), old.mailbox == mailbox, old.login?.fixedPassword == passwords[mailbox.name],
                   old.lifetime == configuration.daemon.queueLifetime, old.ehloName == hostname {
                    next.append(old)
                    continue
                }
                let lane = Self.lane(mailbox, passwords: passwords, broker: broker, configuration: configuration, log: log, queueFaults: laneFaults)
                next.append(lane)
                if let old = state.lanes.first(where: { $0.mailbox.name == mailbox.name }) {
                    // One lane per mailbox at a time: the new one starts when the old one stopped.
                    old.stop { [started = state.started] in if started { lane.start() } }
                } else if state.started {
                    lane.start()
                }
            }
            for old in state.lanes where !configuration.outboundMailboxes.contains(where: { $0.name == old.mailbox.name }) {
                old.stop {}
            }
            state.lanes = next
        }
    }

    /// The name in EHLO and Message-IDs: `[daemon] hostname`, else the machine's.
    package static func hostname(_ configuration: Configuration) -> String {
        if let name = configuration.daemon.hostname { return name }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return name.isEmpty ? "localhost" : name
    }

    /// Answers `carteiro poll` requests with `handler` (the inbound side polls).
    package func answerPolls(with handler: @escaping @Sendable (String, @escaping @Sendable (QueueCommand.Answer) -> Void) -> Void) {
        watcher.async { [self] in state.pollHandler = handler }
    }

    package func start() {
        watcher.async { [self] in
            state.started = true
            for lane in state.lanes { lane.start() }
            state.notifier = FolderNotifier(paths: [outbox, control.directory], queue: watcher) { [weak self] in self?.tick() }
            let timer = DispatchSource.makeTimerSource(queue: watcher)
            if state.notifier == nil {
                timer.schedule(deadline: .now(), repeating: Self.outboxTick, leeway: .milliseconds(50))
            } else {
                timer.schedule(deadline: .now(), repeating: Self.notifiedOutboxTick, leeway: .milliseconds(500))
            }
            timer.setEventHandler { [weak self] in
                self?.state.notifier?.rewatch()
                self?.tick()
            }
            state.timer = timer
            timer.resume()
        }
    }

    /// "12 queued, 3 deferred" for STATUS=: from what each lane saw at its last tick; a lane
    /// that has not looked yet is counted from the disk.
    package func summary(_ done: @escaping @Sendable (String) -> Void) {
        watcher.async { [self] in
            var queued = 0, deferred = 0
            for lane in state.lanes {
                if let counts = lane.counts {
                    queued += counts.queued
                    deferred += counts.deferred
                } else {
                    let items = queue.messages(in: lane.mailbox.name)
                    queued += items.count
                    deferred += items.filter { $0.attempts > 0 }.count
                }
            }
            done("\(queued) queued, \(deferred) deferred")
        }
    }

    /// Takes the outbox once and tries every due message once: `carteiro run --once`.
    /// `completion` is given the recipients refused and the messages that could not go
    /// (deferred, failed) in all lanes.
    package func runOnce(completion: @escaping @Sendable (_ deliveryProblems: Int) -> Void) {
        watcher.async { [self] in
            while scanOutbox() >= Self.batchSize {}
            let group = DispatchGroup()
            for lane in state.lanes {
                group.enter()
                lane.dispatch.async {
                    lane.drain()
                    group.leave()
                }
            }
            group.notify(queue: watcher) { [self] in completion(state.lanes.reduce(0) { $0 + $1.refused }) }
        }
    }

    package func stop(completion: @escaping @Sendable () -> Void) {
        watcher.async { [self] in
            state.timer?.cancel()
            state.timer = nil
            state.notifier?.cancel()
            state.notifier = nil
            let group = DispatchGroup()
            for lane in state.lanes {
                group.enter()
                lane.stop { group.leave() }
            }
            group.notify(queue: watcher) { completion() }
        }
    }

    /// Submissions taken per scan: one group commit queues them all.
    static let batchSize = 200

    /// When inotify tells of a new file, and at every tick: control requests, then the outbox;
    /// each folder is listed only when its `stat` says it changed (and every 25 ticks whatever it
    /// says), so that an idle daemon does not list two folders 300 times a minute.
    func tick() {
        // Answers nobody collected (a command killed while it waited), once a minute.
        let now = Int64(time(nil))
        if now - state.lastSweep >= 60 {
            state.lastSweep = now
            let swept = control.sweep(now: now)
            if swept > 0 { log.log(.info, "uncollected control answers removed", ["count": String(swept)]) }
        }
        let controlStamp = DirectoryStamp(control.directory)
        if state.controlWatch.shouldList(controlStamp) {
            state.controlWatch.listed(controlStamp, quiet: answerControlRequests() == 0)
        }
        let outboxStamp = DirectoryStamp(outbox)
        guard state.outboxWatch.shouldList(outboxStamp) else { return }
        let handled = scanOutbox()
        state.outboxWatch.listed(outboxStamp, quiet: handled < Self.batchSize)
        if handled >= Self.batchSize { watcher.async { [weak self] in self?.scanOutboxWhileFull() } }
    }

    /// A backlog (a full batch taken) is taken on at once rather than at the next tick, while
    /// the lanes send what is queued; other work on the watcher's queue goes in between.
    func scanOutboxWhileFull() {
        guard scanOutbox() >= Self.batchSize, state.timer != nil else { return }
        watcher.async { [weak self] in self?.scanOutboxWhileFull() }
    }

    /// Takes the outbox once, now, on the watcher's queue (the tests' way in; the daemon takes
    /// it at each tick).
    @discardableResult
    func takeOutbox() -> Int { watcher.sync { scanOutbox() } }

    /// Submissions dropped in the outbox (written under a temporary name and renamed, as the
    /// desk does): each is resolved, queued durably, and only then removed; one that cannot be
    /// resolved goes to `outbox/rejected/` with its reason beside it. Takes up to `batchSize`
    /// submissions; returns how many it dealt with.
    @discardableResult
    func scanOutbox() -> Int {
        // The group writes into the outbox: every entry is reached by its name in the folders'
        // descriptors, and `.taken` and `rejected/` must be this service's own folders (see
        // `SharedFolder`).
        let report: (RefusedEntry) -> Void = { [log] in log.log(.warning, RefusedEntry.message, $0.fields) }
        let folders: (outbox: SharedFolder, taken: SharedFolder, rejected: SharedFolder)
        do {
            let outboxFolder = try SharedFolder(outbox)
            folders = (outboxFolder, try outboxFolder.ownFolder(".taken", report: report),
                       try outboxFolder.ownFolder("rejected", mode: StateDirectory.Modes.shared, report: report))
        } catch {
            log.log(.error, "cannot take submissions", ["reason": error.description])
            return 0
        }
        state.rejectedFolder = folders.rejected
        // Submissions taken before a crash come first: queued already (their ids are in a
        // lane), or not.
        var paths = folders.taken.names().filter { !$0.hasPrefix(".") }.sorted().map { (folders.taken.path($0), $0) }
        let names = folders.outbox.names().filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
        for name in names where paths.count < Self.batchSize {
            // Taking a submission is one rename (of the entry itself: a link moves as a link):
            // it is then ours, and it is not read twice.
            guard folders.outbox.move(name, to: folders.taken, as: name) else { continue }
            paths.append((folders.taken.path(name), name))
        }
        guard !paths.isEmpty else { return 0 }
        let existing = queue.allIDs()
        var items: [(id: String, messages: [OutboundMessage])] = []
        var done: [String] = []
        var pending: [(path: String, name: String, data: Data, id: String)] = []
        // Submissions dealt with (queued, rejected, or found queued already): what a backlog
        // loop may count as progress; one that cannot even be read is not.
        var handled = 0
        for (path, name) in paths {
            let data: Data
            switch folders.taken.read(name, limit: Self.maximumSubmissionSize) {
            case .success(let bytes):
                data = Data(bytes)
            case .failure(let problem):
                // A link, a hard link, a FIFO, a device, a directory, an unreadable or oversized
                // file: never read (a link could lead to the service's secrets, a FIFO would
                // block every submission behind it), set aside with the reason.
                let hint = problem == .notPermitted ? " (make it readable by the state directory's group: chmod 640; `carteiro send` does)" : ""
                if QueueControl.isPlanted(problem) {
                    report(RefusedEntry(path: path, reason: problem.description, action: "moved unread to \(folders.rejected.path(name))"))
                }
                reject(name: name, from: folders.taken, reason: "the submission \(problem)\(hint)")
                handled += 1
                continue
            }
            let id = Self.queueID(name: String(name.dropLast(5)), content: [UInt8](data))
            if existing.contains(id) {
                // Queued before a crash that came between queuing and removing the submission.
                folders.taken.remove(name)
                handled += 1
                continue
            }
            // A submission of several messages (ID-1 … ID-n) may have been queued in part when
            // a crash came between its renames: it is resolved again (the same ids), and only
            // the messages missing from the queue are queued.
            pending.append((path, name, data, id))
        }
        // Decoding, resolving and building are pure: spread over the cores, results in order.
        let resolved = ResolvedSubmissions(count: pending.count)
        let resolver = state.resolver
        let inputs = pending.map { ($0.data, $0.id) }
        DispatchQueue.concurrentPerform(iterations: inputs.count) { index in
            let (data, id) = inputs[index]
            resolved.set(index, Submission.decode(data).flatMap { resolver.resolve($0, queueID: id, attachmentsDirectory: outbox) })
        }
        for (index, (_, name, _, id)) in pending.enumerated() {
            guard let result = resolved.get(index) else { continue }
            handled += 1
            switch result {
            case .success(let messages):
                items.append((id, messages))
                done.append(name)
                for message in messages where message.resolution.reason == .contractFallback {
                    log.log(.notice, "contract has no outbound mailbox; using the system's", ["contract": message.contract ?? "", "mailbox": message.mailbox])
                }
            case .failure(let rejection):
                reject(name: name, from: folders.taken, reason: rejection.description)
            }
        }
        do {
            // Durable first; only then are the submissions removed.
            try Self.enqueue(items, queue: queue, except: existing)
            for name in done { folders.taken.remove(name) }
            let touched = Set(items.flatMap { $0.messages.map(\.mailbox) })
            for lane in state.lanes where touched.contains(lane.mailbox.name) { lane.kick() }
            for item in items {
                log.log(.info, "submission queued", ["queue_id": item.id, "messages": String(item.messages.count), "mailbox": item.messages.first?.mailbox ?? ""])
            }
        } catch {
            log.log(.error, "cannot queue submissions", ["reason": error.description])
            return 0
        }
        return handled
    }

    /// A submission larger than this is refused unread: more than any mail server accepts.
    // Inline attachments (base64) up to max_attachment_size's 25 MB default fit.
    static let maximumSubmissionSize = 48 << 20

    /// Moves a taken submission to `outbox/rejected/` with `NAME.reason` beside it. The reason
    /// is written under a fresh name and renamed over `NAME.reason`: a link planted there is
    /// replaced, never written through.
    func reject(name: String, from taken: SharedFolder, reason: String) {
        if let rejected = state.rejectedFolder {
            try? rejected.replace(name + ".reason", with: Array((reason + "\n").utf8))
            if !taken.move(name, to: rejected, as: name) {
                // A directory in the way, say: the entry must not stay taken (and retried) forever.
                taken.remove(name)
            }
        } else {
            taken.remove(name)
        }
        log.log(.error, "submission rejected", ["submission": name, "reason": reason])
    }

    /// A queue id from a submission's name and content: the same submission read again after a
    /// crash gets the same id, so it is recognised in the queue.
    static func queueID(name: String, content: [UInt8]) -> String {
        let safe = String(name.unicodeScalars.filter { ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "-" }.prefix(40).map(Character.init))
        return "\(safe.isEmpty ? "s" : safe)-\(Digest.hex(Digest.sha256(content)).prefix(10))"
    }

    /// Queues the submissions' messages, but none whose id is in `except` (queued already).
    package static func enqueue(_ submissions: [(id: String, messages: [OutboundMessage])], queue: any OutboundQueueStore, except: Set<String> = []) throws(DurableFiles.Failure) {
        let now = Int64(Date().timeIntervalSince1970)
        var items: [(QueuedMessage, [UInt8])] = []
        for (id, messages) in submissions {
            for (index, message) in messages.enumerated() {
                let itemID = messages.count == 1 ? id : "\(id)-\(index + 1)"
                if except.contains(itemID) { continue }
                items.append((QueuedMessage(id: itemID, mailbox: message.mailbox,
                                            envelopeFrom: message.envelopeFrom, recipients: message.recipients, messageID: message.messageID,
                                            request: message.request, contract: message.contract, created: now), message.bytes))
            }
        }
        guard !items.isEmpty else { return }
        // Which contract each request belongs to, for the inbound side's subject-tag rule.
        try queue.recordContracts(items.compactMap { item, _ in item.request.flatMap { request in item.contract.map { (request, $0) } } })
        try queue.enqueue(items)
    }

    /// Where `submit` left a submission.
    package enum Handover: Equatable, Sendable {
        /// In the queue (no daemon ran; this process was the queue's owner for the moment).
        case queued
        /// In the outbox, for the daemon; `daemonRunning` false when it waits for one.
        case outbox(daemonRunning: Bool)
    }

    /// `carteiro send`: resolve and queue one submission now; the queue id, or the reason.
    package static func submit(_ submission: Submission, configuration: Configuration) -> Result<(id: String, messages: [OutboundMessage], handover: Handover), SubmissionRejection> {
        let root = configuration.daemon.stateDirectory
        let directory = StateDirectory(root: root, spool: configuration.events.spool)
        // The desk's users (group members, not the owner) never write the daemon's files: their
        // submissions go through the outbox, checked here first with a throwaway threading
        // secret (the daemon resolves them again with its own, which they cannot read).
        let member = StateAccess.of(root) != .owner
        let secret: [UInt8]
        do {
            if member {
                guard StateAccess.canWrite(directory.outbox) else {
                    return .failure(SubmissionRejection("cannot write into \(directory.outbox) (permission denied): this user must be in the state directory's group (usually carteiro: adduser USER carteiro, then log in again), or run this as root"))
                }
                secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
            } else {
                try directory.prepare(mailboxes: [])
                secret = try directory.threadingSecret()
            }
        } catch {
            return .failure(SubmissionRejection("the state directory: \(error.description)"))
        }
        let resolver = SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: secret), hostname: hostname(configuration))
        let name = "send-\(UInt64(Date().timeIntervalSince1970 * 1000))-\(getpid())"
        let content = [UInt8](submission.encoded())
        let id = queueID(name: name, content: content)
        switch resolver.resolve(submission, queueID: id) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let messages):
            do {
                // The queue has one owner: with no daemon, this command (under the lock);
                // with one, the daemon, which takes the submission from the outbox and gives
                // it the same id.
                if !member, let lock = try? StateLock.acquire(stateDirectory: root) {
                    try withExtendedLifetime(lock) { () throws(DurableFiles.Failure) in
                        try enqueue([(id, messages)], queue: OutboundQueue(stateDirectory: root))
                    }
                    return .success((id, messages, .queued))
                }
                // Under a fresh temporary name (O_EXCL), in the outbox's group (the daemon's,
                // even where the directory is not setgid), then renamed into place.
                let outbox = try SharedFolder(directory.outbox)
                try outbox.replace(name + ".json", with: content, group: outbox.group)
                try outbox.sync()
            } catch {
                return .failure(SubmissionRejection("cannot queue: \(error.description)"))
            }
            return .success((id, messages, .outbox(daemonRunning: StateLock.isHeld(stateDirectory: root).held)))
        }
    }
}

/// Resolutions filled in by concurrent workers, one slot each.
final class ResolvedSubmissions: Sendable {
    private let slots: Mutex<[Result<[OutboundMessage], SubmissionRejection>?]>
    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }
    func set(_ index: Int, _ value: Result<[OutboundMessage], SubmissionRejection>) { slots.withLock { $0[index] = value } }
    func get(_ index: Int) -> Result<[OutboundMessage], SubmissionRejection>? { slots.withLock { $0[index] } }
}
