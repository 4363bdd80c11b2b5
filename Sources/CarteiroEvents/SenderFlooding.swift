import CarteiroJSON
import CarteiroMail

/// `sender.flooding`: one correspondent (an address, or a whole domain) sent a mailbox more
/// than its flood limit within the window. Raised once per window; the messages themselves
/// are still handed on, flagged `flood`. `recipient.flooding`, the other way: the desk's
/// notifications to one address reached an outbound mailbox's limit, and the rest wait.
package struct SenderFlooding: Sendable, Equatable {
    package enum Direction: String, Sendable {
        case sender, recipient
    }

    /// Who floods whom: a sender the desk, or the desk a recipient.
    package var direction: Direction = .sender
    package var mailbox: String
    package var contract: String?
    /// The address, or `@domain` for a domain's limit.
    package var sender: String
    package var count: Int
    package var limit: Int
    package var windowSeconds: Int64
    package var at: Int64

    package init(direction: Direction = .sender, mailbox: String, contract: String?, sender: String, count: Int, limit: Int, windowSeconds: Int64, at: Int64) {
        self.direction = direction
        self.mailbox = mailbox
        self.contract = contract
        self.sender = sender
        self.count = count
        self.limit = limit
        self.windowSeconds = windowSeconds
        self.at = at
    }

    /// `acme-in/flooding/1764079200-1a2b3c4d5e6f` (`…/notifying/…` outbound): per episode and address.
    package var id: String {
        "\(mailbox)/\(direction == .sender ? "flooding" : "notifying")/\(at)-" + String(Digest.hex(Digest.sha256(Array(sender.utf8))).prefix(12))
    }

    package func json() -> JSONValue {
        .object([
            ("id", .string(id)),
            ("type", .string(direction.rawValue + ".flooding")),
            ("contract", .optional(contract)),
            ("mailbox", .string(mailbox)),
            ("received_at", .string(MailDate.iso8601(at))),
            ("request", .null),
            ("flags", .array([])),
            ("flood", .object([
                (direction.rawValue, .string(sender)),
                ("count", .number(Int64(count))),
                ("limit", .number(Int64(limit))),
                ("window_seconds", .number(windowSeconds)),
            ])),
            ("message", .null),
            ("raw", .null),
        ])
    }
}
