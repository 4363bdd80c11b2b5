import CarteiroJSON
import CarteiroMail

/// `mailbox.failing` (a mailbox has failed for longer than `alert_after`) and
/// `mailbox.recovered` (it works again), so that the desk can tell the customer's admins.
package struct MailboxAlert: Sendable {
    package enum Kind: String, Sendable {
        case failing = "mailbox.failing"
        case recovered = "mailbox.recovered"
        /// An OAuth authorization runs out soon (`failingSince`: when the warning was raised).
        case expiring = "mailbox.expiring"
    }

    package var kind: Kind
    package var mailbox: String
    package var contract: String?
    package var failingSince: Int64
    package var failures: Int
    package var error: String?
    package var at: Int64

    package init(kind: Kind, mailbox: String, contract: String?, failingSince: Int64, failures: Int, error: String?, at: Int64) {
        self.kind = kind
        self.mailbox = mailbox
        self.contract = contract
        self.failingSince = failingSince
        self.failures = failures
        self.error = error
        self.at = at
    }

    /// `acme-in/failing/1764079200`: one alert per failure episode, named by when it began.
    package var id: String {
        let name = switch kind {
        case .failing: "failing"
        case .recovered: "recovered"
        case .expiring: "expiring"
        }
        return "\(mailbox)/\(name)/\(failingSince)"
    }

    package func json() -> JSONValue {
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
