import Foundation

/// One inbound mailbox's health, as `carteiro status` shows it.
public struct MailboxStatus: Sendable {
    public var name: String
    public var lastPoll: Int64?
    public var lastSuccess: Int64?
    public var failingSince: Int64?
    public var consecutiveFailures = 0
    public var lastError: String?
    public var handedOn = 0
    public var nextPoll: Int64?
    /// A mailbox.failing event was raised for the current failure episode.
    public var alerted = false

    public init(name: String) { self.name = name }

    func json() -> [String: Any] {
        var object: [String: Any] = ["name": name, "consecutive_failures": consecutiveFailures, "handed_on": handedOn]
        if let lastPoll { object["last_poll"] = lastPoll }
        if let lastSuccess { object["last_success"] = lastSuccess }
        if let failingSince { object["failing_since"] = failingSince }
        if let lastError { object["last_error"] = lastError }
        if let nextPoll { object["next_poll"] = nextPoll }
        if alerted { object["alerted"] = true }
        return object
    }

    init?(json: [String: Any]) {
        guard let name = json["name"] as? String else { return nil }
        self.name = name
        lastPoll = (json["last_poll"] as? NSNumber)?.int64Value
        lastSuccess = (json["last_success"] as? NSNumber)?.int64Value
        failingSince = (json["failing_since"] as? NSNumber)?.int64Value
        consecutiveFailures = json["consecutive_failures"] as? Int ?? 0
        lastError = json["last_error"] as? String
        handedOn = json["handed_on"] as? Int ?? 0
        nextPoll = (json["next_poll"] as? NSNumber)?.int64Value
        alerted = json["alerted"] as? Bool ?? false
    }
}
