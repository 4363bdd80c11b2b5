import Foundation

/// Readable log lines on stderr, one per event, with `<N>` syslog priority prefixes so that
/// journald (through stderr) keeps the level. Messages are constant; data goes in fields.
/// Passwords have no way in: no field takes a `Secret`.
public struct DaemonLog: Sendable {
    public enum Level: Int, Sendable { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }

    let minimum: Level
    let lock = NSLock()

    public init(minimum: Level = .info) {
        self.minimum = minimum
    }

    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        guard level.rawValue <= minimum.rawValue else { return }
        var line = "<\(level.rawValue)>\(message)"
        for (key, value) in fields {
            let needsQuotes = value.contains(" ") || value.contains("\"") || value.isEmpty
            line += " \(key)=" + (needsQuotes ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : value)
        }
        line += "\n"
        lock.lock()
        FileHandle.standardError.write(Data(line.utf8))
        lock.unlock()
    }
}
