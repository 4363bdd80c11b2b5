#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroStore
import Dispatch
import Foundation

/// With `[events] webhook` set, POSTs each event of the spool to the desk and removes it on a
/// 2xx answer. Events go out in order per mailbox: a refused event holds back the
/// ones after it in its mailbox, and that mailbox retries with exponential backoff; other
/// mailboxes carry on.
public final class EventForwarder: @unchecked Sendable {
    static let tick: DispatchTimeInterval = .milliseconds(250)
    static let requestTimeout: Duration = .seconds(30)

    let spool: String
    let url: String
    let log: DaemonLog
    /// The webhook's settings, its secrets resolved.
    public struct Settings: Sendable {
        public var secret: Secret?
        public var token: Secret?
        public var tls: TLSSettings
        public var timeout: Duration
        public var inlineAttachments: Int
        /// Where attachment paths point from (the state directory).
        public var stateDirectory: String
        public init(secret: Secret? = nil, token: Secret? = nil, tls: TLSSettings = TLSSettings(), timeout: Duration = .seconds(30),
                    inlineAttachments: Int = 0, stateDirectory: String = "") {
            self.secret = secret
            self.token = token
            self.tls = tls
            self.timeout = timeout
            self.inlineAttachments = inlineAttachments
            self.stateDirectory = stateDirectory
        }
    }
    let settings: Settings
    // The webhook's health for `status` (webhook.json in the state directory), on `queue`.
    var lastSuccess: Int64?
    var failingSince: Int64?
    var lastError: String?
    var stateWrittenAt: Int64 = 0

    /// Writes webhook.json when the health changed, or at most every 10 s while it works.
    func recordState(changed: Bool) {
        guard !settings.stateDirectory.isEmpty else { return }
        let now = Int64(Date().timeIntervalSince1970)
        guard changed || now - stateWrittenAt >= 10 else { return }
        stateWrittenAt = now
        var object: [String: Any] = ["url": url]
        if let lastSuccess { object["last_success"] = lastSuccess }
        if let failingSince { object["failing_since"] = failingSince }
        if let lastError { object["last_error"] = lastError }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            try? DurableFiles.replace(settings.stateDirectory + "/webhook.json", with: [UInt8](data))
        }
    }
    let queue = DispatchQueue(label: "carteiro.webhook")
    var timer: DispatchSourceTimer?
    // Touched only on `queue`.
    var backoff: [String: (until: ContinuousClock.Instant, failures: Int)] = [:]
    /// Raised by `stop` at once, so the pass in flight ends after its current message.
    let stopping = StopFlag()

    public init(spool: String, url: String, log: DaemonLog, settings: Settings = Settings()) {
        self.spool = spool
        self.url = url
        self.log = log
        self.settings = settings
    }

    /// `Carteiro-Signature: t=TIME,v1=HEX`: HMAC-SHA-256 of "TIME." + body with the secret.
    /// The desk recomputes it, compares in constant time, and refuses old timestamps (replays).
    public static func signature(body: [UInt8], secret: Secret, time: Int64) -> String {
        let mac = Digest.hmacSHA256(key: Array(secret.value.utf8), data: Array("\(time).".utf8) + body)
        return "t=\(time),v1=\(Digest.hex(mac))"
    }

    /// The event as POSTed: with attachments inline (base64 in `content_base64`) while they fit
    /// in `inline_attachments`, the rest by their path as in the spool.
    func payload(_ body: [UInt8]) -> [UInt8] {
        guard settings.inlineAttachments > 0,
              var event = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              var message = event["message"] as? [String: Any],
              let attachments = message["attachments"] as? [[String: Any]], !attachments.isEmpty else { return body }
        var left = settings.inlineAttachments
        var changed = false
        message["attachments"] = attachments.map { attachment -> [String: Any] in
            guard let path = attachment["path"] as? String, let size = attachment["size"] as? Int, size <= left,
                  path.hasPrefix("attachments/"),
                  case .success(let bytes) = RegularFile.read(beneath: settings.stateDirectory, path: path, limit: size,
                                                              requirements: .init(singleLink: true, owner: geteuid())) else { return attachment }
            left -= size
            changed = true
            var inline = attachment
            inline["content_base64"] = Data(bytes).base64EncodedString()
            return inline
        }
        guard changed else { return body }
        event["message"] = message
        return (try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys])).map { [UInt8]($0) } ?? body
    }

    public func start() {
        queue.async { [self] in
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now(), repeating: Self.tick, leeway: .milliseconds(50))
            timer.setEventHandler { [weak self] in self?.deliverRound() }
            self.timer = timer
            timer.resume()
        }
    }

    /// Stops after the POST in flight, if any.
    public func stop(completion: @escaping @Sendable () -> Void) {
        stopping.raise()
        queue.async { [self] in
            timer?.cancel()
            timer = nil
            completion()
        }
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
                let payload = payload(body)
                var headers: [String] = []
                if let secret = settings.secret {
                    headers.append("Carteiro-Signature: " + Self.signature(body: payload, secret: secret, time: Int64(Date().timeIntervalSince1970)))
                }
                if let token = settings.token { headers.append("Authorization: Bearer \(token.value)") }
                let outcome = HTTPPost.send(payload, to: url, timeout: settings.timeout, tls: settings.tls, headers: headers)
                if case .status(let code) = outcome, (200..<300).contains(code) {
                    folder.remove(name)
                    if backoff.removeValue(forKey: lane) != nil {
                        log.log(.notice, "webhook accepts events again", ["mailbox": lane])
                    }
                    lastSuccess = Int64(Date().timeIntervalSince1970)
                    let recovered = failingSince != nil && backoff.isEmpty
                    if recovered { failingSince = nil; lastError = nil }
                    recordState(changed: recovered)
                    continue
                }
                let failures = (backoff[lane]?.failures ?? 0) + 1
                let delay = RetryPolicy.webhook.delay(after: failures)
                backoff[lane] = (ContinuousClock.now + delay, failures)
                let reason: String = switch outcome {
                case .status(let code): "HTTP \(code)"
                case .failed(let text): text
                }
                log.log(.warning, "webhook refused an event", ["mailbox": lane, "event": name, "reason": reason,
                                                               "retry_in": "\(delay.components.seconds)s"])
                if failingSince == nil { failingSince = Int64(Date().timeIntervalSince1970) }
                lastError = reason
                recordState(changed: true)
                break
            }
        }
    }
}
