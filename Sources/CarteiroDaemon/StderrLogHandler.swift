#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// Readable lines on stderr: with a `<N>` syslog priority prefix when stderr is not a terminal
/// (journald and most supervisors read it), with the level spelled out when it is.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    static let lock = NSLock()
    let terminal = isatty(2) == 1

    public init(label: String) {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Who a line is about first (mailbox, contract, queue id, event), then the rest by name.
    static let leading = ["mailbox", "contract", "queue_id", "event"]
    static func order(_ a: String, _ b: String) -> Bool {
        let ra = leading.firstIndex(of: a) ?? leading.count, rb = leading.firstIndex(of: b) ?? leading.count
        return ra != rb ? ra < rb : a < b
    }

    public func log(event: LogEvent) {
        let priority = switch event.level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
        var line = terminal ? "\(event.level) \(event.message)" : "<\(priority)>\(event.message)"
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (key, value) in merged.sorted(by: { Self.order($0.key, $1.key) }) {
            line += " \(key)=" + Self.quoted("\(value)")
        }
        line += "\n"
        Self.lock.lock()
        FileHandle.standardError.write(Data(line.utf8))
        Self.lock.unlock()
    }

    /// A value as one token of one line: a value comes from servers, messages and file names,
    /// so a line break or another control character in it is escaped, never written (it would
    /// forge a log line of its own), and a value with spaces or quotes is quoted.
    static func quoted(_ text: String) -> String {
        var escaped = ""
        var needsQuotes = text.isEmpty
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"; needsQuotes = true
            case "\r": escaped += "\\r"; needsQuotes = true
            case "\t": escaped += "\\t"; needsQuotes = true
            case "\"": escaped += "\\\""; needsQuotes = true
            case "\\": escaped += "\\\\"
            case " ": escaped += " "; needsQuotes = true
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}" {
                    escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
                    needsQuotes = true
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return needsQuotes ? "\"" + escaped + "\"" : escaped
    }
}
