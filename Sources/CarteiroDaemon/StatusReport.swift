import CarteiroConfig
import CarteiroOAuth
import CarteiroStore
import Foundation

/// `carteiro status`: what the running daemon last wrote to `status.json`.
public enum StatusReport {
    /// `descriptions`: each mailbox's `description` from the configuration, shown beside it.
    public static func render(stateDirectory: String, descriptions: [String: String] = [:], oauth: [OAuthAccount] = [], disabled: [String] = [],
                              now: Int64 = Int64(Date().timeIntervalSince1970)) -> (text: String, running: Bool) {
        let path = stateDirectory + "/status.json"
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            var text = "carteiro is not running, or has not polled yet: no \(path)\n"
            for account in oauth {
                text += "oauth \(account.client) \(account.user) (\(account.mailboxes.joined(separator: ", "))): "
                    + describe(account, stateDirectory: stateDirectory, now: now, ago: { $0.map { "\(max(now - $0, 0))s ago" } ?? "never" }) + "\n"
            }
            return (text, false)
        }
        let pid = object["pid"] as? Int ?? 0
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
        for entry in object["mailboxes"] as? [[String: Any]] ?? [] {
            guard let status = MailboxStatus(json: entry) else { continue }
            let label = descriptions[status.name].flatMap { $0.isEmpty ? nil : " (\($0))" } ?? ""
            guard status.lastPoll != nil || status.consecutiveFailures > 0 else {
                lines.append("mailbox \(status.name)\(label): not polled yet")
                continue
            }
            let health = status.consecutiveFailures == 0 ? "ok" : "FAILING (\(status.consecutiveFailures) in a row since \(ago(status.failingSince)))"
            lines.append("mailbox \(status.name)\(label): \(health); last poll \(ago(status.lastPoll)), last success \(ago(status.lastSuccess)), \(status.handedOn) handed on by this run")
            if let error = status.lastError { lines.append("  last error: \(error)") }
        }
        for name in disabled { lines.append("mailbox \(name): disabled (enabled = false): not polled") }
        // The outbound lanes, from the queue itself.
        let queue = OutboundQueue(stateDirectory: stateDirectory)
        for lane in queue.lanes() {
            let items = queue.messages(in: lane)
            let deferred = items.filter { $0.attempts > 0 }.count
            lines.append("lane \(lane): \(items.count) queued (\(deferred) deferred)" + (items.compactMap(\.lastError).first.map { "; last error: \($0)" } ?? ""))
        }
        let failed = queue.failedMessages().count
        if failed > 0 { lines.append("\(failed) message\(failed == 1 ? "" : "s") given up in queue/failed (carteiro queue list)") }
        for account in oauth {
            lines.append("oauth \(account.client) \(account.user) (\(account.mailboxes.joined(separator: ", "))): " + describe(account, stateDirectory: stateDirectory, now: now, ago: ago))
        }
        return (lines.joined(separator: "\n") + "\n", running)
    }

    /// An OAuth account as `status` lists it.
    public struct OAuthAccount: Sendable {
        public var client: String
        public var user: String
        public var grant: OAuthClient.Grant
        public var refreshTokenLifetime: Duration?
        public var mailboxes: [String]
    }

    /// Each OAuth account of the configuration (a client and a user), with its mailboxes.
    public static func oauthAccounts(_ configuration: Configuration) -> [OAuthAccount] {
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
