import CarteiroConfig
import CarteiroJSON
import CarteiroMail
import CarteiroOAuth
import CarteiroStore
import Foundation

/// `carteiro status`: what the running daemon last wrote to `status.json`.
package enum StatusReport {
    /// `descriptions`: each mailbox's `description` from the configuration, shown beside it.
    /// `limits`: each outbound lane's sending limits, to say when one holds messages back.
    package static func render(stateDirectory: String, descriptions: [String: String] = [:], oauth: [OAuthAccount] = [], disabled: [String] = [],
                              spool: String? = nil, webhook: String? = nil, limits: [String: (perMinute: Int?, perDay: Int?)] = [:],
                              now: Int64 = Int64(Date().timeIntervalSince1970)) -> (text: String, running: Bool) {
        let path = stateDirectory + "/status.json"
        guard let data = FileManager.default.contents(atPath: path), let object = JSONValue.parse(Array(data)) else {
            var text = "carteiro is not running, or has not polled yet: no \(path)\n"
            for account in oauth {
                text += "oauth \(account.client) \(account.user) (\(account.mailboxes.joined(separator: ", "))): "
                    + describe(account, stateDirectory: stateDirectory, now: now, ago: { $0.map { "\(max(now - $0, 0))s ago" } ?? "never" }) + "\n"
            }
            return (text, false)
        }
        let pid = object["pid"]?.int ?? 0
        // Whether a daemon runs is the state directory's lock, not the pid in the file (which
        // may be stale, reused by another process, damaged or forged).
        let running = StateLock.isHeld(stateDirectory: stateDirectory).held
        var lines = [running ? "carteiro is running (pid \(pid))" : "carteiro is NOT running (last pid \(pid)); the state below is from its last run"]
        func ago(_ time: Int64?) -> String {
            guard let time else { return "never" }
            let (difference, overflow) = now.subtractingReportingOverflow(time)
            let seconds = overflow ? 0 : max(0, difference)
            return seconds < 120 ? "\(seconds)s ago" : seconds < 7200 ? "\(seconds / 60)m ago" : "\(seconds / 3600)h ago"
        }
        for entry in object["mailboxes"]?.array ?? [] {
            guard let status = MailboxStatus(json: entry) else { continue }
            let label = descriptions[status.name].flatMap { $0.isEmpty ? nil : " (\($0))" } ?? ""
            guard status.lastPoll != nil || status.consecutiveFailures > 0 else {
                lines.append("mailbox \(status.name)\(label): not polled yet")
                continue
            }
            let health = status.consecutiveFailures == 0 ? "ok" : "FAILING (\(status.consecutiveFailures) in a row since \(ago(status.failingSince)))"
            lines.append("mailbox \(status.name)\(label): \(health); last poll \(ago(status.lastPoll)), last success \(ago(status.lastSuccess)), \(status.handedOn) handed on by this run" + (status.dropped > 0 ? ", \(status.dropped) dropped by routing rules" : ""))
            if let error = status.lastError { lines.append("  last error: \(error)") }
        }
        for name in disabled { lines.append("mailbox \(name): disabled (enabled = false): not polled") }
        let backlog = Self.backlog(spool: spool ?? stateDirectory + "/events", now: now)
        lines.append("spool: \(backlog.count) event\(backlog.count == 1 ? "" : "s") waiting for the desk" + (backlog.oldestAge.map { ", the oldest \(ago(now - $0))" } ?? ""))
        let held = Quarantine(StateDirectory(root: stateDirectory, spool: spool ?? stateDirectory + "/events")).count
        if held > 0 { lines.append("quarantine: \(held) event\(held == 1 ? "" : "s") held (sender failed authentication): carteiro quarantine list") }
        if let webhook {
            var line = "webhook \(webhook): "
            if let data = FileManager.default.contents(atPath: stateDirectory + "/webhook.json"), let health = JSONValue.parse(Array(data)) {
                if let since = health["failing_since"]?.int64 {
                    line += "FAILING since \(ago(since))" + (health["last_error"]?.string.map { " (\($0))" } ?? "")
                } else {
                    line += "ok, last event accepted \(ago(health["last_success"]?.int64))"
                }
            } else {
                line += "nothing posted yet"
            }
            lines.append(line)
        }
        // The outbound lanes, from the queue itself.
        let queue = OutboundQueue(stateDirectory: stateDirectory)
        let failedMessages = queue.failedMessages()
        for lane in queue.lanes() {
            let items = queue.messages(in: lane)
            let deferred = items.filter { $0.attempts > 0 }.count
            var line = "lane \(lane): \(items.count) queued (\(deferred) deferred)"
            let given = failedMessages.filter { $0.mailbox == lane }.count
            if given > 0 { line += ", \(given) given up" }
            if let limit = limits[lane], let until = throttledUntil(queue: queue, lane: lane, items: items, limit: limit, now: now) {
                line += "; HELD BACK by its sending limit until \(MailDate.iso8601(until)) (in \(ConfigDuration.format(.seconds(max(until - now, 0)))))"
            }
            if let error = items.compactMap(\.lastError).first { line += "; last error: \(error)" }
            lines.append(line)
        }
        let failed = failedMessages.count
        if failed > 0 { lines.append("\(failed) message\(failed == 1 ? "" : "s") given up in queue/failed (carteiro queue list)") }
        for account in oauth {
            lines.append("oauth \(account.client) \(account.user) (\(account.mailboxes.joined(separator: ", "))): " + describe(account, stateDirectory: stateDirectory, now: now, ago: ago))
        }
        // Every line holds what servers said (last errors): escaped, so none can forge a line
        // of its own or drive the terminal.
        return (lines.map { PrintableText.escaped($0, limit: 4000) }.joined(separator: "\n") + "\n", running)
    }

    /// The spool's backlog: events waiting for the desk, and the oldest one's age in seconds.
    package static func backlog(spool: String, now: Int64) -> (count: Int, oldestAge: Int64?) {
        var count = 0
        var oldest: Int64?
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
            // The entry itself: a link or a FIFO a member planted is no event (and is not followed).
            var info = stat()
            guard lstat(spool + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            count += 1
            oldest = min(oldest ?? Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_sec))
        }
        return (count, oldest.map { max(now - $0, 0) })
    }

    /// What `status --json` prints (its shape is documented in carteiro(8)).
    package struct Inputs: Sendable {
        package var stateDirectory: String
        package var spool: String
        package var mailboxes: [(name: String, contract: String?, description: String, enabled: Bool)]
        package var lanes: [(name: String, perMinute: Int?, perDay: Int?)]
        package var webhook: String?
        package var oauth: [OAuthAccount]
        /// Set when the configuration could not be read: the report is from the last recorded state.
        package var configurationProblem: String?
        package init(stateDirectory: String, spool: String, mailboxes: [(name: String, contract: String?, description: String, enabled: Bool)],
                    lanes: [(name: String, perMinute: Int?, perDay: Int?)], webhook: String?, oauth: [OAuthAccount], configurationProblem: String?) {
            self.stateDirectory = stateDirectory
            self.spool = spool
            self.mailboxes = mailboxes
            self.lanes = lanes
            self.webhook = webhook
            self.oauth = oauth
            self.configurationProblem = configurationProblem
        }
    }

    package static func json(_ inputs: Inputs, now: Int64 = Int64(Date().timeIntervalSince1970)) -> (text: String, running: Bool) {
        let state = inputs.stateDirectory
        let recorded = FileManager.default.contents(atPath: state + "/status.json").flatMap { JSONValue.parse(Array($0)) }
        let lock = StateLock.isHeld(stateDirectory: state)
        var document: [String: JSONValue] = ["running": .bool(lock.held), "state_dir": .string(state), "now": .number(now)]
        if let pid = lock.pid { document["pid"] = .number(Int64(pid)) }
        if let written = recorded?["written_at"] { document["recorded_at"] = written }
        document["configuration"] = .string(inputs.configurationProblem.map { "broken: \($0)" } ?? "ok")
        let statuses = Dictionary((recorded?["mailboxes"]?.array ?? []).compactMap { entry in entry["name"]?.string.map { ($0, entry) } },
                                  uniquingKeysWith: { first, _ in first })
        var mailboxes: [JSONValue] = []
        let names = inputs.mailboxes.isEmpty ? statuses.keys.sorted().map { ($0, nil as String?, "", true) } : inputs.mailboxes.map { ($0.name, $0.contract, $0.description, $0.enabled) }
        for (name, contract, description, enabled) in names {
            var entry: [String: JSONValue] = ["name": .string(name), "description": .string(description), "contract": .optional(contract)]
            let recordedEntry = statuses[name] ?? .object([])
            let failures = recordedEntry["consecutive_failures"]?.int ?? 0
            entry["state"] = .string(!enabled ? "disabled" : recordedEntry["last_poll"] == nil && failures == 0 ? "not polled" : failures > 0 ? "failing" : "ok")
            // Every documented key, null when there is nothing to say (never left out).
            for key in ["handed_on", "dropped", "consecutive_failures", "last_poll", "last_success", "failing_since", "last_error", "next_poll"] {
                entry[key] = recordedEntry[key] ?? .null
            }
            mailboxes.append(sorted(entry))
        }
        document["mailboxes"] = .array(mailboxes)
        let backlog = Self.backlog(spool: inputs.spool, now: now)
        document["spool"] = sorted(["path": .string(inputs.spool), "events": .number(Int64(backlog.count)),
                                    "oldest_age_seconds": backlog.oldestAge.map { .number($0) } ?? .null])
        document["quarantined"] = .number(Int64(Quarantine(StateDirectory(root: state, spool: inputs.spool)).count))
        if let url = inputs.webhook {
            var webhook: [String: JSONValue] = ["url": .string(url), "backlog": .number(Int64(backlog.count))]
            let health = FileManager.default.contents(atPath: state + "/webhook.json").flatMap { JSONValue.parse(Array($0)) }
            for key in ["last_success", "failing_since", "last_error"] { webhook[key] = health?[key] ?? .null }
            document["webhook"] = sorted(webhook)
        } else {
            document["webhook"] = .null
        }
        let queue = OutboundQueue(stateDirectory: state)
        var lanes: [JSONValue] = []
        let laneNames = inputs.lanes.isEmpty ? queue.lanes().map { ($0, nil as Int?, nil as Int?) } : inputs.lanes.map { ($0.name, $0.perMinute, $0.perDay) }
        let failedMessages = queue.failedMessages()
        for (name, perMinute, perDay) in laneNames {
            let items = queue.messages(in: name)
            let given = failedMessages.filter { $0.mailbox == name }
            var lane: [String: JSONValue] = ["name": .string(name), "queued": .number(Int64(items.count)),
                                             "deferred": .number(Int64(items.filter { $0.attempts > 0 }.count)),
                                             "failed": .number(Int64(given.count))]
            lane["last_error"] = .optional(items.compactMap(\.lastError).first)
            // What a server last answered a recipient of this lane (queued or given up).
            lane["last_reply"] = .optional(Self.lastReply(items + given))
            lane["throttled_until"] = .optional(throttledUntil(queue: queue, lane: name, items: items, limit: (perMinute, perDay), now: now))
            lanes.append(sorted(lane))
        }
        document["lanes"] = .array(lanes)
        document["failed"] = .number(Int64(failedMessages.count))
        document["oauth"] = .array(inputs.oauth.map { account -> JSONValue in
            let record = TokenStore(stateDirectory: state, client: account.client, user: account.user).load()
            var entry: [String: JSONValue] = ["client": .string(account.client), "user": .string(account.user),
                                              "mailboxes": .array(account.mailboxes.map(JSONValue.string))]
            entry["needs_authorization"] = .optional(record?.needsAuthorization ?? (record == nil && account.grant.isInteractive ? "never authorized" : nil))
            if let record {
                entry["access_valid_for_seconds"] = .number(record.accessToken != nil && record.accessExpiresAt > now ? record.accessExpiresAt - now : 0)
            }
            entry["access_valid_for_seconds"] = entry["access_valid_for_seconds"] ?? .null
            entry["last_refresh"] = .optional(record?.lastRefreshAt)
            entry["refresh_token_issued"] = .optional(record?.refreshIssuedAt)
            return sorted(entry)
        })
        return (sorted(document).rendered(), lock.held)
    }

    /// When a lane's sending limit lets its next message go, if that is later than now.
    static func throttledUntil(queue: OutboundQueue, lane: String, items: [QueuedMessage], limit: (perMinute: Int?, perDay: Int?), now: Int64) -> Int64? {
        guard limit.perMinute != nil || limit.perDay != nil, !items.isEmpty else { return nil }
        return queue.rateLedger(for: lane).wait(now: now, recipients: 1, perMinute: limit.perMinute, perDay: limit.perDay)
    }

    /// The reply of the latest attempt among `items` (the one tried last, by its next attempt).
    static func lastReply(_ items: [QueuedMessage]) -> String? {
        let tried = items.filter { $0.attempts > 0 }.sorted { $0.nextAttempt > $1.nextAttempt }
        for item in tried {
            if let recipient = item.recipients.last(where: { $0.reply != nil }), let reply = recipient.reply {
                return recipient.code.map { "\($0) \(reply)" } ?? reply
            }
        }
        return nil
    }

    /// An object with its keys in order, as `status --json` has always written them.
    static func sorted(_ members: [String: JSONValue]) -> JSONValue {
        .object(members.sorted { $0.key < $1.key })
    }

    /// An OAuth account as `status` lists it.
    package struct OAuthAccount: Sendable {
        package var client: String
        package var user: String
        package var grant: OAuthClient.Grant
        package var refreshTokenLifetime: Duration?
        package var mailboxes: [String]
    }

    /// Each OAuth account of the configuration (a client and a user), with its mailboxes.
    package static func oauthAccounts(_ configuration: Configuration) -> [OAuthAccount] {
        var accounts: [OAuthAccount] = []
        let logins = configuration.inboundMailboxes.map { ($0.name, $0.oauth, Optional($0.user)) }
            + configuration.outboundMailboxes.map { ($0.name, $0.oauth, $0.user) }
        for case let (name, login?, user?) in logins {
            guard let client = configuration.oauthClient(login.client) else { continue }
            if let index = accounts.firstIndex(where: { $0.client == login.client && $0.user == user }) {
                accounts[index].mailboxes.append(name)
            } else {
                accounts.append(OAuthAccount(client: login.client, user: user, grant: client.grant, refreshTokenLifetime: client.refreshTokenLifetime, mailboxes: [name]))
            }
        }
        return accounts
    }

    static func describe(_ account: OAuthAccount, stateDirectory: String, now: Int64, ago: (Int64?) -> String) -> String {
        let store = TokenStore(stateDirectory: stateDirectory, client: account.client, user: account.user)
        guard DurableFiles.exists(store.path) else {
            return account.grant.isInteractive ? "NEEDS AUTHORIZATION (never authorized): carteiro authorize \(account.mailboxes[0])" : "no token yet"
        }
        guard let record = store.load() else { return "the token file \(store.path) cannot be read (it is the service's alone)" }
        if let reason = record.needsAuthorization {
            return "NEEDS AUTHORIZATION: \(reason); carteiro authorize \(account.mailboxes[0])"
        }
        var parts: [String] = []
        if record.accessToken != nil, record.accessExpiresAt > now {
            parts.append("access token valid for \(ConfigDuration.format(.seconds(record.accessExpiresAt - now)))")
        } else {
            parts.append("no valid access token (one is fetched at the next connection)")
        }
        parts.append("last refresh \(ago(record.lastRefreshAt))")
        if account.grant.isInteractive, let issued = record.refreshIssuedAt ?? record.authorizedAt {
            var text = "refresh token \(ConfigDuration.format(.seconds(max(now - issued, 0)))) old"
            if let lifetime = account.refreshTokenLifetime {
                let left = TokenRecord.later(issued, by: lifetime.components.seconds) - now
                text += left > 0 ? ", runs out in \(ConfigDuration.format(.seconds(left)))" : ", RUN OUT: carteiro authorize \(account.mailboxes[0])"
            }
            parts.append(text)
        }
        return parts.joined(separator: "; ")
    }
}
