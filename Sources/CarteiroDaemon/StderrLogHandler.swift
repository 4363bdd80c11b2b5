#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// Readable lines on stderr: with a `<N>` syslog priority prefix when stderr is not a terminal
/// (journald and most supervisors read it), with the level spelled out when it is.
package struct StderrLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    static let lock = NSLock()
    var terminal = isatty(2) == 1

    package init(label: String) {}

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Who a line is about first (mailbox, contract, queue id, event), then the rest by name.
    static let leading = ["mailbox", "contract", "queue_id", "event"]
    static func order(_ a: String, _ b: String) -> Bool {
        let ra = leading.firstIndex(of: a) ?? leading.count, rb = leading.firstIndex(of: b) ?? leading.count
        return ra != rb ? ra < rb : a < b
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var fields = merged.map { ($0.key, "\($0.value)") }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        render(event.level, "\(event.message)", fields: &fields, into: &line)
        Self.lock.lock()
        Self.writeAll(line)
        Self.lock.unlock()
    }

    /// Many lines of one message at once (a batch's "message handed on"), in one write: the
    /// same lines as one `log` each, without a system call and a metadata dictionary apiece.
    package func log(_ level: Logger.Level, _ message: String, lines: [[(String, String)]]) {
        guard level >= logLevel, !lines.isEmpty else { return }
        let text = rendered(level, message, lines: lines)
        Self.lock.lock()
        Self.writeAll(text)
        Self.lock.unlock()
    }

    func rendered(_ level: Logger.Level, _ message: String, lines: [[(String, String)]]) -> [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(256 * lines.count)
        for pairs in lines {
            var fields = pairs
            // The handler's own metadata, unless a field of the line has the name.
            for (key, value) in metadata where !pairs.contains(where: { $0.0 == key }) { fields.append((key, "\(value)")) }
            render(level, message, fields: &fields, into: &text)
        }
        return text
    }

    /// One line: the priority (or the level, on a terminal), the message, and the fields in
    /// their order (the leading ones first, then by name), each value quoted as needed.
    func render(_ level: Logger.Level, _ message: String, fields: inout [(String, String)], into line: inout [UInt8]) {
        let priority = switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
        line += (terminal ? "\(level) \(message)" : "<\(priority)>\(message)").utf8
        fields.sort { Self.order($0.0, $1.0) }
        for (key, value) in fields {
            line.append(32)
            line += key.utf8
            line.append(UInt8(ascii: "="))
            line += Self.quoted(value).utf8
        }
        line.append(10)
    }

    /// One write(2) for a line or a batch's lines, as long as stderr takes it (a pipe may take
    /// it in parts); callers hold `lock`, so that lines of other threads never come between.
    static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// A value as one token of one line (see `escapedQuoted`); most values (names, numbers,
    /// addresses, ids) need nothing, which one pass over their bytes tells.
    static func quoted(_ text: String) -> String {
        if !text.isEmpty && text.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x22 && $0 != 0x5C && $0 != 0x7F && $0 != 0xC2 && $0 != 0xE2 }) { return text }
        return escapedQuoted(text)
    }

    /// A value as one token of one line: a value comes from servers, messages and file names,
    /// so a line break or another control character in it is escaped, never written (it would
    /// forge a log line of its own), and a value with spaces or quotes is quoted. (`quoted`
    /// passes a value that has none of the bytes this looks at, "\u{C2}" and "\u{E2}" being
    /// the first bytes of C1 controls and of U+2028 and U+2029.)
    static func escapedQuoted(_ text: String) -> String {
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
