import CarteiroJSON
import CarteiroEvents
import Foundation

/// One inbound mailbox's health, as `carteiro status` shows it.
package struct MailboxStatus: Sendable {
    package var name: String
    package var lastPoll: Int64?
    package var lastSuccess: Int64?
    package var failingSince: Int64?
    package var consecutiveFailures = 0
    package var lastError: String?
    package var handedOn = 0
    /// Dropped by routing rules (left on the server) by this run.
    package var dropped = 0
    package var nextPoll: Int64?
    /// A mailbox.failing event was raised for the current failure episode.
    package var alerted = false

    package init(name: String) { self.name = name }

    func json() -> JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name)), ("consecutive_failures", .number(Int64(consecutiveFailures))),
                                              ("handed_on", .number(Int64(handedOn))), ("dropped", .number(Int64(dropped)))]
        if let lastPoll { members.append(("last_poll", .number(lastPoll))) }
        if let lastSuccess { members.append(("last_success", .number(lastSuccess))) }
        if let failingSince { members.append(("failing_since", .number(failingSince))) }
        if let lastError { members.append(("last_error", .string(lastError))) }
        if let nextPoll { members.append(("next_poll", .number(nextPoll))) }
        if alerted { members.append(("alerted", .bool(true))) }
        return .object(members)
    }

    init?(json: JSONValue) {
        guard let name = json["name"]?.string else { return nil }
        self.name = name
        lastPoll = json["last_poll"]?.int64
        lastSuccess = json["last_success"]?.int64
        failingSince = json["failing_since"]?.int64
        consecutiveFailures = json["consecutive_failures"]?.int ?? 0
        lastError = json["last_error"]?.string
        handedOn = json["handed_on"]?.int ?? 0
        dropped = json["dropped"]?.int ?? 0
        nextPoll = json["next_poll"]?.int64
        alerted = json["alerted"]?.bool ?? false
    }
}
