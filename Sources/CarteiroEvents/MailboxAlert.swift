import CarteiroMail

/// `mailbox.failing` (a mailbox has failed for longer than `alert_after`) and
/// `mailbox.recovered` (it works again), so that the desk can tell the customer's admins.
public struct MailboxAlert: Sendable {
    public enum Kind: String, Sendable {
        case failing = "mailbox.failing"
        case recovered = "mailbox.recovered"
        /// An OAuth authorization runs out soon (`failingSince`: when the warning was raised).
        case expiring = "mailbox.expiring"
    }

    public var kind: Kind
    public var mailbox: String
    public var contract: String?
    public var failingSince: Int64
    public var failures: Int
    public var error: String?
    public var at: Int64

    public init(kind: Kind, mailbox: String, contract: String?, failingSince: Int64, failures: Int, error: String?, at: Int64) {
        self.kind = kind
        self.mailbox = mailbox
        self.contract = contract
        self.failingSince = failingSince
        self.failures = failures
        self.error = error
        self.at = at
    }

    /// `acme-in/failing/1764079200`: one alert per failure episode, named by when it began.
    public var id: String {
        let name = switch kind {
        case .failing: "failing"
        case .recovered: "recovered"
        case .expiring: "expiring"
        }
        return "\(mailbox)/\(name)/\(failingSince)"
    }

    public func json() -> JSONValue {
        .object([
            ("id", .string(id)),
            ("type", .string(kind.rawValue)),
            ("contract", .optional(contract)),
            ("mailbox", .string(mailbox)),
            ("received_at", .string(MailDate.iso8601(at))),
            ("request", .null),
            ("flags", .array([])),
            ("failing_since", .string(MailDate.iso8601(failingSince))),
            ("failures", .number(Int64(failures))),
            ("error", .optional(error)),
            ("message", .null),
            ("raw", .null),
        ])
    }
}
