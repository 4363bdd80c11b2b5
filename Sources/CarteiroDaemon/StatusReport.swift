import CarteiroStore
import Foundation

/// `carteiro status`: what the running daemon last wrote to `status.json`.
public enum StatusReport {
    /// `descriptions`: each mailbox's `description` from the configuration, shown beside it.
    public static func render(stateDirectory: String, descriptions: [String: String] = [:], now: Int64 = Int64(Date().timeIntervalSince1970)) -> (text: String, running: Bool) {
        let path = stateDirectory + "/status.json"
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return ("carteiro is not running, or has not polled yet: no \(path)\n", false)
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
        // The outbound lanes, from the queue itself.
        let queue = OutboundQueue(stateDirectory: stateDirectory)
        for lane in queue.lanes() {
            let items = queue.messages(in: lane)
            let deferred = items.filter { $0.attempts > 0 }.count
            lines.append("lane \(lane): \(items.count) queued (\(deferred) deferred)" + (items.compactMap(\.lastError).first.map { "; last error: \($0)" } ?? ""))
        }
        let failed = queue.failedMessages().count
        if failed > 0 { lines.append("\(failed) message\(failed == 1 ? "" : "s") given up in queue/failed (carteiro queue list)") }
        return (lines.joined(separator: "\n") + "\n", running)
    }
}
