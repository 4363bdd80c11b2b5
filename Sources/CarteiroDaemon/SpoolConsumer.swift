#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroJSON
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// Where the events of the spool go when the desk does not take them from the spool itself: a
/// webhook (`WebhookSink`) today. A sink only delivers one event; the `SpoolConsumer` that
/// drives it does the reading, the order, the retries and the health.
protocol EventSink: Sendable {
    /// Names the sink's health file in the state directory (`webhook` → `webhook.json`).
    var kind: String { get }
    /// What the health file says of the sink besides its health (the webhook's URL).
    var healthFields: [String: String] { get }
    /// Delivers one event (its bytes as in the spool); nil: taken, the event may go. Otherwise,
    /// why not: the event stays, and its mailbox waits.
    func deliver(_ event: [UInt8], named name: String) -> String?
}

/// Consumes the spool for a sink: hands each event to it and removes it once taken. Events go
/// out in order per mailbox: a refused event holds back the ones after it in its mailbox, and
/// that mailbox retries with `RetryPolicy.webhook`; other mailboxes carry on. The sink's health
/// (last success, failing since, last error) is written to `KIND.json` for `status`.
package final class SpoolConsumer: Sendable {
    static let tick: DispatchTimeInterval = .milliseconds(250)

    let spool: String
    let sink: any EventSink
    let log: DaemonLog
    /// Where the health file goes; empty: none.
    let stateDirectory: String
    /// The sink's health, and each mailbox's wait after a refusal (changed on `queue`).
    struct Health {
        var lastSuccess: Int64?
        var failingSince: Int64?
        var lastError: String?
        var writtenAt: Int64 = 0
        var backoff: [String: (until: ContinuousClock.Instant, failures: Int)] = [:]
    }
    private let health = Mutex(Health())
    /// Each mailbox's wait after a refusal.
    var backoff: [String: (until: ContinuousClock.Instant, failures: Int)] {
        get { health.withLock { $0.backoff } }
        set { health.withLock { $0.backoff = newValue } }
    }
    let queue: DispatchQueue
    /// Raised by `stop` at once, so the pass in flight ends after its current event.
    let stopping = StopFlag()

    init(spool: String, sink: any EventSink, log: DaemonLog, stateDirectory: String) {
        self.spool = spool
        self.sink = sink
        self.log = log
        self.stateDirectory = stateDirectory
        queue = DispatchQueue(label: "carteiro.sink.\(sink.kind)")
    }

    /// Writes the health file when the health changed, or at most every 10 s while it works.
    func recordState(changed: Bool, _ health: inout Health) {
        guard !stateDirectory.isEmpty else { return }
        let now = Int64(Date().timeIntervalSince1970)
        guard changed || now - health.writtenAt >= 10 else { return }
        health.writtenAt = now
        var object: [String: JSONValue] = sink.healthFields.mapValues(JSONValue.string)
        if let lastSuccess = health.lastSuccess { object["last_success"] = .number(lastSuccess) }
        if let failingSince = health.failingSince { object["failing_since"] = .number(failingSince) }
        if let lastError = health.lastError { object["last_error"] = .string(lastError) }
        let path = stateDirectory + "/\(sink.kind).json"
        do throws(DurableFiles.Failure) {
            try DurableFiles.replace(path, with: JSONValue.object(object.sorted { $0.key < $1.key }).renderedCompact())
        } catch {
            log.log(.error, "cannot write the event sink's health", ["path": path, "reason": "\(error)"])
        }
    }

    package func start() {
        queue.async { [self] in round() }
    }

    /// A round now, and the next a tick after it ends, until the stop.
    private func round() {
        guard !stopping.isRaised else { return }
        deliverRound()
        queue.asyncAfter(deadline: .now() + Self.tick) { [weak self] in self?.round() }
    }

    /// Stops after the delivery in flight, if any.
    package func stop(completion: @escaping @Sendable () -> Void) {
        stopping.raise()
        queue.async { completion() }
    }

    /// The largest event read from the spool: far above any event Carteiro writes (bodies are
    /// bounded by `max_message_size`), so only a planted file reaches it.
    static let maximumEventSize = 256 << 20

    /// The spool's events by mailbox (the file name up to the first `+`), oldest first. The
    /// desk's group can write into the spool: an entry that is not a regular file of this
    /// service's with one name (a symbolic link to a secret, a hard link, a FIFO, a member's
    /// own file) is refused, reported once with its path, and removed; it is never read.
    func lanes(_ folder: SharedFolder) -> [String: [String]] {
        var lanes: [String: [(name: String, modified: timespec)]] = [:]
        for name in folder.names() where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard let info = folder.status(name) else { continue }
            if let problem = RegularFile.refusal(info, requirements: Self.eventRequirements) {
                refuse(name, in: folder, problem)
                continue
            }
            let lane = String(name.prefix { $0 != "+" })
            lanes[lane, default: []].append((name, info.st_mtim))
        }
        return lanes.mapValues { files in
            files.sorted { a, b in
                if a.modified.tv_sec != b.modified.tv_sec { return a.modified.tv_sec < b.modified.tv_sec }
                if a.modified.tv_nsec != b.modified.tv_nsec { return a.modified.tv_nsec < b.modified.tv_nsec }
                return a.name < b.name
            }.map(\.name)
        }
    }

    /// Events are written by this service alone: its own, with one name.
    static var eventRequirements: RegularFile.Requirements { .init(singleLink: true, owner: geteuid()) }

    func refuse(_ name: String, in folder: SharedFolder, _ problem: RegularFile.Problem) {
        folder.remove(name)
        log.log(.warning, RefusedEntry.message, RefusedEntry(path: folder.path(name), reason: problem.description, action: "removed unread").fields)
    }

    func deliverRound() {
        let now = ContinuousClock.now
        guard let folder = try? SharedFolder(spool) else { return }
        // The round's own copy, put back as it ends (only this queue changes it).
        var health = self.health.withLock { $0 }
        defer { self.health.withLock { [health] in $0 = health } }
        var backoff: [String: (until: ContinuousClock.Instant, failures: Int)] {
            get { health.backoff }
            set { health.backoff = newValue }
        }
        for (lane, files) in lanes(folder).sorted(by: { $0.key < $1.key }) {
            if let wait = backoff[lane], wait.until > now { continue }
            for name in files {
                guard !stopping.isRaised else { return }
                let body: [UInt8]
                switch folder.read(name, limit: Self.maximumEventSize, requirements: Self.eventRequirements) {
                case .success(let bytes): body = bytes
                case .failure(.missing): continue // taken by the desk meanwhile
                case .failure(let problem):
                    // Swapped since the listing: checked again on what was opened.
                    refuse(name, in: folder, problem)
                    continue
                }
                guard let reason = sink.deliver(body, named: name) else {
                    folder.remove(name)
                    if backoff.removeValue(forKey: lane) != nil {
                        log.log(.notice, "\(sink.kind) accepts events again", ["mailbox": lane])
                    }
                    health.lastSuccess = Int64(Date().timeIntervalSince1970)
                    let recovered = health.failingSince != nil && health.backoff.isEmpty
                    if recovered { health.failingSince = nil; health.lastError = nil }
                    recordState(changed: recovered, &health)
                    continue
                }
                let failures = (backoff[lane]?.failures ?? 0) + 1
                let delay = RetryPolicy.webhook.delay(after: failures)
                backoff[lane] = (ContinuousClock.now + delay, failures)
                log.log(.warning, "\(sink.kind) refused an event", ["mailbox": lane, "event": name, "reason": reason,
                                                                    "retry_in": "\(delay.components.seconds)s"])
                if health.failingSince == nil { health.failingSince = Int64(Date().timeIntervalSince1970) }
                health.lastError = reason
                recordState(changed: true, &health)
                break
            }
        }
    }
}
