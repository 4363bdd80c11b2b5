import CarteiroConfig
import CarteiroEvents
import CarteiroStore
import Foundation

/// The inbound half of the daemon: a store and a poller per inbound mailbox, driven by the scheduler.
public final class InboundService: @unchecked Sendable {
    public enum StartFailure: Error, CustomStringConvertible {
        case secrets([String])
        case storage(String)
        public var description: String {
            switch self {
            case .secrets(let problems): problems.joined(separator: "\n")
            case .storage(let text): "the state directory: \(text)"
            }
        }
    }

    let configuration: Configuration
    let directory: StateDirectory
    let scheduler: InboundScheduler
    let log: DaemonLog

    /// Resolves every password, prepares the state directory and recovers interrupted batches.
    public init(configuration: Configuration, environment: [String: String], log: DaemonLog) throws(StartFailure) {
        self.configuration = configuration
        self.log = log
        directory = StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool)
        let resolver = SecretResolver(environment: environment)
        var passwords: [String: Secret] = [:]
        var problems: [String] = []
        for mailbox in configuration.inboundMailboxes {
            switch resolver.resolve(mailbox.password) {
            case .success(let secret): passwords[mailbox.name] = secret
            case .failure(let failure): problems.append("\(mailbox.location): mailbox \"\(mailbox.name)\": \(failure)")
            }
        }
        guard problems.isEmpty else { throw .secrets(problems) }
        var stores: [String: MailboxStore] = [:]
        let builder: EventBuilder
        do {
            try directory.prepare(mailboxes: configuration.inboundMailboxes.map(\.name))
            for mailbox in configuration.inboundMailboxes {
                stores[mailbox.name] = try MailboxStore(directory: directory, mailbox: mailbox.name)
            }
            builder = EventBuilder(threading: RequestThreading(secret: try directory.threadingSecret()),
                                   ownAddresses: Set(configuration.outboundMailboxes.map(\.sender.address)))
        } catch {
            throw .storage(error.description)
        }
        var pollers: [String: @Sendable () -> Result<PollOutcome, PollFailure>] = [:]
        for mailbox in configuration.inboundMailboxes {
            guard let store = stores[mailbox.name], let password = passwords[mailbox.name] else { continue }
            let ingest = InboundIngest(mailbox: mailbox, contract: configuration.contract(owning: mailbox.name)?.id, builder: builder, store: store, log: log)
            if mailbox.provider.isIMAP {
                pollers[mailbox.name] = { Self.result { () throws(PollFailure) in try IMAPPoller(ingest: ingest, password: password).poll() } }
            } else {
                pollers[mailbox.name] = { Self.result { () throws(PollFailure) in try POP3Poller(ingest: ingest, password: password).poll() } }
            }
        }
        let table = pollers
        let directory = self.directory
        let contracts = Dictionary(uniqueKeysWithValues: configuration.inboundMailboxes.map { ($0.name, configuration.contract(owning: $0.name)?.id) })
        let alert: InboundScheduler.Alert = { mailbox, status, recovered in
            let event = MailboxAlert(kind: recovered ? .recovered : .failing, mailbox: mailbox.name, contract: contracts[mailbox.name] ?? nil,
                                     failingSince: status.failingSince ?? 0, failures: status.consecutiveFailures,
                                     error: status.lastError, at: Int64(Date().timeIntervalSince1970))
            do {
                try directory.writeEvent(id: event.id, bytes: event.json().renderedBytes())
            } catch {
                log.log(.error, "cannot write event", ["mailbox": mailbox.name, "event": event.kind.rawValue, "reason": "\(error)"])
            }
        }
        scheduler = InboundScheduler(mailboxes: configuration.inboundMailboxes, maxParallel: configuration.daemon.maxParallelPolls,
                                     statusPath: configuration.daemon.stateDirectory + "/status.json", log: log,
                                     contracts: contracts.compactMapValues { $0 }, alert: alert) { name in
            table[name].map { $0() } ?? .failure(.configuration("unknown mailbox \(name)"))
        }
        for mailbox in configuration.inboundMailboxes where !mailbox.starttls && !mailbox.provider.usesImplicitTLS {
            log.log(.warning, "plain text allowed", ["mailbox": mailbox.name, "reason": "starttls = false"])
        }
    }

    static func result(_ body: () throws(PollFailure) -> PollOutcome) -> Result<PollOutcome, PollFailure> {
        do { return .success(try body()) } catch { return .failure(error) }
    }

    public func start() {
        log.log(.notice, "polling started", ["mailboxes": String(configuration.inboundMailboxes.count),
                                             "state_dir": directory.root, "spool": directory.spool])
        scheduler.start()
    }

    public func heartbeat(every interval: Duration, _ beat: @escaping @Sendable () -> Void) {
        scheduler.heartbeat(every: interval, beat)
    }

    public func summary(_ done: @escaping @Sendable (String) -> Void) {
        scheduler.summary(done)
    }

    /// Polls each mailbox once; `completion` gets the number of mailboxes that failed.
    public func pollOnce(completion: @escaping @Sendable (Int) -> Void) {
        scheduler.pollOnce(completion: completion)
    }

    public func stop(completion: @escaping @Sendable () -> Void) {
        scheduler.stop(completion: completion)
    }
}

extension MailboxStore: @unchecked Sendable {}
