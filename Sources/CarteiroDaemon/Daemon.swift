import CarteiroConfig
import CarteiroEvents
import CarteiroOAuth
import CarteiroStore
import CarteiroSystemd
import Dispatch
import Foundation
import Synchronization

/// `carteiro run`: the inbound service and the webhook forwarder under one lifecycle, with
/// systemd notifications, SIGHUP reload and SIGTERM/SIGINT shutdown.
package final class Daemon: Sendable {
    /// Shorter than the unit's TimeoutStopSec (30 s), so systemd never has to SIGKILL.
    package static let stopDeadlineSeconds = 20

    let path: String
    let environment: [String: String]
    let log: DaemonLog
    let notifier = SystemdNotifier()
    /// How the daemon ends: `run` and `runOnce` return the status given here.
    let ending = DaemonEnding()
    /// Serialises start, reload and stop.
    let queue = DispatchQueue(label: "carteiro.daemon")
    /// Everything that changes, owned by `queue`.
    let state: QueueOwned<State>

    struct State {
        var configuration: Configuration
        var service: InboundService
        var outbound: OutboundService
        var forwarder: SpoolConsumer?
        /// OAuth tokens for every mailbox that logs in with them, inbound and outbound alike.
        var broker: TokenBroker
        /// The webhook's settings with its secrets read (at start and at each reload).
        var webhookSettings: WebhookSink.Settings
        var lifecycle = Lifecycle.starting(reload: false)
        var keepAlive: [any DispatchSourceProtocol] = []
        /// The claim on the state directory in use; a reload to another one takes that one's first.
        var stateLock: any StoreClaim
    }

    /// Where the daemon is in its life. Each transition happens on `queue`:
    /// starting → running ⇄ reloading → … → stopping (from any of them; never back).
    enum Lifecycle: Equatable {
        /// `reload`: a SIGHUP came before the services ran; it is applied once they do.
        case starting(reload: Bool)
        case running
        /// `again`: a SIGHUP came during the reload; the file is read once more after it.
        case reloading(again: Bool)
        case stopping
    }

    package init(path: String, environment: [String: String], configuration: Configuration, lock: any StoreClaim, log: DaemonLog) throws(InboundService.StartFailure) {
        self.path = path
        self.environment = environment
        self.log = log
        let broker = Self.makeBroker(configuration, environment: environment, log: log)
        let webhookSettings = try Self.webhookSettings(configuration, environment: environment)
        let service = try InboundService(configuration: configuration, environment: environment, log: log, broker: broker)
        let outbound = try OutboundService(configuration: configuration, environment: environment, log: log, broker: broker)
        state = QueueOwned(State(configuration: configuration, service: service, outbound: outbound, broker: broker,
                                 webhookSettings: webhookSettings, stateLock: lock), on: queue)
    }

    static func webhookSettings(_ configuration: Configuration, environment: [String: String]) throws(InboundService.StartFailure) -> WebhookSink.Settings {
        let resolver = SecretResolver(environment: environment, configurationFile: configuration.files.first)
        let events = configuration.events
        var settings = WebhookSink.Settings(tls: events.webhookTLS, timeout: events.webhookTimeout, inlineAttachments: events.inlineAttachments,
                                               stateDirectory: configuration.daemon.stateDirectory)
        guard events.webhook != nil else { return settings }
        var problems: [String] = []
        if let source = events.webhookSecret {
            switch resolver.resolve(source) {
            case .success(let secret): settings.secret = secret
            case .failure(let failure): problems.append("[events] webhook_secret: \(failure)")
            }
        }
        if let source = events.webhookToken {
            switch resolver.resolve(source) {
            case .success(let token): settings.token = token
            case .failure(let failure): problems.append("[events] webhook_token: \(failure)")
            }
        }
        guard problems.isEmpty else { throw .secrets(problems) }
        return settings
    }

    static func makeBroker(_ configuration: Configuration, environment: [String: String], log: DaemonLog) -> TokenBroker {
        TokenBroker(stateDirectory: configuration.daemon.stateDirectory, clients: configuration.oauthClients,
                    secrets: SecretResolver(environment: environment, configurationFile: configuration.files.first),
                    onEvent: { level, message, fields in
            let level: DaemonLog.Level = switch level {
            case "error": .error
            case "warning": .warning
            case "notice": .notice
            default: .info
            }
            log.log(level, message, pairs: fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        })
    }

    /// Removes old raw messages, attachments and given-up messages (retention), on a worker.
    func cleanUp() {
        let directory = StateDirectory(root: state.configuration.daemon.stateDirectory, spool: state.configuration.events.spool)
        let settings = state.configuration.daemon
        DispatchQueue.global(qos: .utility).async { [log] in
            let outcome = Retention.clean(directory, keepRaw: settings.keepRaw, keepAttachments: settings.keepAttachments, keepFailed: settings.keepFailed)
            if outcome.raw + outcome.attachments + outcome.failed > 0 {
                log.log(.info, "retention", ["raw": String(outcome.raw), "attachments": String(outcome.attachments),
                                             "failed": String(outcome.failed), "bytes": String(outcome.bytes)])
            }
        }
    }

    /// Every OAuth account whose refresh token reaches the end of its known life within its
    /// client's `expiry_warning`: a journal entry and a `mailbox.expiring` event per mailbox.
    func warnOfExpiringAuthorizations() {
        var accounts: [(client: String, user: String)] = []
        var mailboxes: [String: [String]] = [:]
        let logins = state.configuration.inboundMailboxes.map { ($0.name, $0.oauth, Optional($0.user)) }
            + state.configuration.outboundMailboxes.map { ($0.name, $0.oauth, $0.user) }
        for case let (name, login?, user?) in logins {
            let key = login.client + "\u{0}" + user
            if mailboxes[key] == nil { accounts.append((login.client, user)) }
            mailboxes[key, default: []].append(name)
        }
        guard !accounts.isEmpty else { return }
        let directory = StateDirectory(root: state.configuration.daemon.stateDirectory, spool: state.configuration.events.spool)
        let now = Int64(Date().timeIntervalSince1970)
        for (client, user, left) in state.broker.expiringAccounts(accounts) {
            let names = mailboxes[client + "\u{0}" + user] ?? []
            let days = ConfigDuration.format(.seconds(max(left, 0)))
            log.log(.warning, "oauth access expiring", ["oauth": client, "user": user, "left": days, "mailbox": names.joined(separator: ",")])
            for name in names {
                let event = MailboxAlert(kind: .expiring, mailbox: name, contract: state.configuration.contract(owning: name)?.id, failingSince: now, failures: 0,
                                         error: "the OAuth authorization of \(user) ([oauth.\(client)]) runs out in \(days): run `carteiro authorize \(name)`", at: now)
                do { try directory.writeEvent(id: event.id, bytes: event.json().renderedBytes()) } catch {
                    log.log(.error, "cannot write event", ["mailbox": name, "event": event.kind.rawValue, "reason": "\(error)"])
                }
            }
        }
    }

    /// Polls every mailbox once and sends what is queued once; returns the exit status: 0, or
    /// 1 when a mailbox failed or a delivery did not happen.
    package func runOnce() -> Int32 {
        let (service, outbound) = queue.sync { (state.service, state.outbound) }
        let ending = ending
        service.pollOnce { [log] failures in
            log.log(failures == 0 ? .info : .error, "polled once", ["failed": String(failures)])
            outbound.runOnce { undelivered in
                // A mailbox that failed, or a delivery that did not happen (refused, deferred).
                if undelivered > 0 { log.log(.error, "sent once", ["undelivered": String(undelivered)]) }
                ending.end(failures == 0 && undelivered == 0 ? 0 : 1)
            }
        }
        return ending.wait()
    }

    /// Installs real handlers for SIGTERM, SIGINT and SIGHUP (call first thing in `run`): each
    /// writes the signal's number to a pipe that the daemon's queue reads. A handler installed
    /// with sigaction is in place at once and for every thread, so a signal that comes the
    /// moment READY=1 is sent (or before the queue reads the pipe) waits in the pipe; neither
    /// the default action (which ends the process) nor an ignored disposition (which drops it)
    /// can get it first.
    package static func catchSignals() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        SignalPipe.read.store(ends[0], ordering: .releasing)
        SignalPipe.write.store(ends[1], ordering: .releasing)
        for number in [SIGTERM, SIGINT, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalPipe.write.load(ordering: .acquiring), &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
        // The thread that calls this (main, which then waits for the daemon to end) takes
        // them, whatever mask the process was started with (a parent may block them):
        // libdispatch's threads block every signal.
        var wanted = sigset_t()
        sigemptyset(&wanted)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&wanted, number) }
        pthread_sigmask(SIG_UNBLOCK, &wanted, nil)
    }

    /// Runs until a SIGTERM or SIGINT has stopped everything; returns the exit status for `main`.
    package func run() -> Int32 {
        // The handlers exist before READY=1 (and before any work): systemd may send SIGHUP or
        // SIGTERM the moment it hears READY, and an unhandled SIGHUP would end the process.
        // A signal that arrives while the services start waits on `queue` until they have.
        if SignalPipe.read.load(ordering: .acquiring) < 0 { Self.catchSignals() }
        let signalRead = SignalPipe.read.load(ordering: .acquiring)
        let signals = DispatchSource.makeReadSource(fileDescriptor: signalRead, queue: queue)
        signals.setEventHandler { [self] in
            var bytes = [UInt8](repeating: 0, count: 64)
            let count = read(signalRead, &bytes, bytes.count)
            for byte in bytes.prefix(max(count, 0)) {
                let number = Int32(byte)
                if number == SIGHUP { reload() } else { stop(signal: number == SIGTERM ? "TERM" : "INT") }
            }
        }
        signals.resume()
        queue.sync { state.keepAlive.append(signals) }
        queue.sync {
            startServices()
        }
        queue.async { [self] in
            // A SIGTERM that came while the services started has made this `.stopping` already.
            guard case .starting(let reload) = state.lifecycle else { return }
            state.lifecycle = .running
            if reload { self.reload() }
        }
        notifier.ready(status: queue.sync { statusLine() })
        // STATUS= follows the mailboxes' health.
        // Retention: a minute after the start, then every hour, off the daemon's queue.
        let retentionTimer = DispatchSource.makeTimerSource(queue: queue)
        // CARTEIRO_RETENTION_EVERY=SECONDS runs it more often (tests, or a disk filling up fast).
        let every = environment["CARTEIRO_RETENTION_EVERY"].flatMap(Int.init).map { min(max($0, 1), 86_400) } ?? 3600
        // The first a minute after the start (a daemon restarted every hour would otherwise never
        // clean), then every `every`.
        retentionTimer.schedule(deadline: .now() + .seconds(min(every, 60)), repeating: .seconds(every))
        retentionTimer.setEventHandler { [self] in
            guard state.lifecycle == .running else { return }
            cleanUp()
        }
        retentionTimer.resume()
        queue.sync { state.keepAlive.append(retentionTimer) }
        // OAuth authorizations that run out soon: said ahead of time, once per refresh token.
        let expiryTimer = DispatchSource.makeTimerSource(queue: queue)
        expiryTimer.schedule(deadline: .now() + .seconds(3), repeating: .seconds(600))
        expiryTimer.setEventHandler { [self] in
            guard state.lifecycle == .running else { return }
            warnOfExpiringAuthorizations()
        }
        expiryTimer.resume()
        queue.sync { state.keepAlive.append(expiryTimer) }
        let statusTimer = DispatchSource.makeTimerSource(queue: queue)
        statusTimer.schedule(deadline: .now() + .seconds(5), repeating: .seconds(10))
        statusTimer.setEventHandler { [self] in
            guard state.lifecycle == .running else { return }
            // The lanes count as they go: no queue entry is read for this.
            state.service.summary { [notifier, outbound = state.outbound] inbound in
                outbound.summary { notifier.status("\(inbound); \($0)") }
            }
        }
        statusTimer.resume()
        queue.sync { state.keepAlive.append(statusTimer) }
        return ending.wait()
    }

    func statusLine() -> String {
        "\(state.configuration.inboundMailboxes.count) inbound mailboxes, polling; \(state.configuration.outboundMailboxes.count) outbound lanes"
    }

    func startServices() {
        dispatchPrecondition(condition: .onQueue(queue))
        state.service.start()
        // `carteiro poll` reaches the inbound side through the outbound watcher's control requests.
        state.outbound.answerPolls { [self] mailbox, answer in queue.async { [self] in state.service.pollNow(mailbox, answer: answer) } }
        state.outbound.start()
        if let interval = notifier.watchdogInterval {
            state.service.heartbeat(every: interval) { [notifier] in notifier.watchdog() }
        }
        state.forwarder = state.configuration.events.webhook.map { [settings = state.webhookSettings, spool = state.configuration.events.spool] in
            WebhookSink.consumer(spool: spool, url: $0, log: log, settings: settings)
        }
        state.forwarder?.start()
    }

    /// SIGTERM/SIGINT: stop polling, let running polls finish within the deadline, exit 0.
    func stop(signal: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard state.lifecycle != .stopping else { return }
        // A reload in flight is abandoned: its completion sees `.stopping` and starts nothing.
        state.lifecycle = .stopping
        log.log(.notice, "stopping", ["signal": signal])
        notifier.stopping()
        // Polls still running after the deadline are abandoned: their batch never committed,
        // so the next start fetches those messages again. Nothing is lost.
        queue.asyncAfter(deadline: .now() + .seconds(Self.stopDeadlineSeconds)) { [log, ending] in
            log.log(.warning, "stopped with polls still running", ["deadline": "\(Self.stopDeadlineSeconds)s"])
            ending.end(0)
        }
        state.forwarder?.stop {}
        let group = DispatchGroup()
        group.enter()
        state.service.stop { group.leave() }
        group.enter()
        state.outbound.stop { group.leave() }
        group.notify(queue: queue) { [log, ending] in
            log.log(.notice, "stopped", [:])
            ending.end(0)
        }
    }

    /// SIGHUP: read and validate the file again. On any error the running configuration stays
    /// and every error is logged with PATH:LINE:COLUMN; otherwise the services are stopped
    /// (running polls finish: their batches commit) and started again with the new one.
    func reload() {
        dispatchPrecondition(condition: .onQueue(queue))
        switch state.lifecycle {
        case .stopping: return
        case .starting:
            state.lifecycle = .starting(reload: true)
            return
        case .reloading:
            // A SIGHUP during a reload is not lost: the file is read once more afterwards.
            state.lifecycle = .reloading(again: true)
            return
        case .running:
            state.lifecycle = .reloading(again: false)
        }
        notifier.reloading()
        log.log(.notice, "reloading", ["config": path])
        let outcome = ConfigurationFile.load(path: path, environment: environment)
        guard let next = outcome.configuration else {
            for error in outcome.errors { log.log(.error, "reload failed", ["error": "\(error)"]) }
            finishReload(status: "reload failed (\(outcome.errors.count) errors); running the previous configuration")
            return
        }
        let resolver = SecretResolver(environment: environment, configurationFile: next.files.first)
        let unreadable = next.inboundMailboxes.compactMap { mailbox -> String? in
            if mailbox.oauth != nil { return nil }
            if case .failure(let failure) = resolver.resolve(mailbox.password) { return "\(mailbox.location): mailbox \"\(mailbox.name)\": \(failure)" }
            return nil
        }
        guard unreadable.isEmpty else {
            for error in unreadable { log.log(.error, "reload failed", ["error": error]) }
            finishReload(status: "reload failed (\(unreadable.count) errors); running the previous configuration")
            return
        }
        for warning in outcome.warnings { log.log(.warning, "configuration", ["warning": warning.description]) }
        if next.daemon.stateDirectory == state.configuration.daemon.stateDirectory && next.events.spool == state.configuration.events.spool {
            // The usual case: mailboxes and lanes are added, changed or removed in place; the
            // unchanged ones are not disturbed.
            // All or nothing: both halves are made ready first; only when neither failed does
            // anything that runs change.
            let inboundReload: InboundService.Reload
            let outboundReload: OutboundService.Reload
            let nextWebhook: WebhookSink.Settings
            do {
                inboundReload = try state.service.prepareReload(next, environment: environment)
                outboundReload = try state.outbound.prepareReload(next, environment: environment)
                nextWebhook = try Self.webhookSettings(next, environment: environment)
            } catch {
                log.log(.error, "reload failed", ["error": "\(error)"])
                finishReload(status: "reload failed; running the previous configuration")
                return
            }
            state.broker.update(clients: next.oauthClients)
            state.service.apply(inboundReload)
            state.outbound.apply(outboundReload)
            if next.events != state.configuration.events {
                state.webhookSettings = nextWebhook
                replaceForwarder(next.events.webhook.map { WebhookSink.consumer(spool: next.events.spool, url: $0, log: log, settings: nextWebhook) })
            }
            state.configuration = next
            log.log(.notice, "reloaded", ["inbound_mailboxes": String(next.inboundMailboxes.count),
                                          "outbound_mailboxes": String(next.outboundMailboxes.count)])
            finishReload(status: statusLine())
            return
        }
        // A new state directory or spool: everything stops and starts again there, once this
        // process holds the new directory.
        let nextLock: any StoreClaim
        do {
            nextLock = next.daemon.stateDirectory == state.configuration.daemon.stateDirectory
                ? state.stateLock : try StateDirectory(root: next.daemon.stateDirectory, spool: next.events.spool).claim()
        } catch {
            log.log(.error, "reload failed", ["error": "\(error)"])
            finishReload(status: "reload failed; running the previous configuration")
            return
        }
        let old = state.service
        let oldOutbound = state.outbound
        let group = DispatchGroup()
        if let oldForwarder = state.forwarder {
            group.enter()
            oldForwarder.stop { group.leave() }
        }
        group.enter()
        old.stop { group.leave() }
        group.enter()
        oldOutbound.stop { group.leave() }
        group.notify(queue: queue) { [self] in
            queue.async { [self] in
                // A SIGTERM while the old services stopped: nothing is started again.
                guard case .reloading = state.lifecycle else { return }
                do {
                    let nextBroker = Self.makeBroker(next, environment: environment, log: log)
                    state.service = try InboundService(configuration: next, environment: environment, log: log, broker: nextBroker)
                    state.outbound = try OutboundService(configuration: next, environment: environment, log: log, broker: nextBroker)
                    state.broker = nextBroker
                    state.webhookSettings = try Self.webhookSettings(next, environment: environment)
                    state.configuration = next
                    state.stateLock = nextLock
                    log.log(.notice, "reloaded", ["inbound_mailboxes": String(next.inboundMailboxes.count)])
                } catch {
                    // The old configuration's service was stopped; start it again.
                    log.log(.error, "reload failed", ["error": "\(error)"])
                    if let again = try? InboundService(configuration: state.configuration, environment: environment, log: log, broker: state.broker) { state.service = again }
                    if let again = try? OutboundService(configuration: state.configuration, environment: environment, log: log, broker: state.broker) { state.outbound = again }
                }
                startServices()
                finishReload(status: statusLine())
            }
        }
    }

    /// One forwarder at a time on the spool: the new one starts only once the old one has
    /// stopped (its POST in flight finished), or two would post the same events out of order.
    func replaceForwarder(_ next: SpoolConsumer?) {
        guard let old = state.forwarder else {
            state.forwarder = next
            next?.start()
            return
        }
        state.forwarder = next
        old.stop { next?.start() }
    }

    func finishReload(status: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        guard case .reloading(let again) = state.lifecycle else { return }
        state.lifecycle = .running
        notifier.ready(status: status)
        if again { reload() }
    }
}
