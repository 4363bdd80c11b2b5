#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import Logging

/// A swift-log handler that writes to journald's native protocol (sd_journal_sendv): PRIORITY,
/// SYSLOG_IDENTIFIER=carteiro, the message, a MESSAGE_ID for entries an operator acts on
/// (explained in `systemd/carteiro.catalog`, `journalctl -x`), and every metadata key as a
/// field of its own: `mailbox` → `CARTEIRO_MAILBOX`, so `journalctl CARTEIRO_CONTRACT=acme`
/// shows one customer.
package struct JournalLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info

    package init(label: String) {}

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Messages an operator acts on, with the MESSAGE_ID their catalog entry has.
    package static let messageIDs: [String: String] = [
        "mailbox failing": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5f6",
        "mailbox recovered": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5f7",
        "poll failed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5f8",
        "message given up": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5f9",
        "reload failed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5fa",
        "smtp connection failed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5fb",
        "login rejected": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5fc",
        "certificate untrusted": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5fd",
        "authorization needed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e600",
        "oauth authorization needed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e600",
        "oauth token request failed": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e601",
        "oauth access expiring": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e602",
        "shared folder entry refused": "7d0e6f1a2b3c4d5e8f90a1b2c3d4e603",
    ]

    /// `queue_id` → `CARTEIRO_QUEUE_ID`: journald accepts only [A-Z0-9_], at most 64 characters,
    /// not starting with "_"; anything else would be dropped silently.
    package static func fieldName(_ key: String) -> String {
        let upper = key.uppercased().unicodeScalars.map { ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") ? Character($0) : "_" }
        return String(("CARTEIRO_" + String(upper)).prefix(64))
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    package func log(event: LogEvent) {
        let message = event.message.description
        var fields = ["MESSAGE=\(message)", "PRIORITY=\(Self.priority(event.level))", "SYSLOG_IDENTIFIER=carteiro"]
        if let id = Self.messageIDs[message] { fields.append("MESSAGE_ID=\(id)") }
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    static func send(_ fields: [String]) {
        let copies = fields.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        var vectors = copies.map { iovec(iov_base: UnsafeMutableRawPointer($0), iov_len: $0.map { strlen($0) } ?? 0) }
        _ = vectors.withUnsafeMutableBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }

    /// True when stderr is connected to the journal ($JOURNAL_STREAM names its device and
    /// inode): only then are entries sent natively.
    package static func stderrIsJournal(environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
