import CarteiroMail
import Foundation

/// A delivery-status notification (RFC 3464): which message failed, for whom, and why.
package struct DeliveryReport: Sendable {
    package struct Recipient: Sendable {
        package var address: String
        package var status: String?
        package var diagnostic: String?
    }

    package var originalMessageID: String?
    package var failedRecipients: [Recipient]
    /// The returned message's subject, for its request tag when its Message-ID is not Carteiro's.
    package var originalSubject: String?

    /// Reads a `multipart/report; report-type=delivery-status` message; nil for anything else.
    package static func read(_ message: MailMessage) -> DeliveryReport? {
        guard message.contentType.value == "multipart/report",
              message.contentType.parameters["report-type"]?.lowercased() == "delivery-status" else { return nil }
        var report = DeliveryReport(originalMessageID: nil, failedRecipients: [], originalSubject: nil)
        for part in message.root.children {
            let type = part.contentType.value
            if type == "message/delivery-status" || type == "message/global-delivery-status" {
                report.failedRecipients = recipients(part.decodedBody)
            } else if type == "text/rfc822-headers" || type == "message/rfc822" || type == "message/rfc822-headers" {
                let (header, _) = HeaderBlock.parse(part.decodedBody[...])
                report.originalMessageID = header.raw("message-id").flatMap { MailMessage.messageIDs($0).first }
                report.originalSubject = header.raw("subject").map { EncodedWords.decode($0) }
            }
        }
        return report
    }

    /// The per-recipient groups of a delivery-status body whose Action is "failed".
    static func recipients(_ body: [UInt8]) -> [Recipient] {
        // Groups are separated by blank lines; the first group is about the message.
        let text = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        var result: [Recipient] = []
        for group in text.components(separatedBy: "\n\n").dropFirst() {
            let (header, _) = HeaderBlock.parse(Array((group + "\n\n").utf8)[...])
            guard let recipient = header.text("final-recipient") ?? header.text("original-recipient") else { continue }
            let action = header.text("action")?.lowercased() ?? "failed"
            guard action.hasPrefix("failed") else { continue }
            let address = recipient.split(separator: ";", maxSplits: 1).last.map { String($0).trimmingCharacters(in: " ") } ?? recipient
            result.append(Recipient(address: address, status: header.text("status"), diagnostic: header.text("diagnostic-code")))
        }
        return result
    }
}

