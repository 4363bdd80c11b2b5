import CarteiroJSON
import CarteiroMail
#if canImport(Glibc)
import Glibc
#endif

/// `delivery.failed` for a message Carteiro sent and gave up on (5xx, or the queue lifetime),
/// shaped like the bounce event, so the desk handles both the same way.
package struct OutboundFailure: Sendable {
    package var queueID: String
    package var mailbox: String
    package var contract: String?
    package var request: String?
    package var messageID: String
    package var reason: String
    package var recipients: [(address: String, code: Int?, reply: String?)]
    package var at: Int64

    package init(queueID: String, mailbox: String, contract: String?, request: String?, messageID: String, reason: String,
                recipients: [(address: String, code: Int?, reply: String?)], at: Int64 = Int64(time(nil))) {
        self.queueID = queueID
        self.mailbox = mailbox
        self.contract = contract
        self.request = request
        self.messageID = messageID
        self.reason = reason
        self.recipients = recipients
        self.at = at
    }

    package var id: String { "\(mailbox)/outbound/\(queueID)" }

    package func json() -> JSONValue {
        .object([
            ("id", .string(id)),
            ("type", .string("delivery.failed")),
            ("contract", .optional(contract)),
            ("mailbox", .string(mailbox)),
            ("received_at", .string(MailDate.iso8601(at))),
            ("request", .optional(request)),
            ("flags", .array([])),
            ("message", .null),
            ("delivery", .object([
                ("original_message_id", .string(messageID)),
                ("queue_id", .string(queueID)),
                ("reason", .string(reason)),
                ("failed_recipients", .array(recipients.map { recipient in
                    .object([("address", .string(recipient.address)),
                             ("status", recipient.code.map { .string(String($0)) } ?? .null),
                             ("diagnostic", .optional(recipient.reply))])
                })),
            ])),
            ("raw", .string("queue/failed/\(queueID).eml")),
        ])
    }
}
