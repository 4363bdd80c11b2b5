import Foundation
import Logging

/// The daemon's logger: swift-log underneath (journald natively or stderr lines, chosen at
/// start), constant messages, data in fields. Passwords have no way in: no field takes a
/// `Secret`, and a `Secret` interpolated anywhere prints `<redacted>`.
public struct DaemonLog: Sendable {
    public enum Level: Int, Sendable { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }

    let logger: Logger

    public init(logger: Logger = Logger(label: "carteiro")) {
        self.logger = logger
    }

    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) {
        log(level, message, pairs: fields.map { ($0.key, $0.value) })
    }

    public func log(_ level: Level, _ message: String, pairs fields: [(String, String)]) {
        let swiftLevel: Logger.Level = switch level {
        case .error: .error
        case .warning: .warning
        case .notice: .notice
        case .info: .info
        case .debug: .debug
        }
        var metadata: Logger.Metadata = [:]
        // A mailbox outside any contract has no contract: the field is left out, not empty
        // (`journalctl CARTEIRO_CONTRACT=` should match nothing of it).
        for (key, value) in fields where !(key == "contract" && value.isEmpty) { metadata[key] = .string(value) }
        logger.log(level: swiftLevel, "\(message)", metadata: metadata)
    }
}
