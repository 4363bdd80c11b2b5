import Foundation
import Logging

/// The daemon's logger: swift-log underneath (journald natively or stderr lines, chosen at
/// start), constant messages, data in fields. Passwords have no way in: no field takes a
/// `Secret`, and a `Secret` interpolated anywhere prints `<redacted>`.
package struct DaemonLog: Sendable {
    package enum Level: Int, Sendable {
        case error = 3, warning = 4, notice = 5, info = 6, debug = 7

        var swiftLevel: Logger.Level {
            switch self {
            case .error: .error
            case .warning: .warning
            case .notice: .notice
            case .info: .info
            case .debug: .debug
            }
        }
    }

    let logger: Logger

    package init(logger: Logger = Logger(label: "carteiro")) {
        self.logger = logger
    }

    package func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(level, message, pairs: fields.map { ($0.key, $0.value) })
    }

    package func log(_ level: Level, _ message: String, pairs fields: [(String, String)]) {
        let swiftLevel = level.swiftLevel
        var metadata: Logger.Metadata = [:]
        for (key, value) in Self.kept(fields) { metadata[key] = .string(value) }
        logger.log(level: swiftLevel, "\(message)", metadata: metadata)
    }

    /// A mailbox outside any contract has no contract: the field is left out, not empty
    /// (`journalctl CARTEIRO_CONTRACT=` should match nothing of it).
    static func kept(_ fields: [(String, String)]) -> [(String, String)] {
        fields.filter { !($0.0 == "contract" && $0.1.isEmpty) }
    }

    /// The same message for many things at once (one line each: "message handed on" for a
    /// batch). On stderr, the lines go out in one write; elsewhere one by one.
    package func log(_ level: Level, _ message: String, lines: [[(String, String)]]) {
        if let stderr = logger.handler as? StderrLogHandler {
            stderr.log(level.swiftLevel, message, lines: lines.map(Self.kept))
            return
        }
        for fields in lines { log(level, message, pairs: fields) }
    }
}
