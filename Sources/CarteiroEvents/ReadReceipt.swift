import CarteiroMail

/// A read receipt (a message disposition notification, RFC 8098): someone's mail program says
/// what became of a message the desk sent (displayed, deleted …). Outlook's own kind comes
/// wrapped in TNEF, with a message class instead of a report.
package struct ReadReceipt: Sendable, Equatable {
    /// The Message-ID of the message the receipt is about, when the receipt says.
    package var originalMessageID: String?
    /// `displayed`, `deleted`, `dispatched`, `processed`, `denied`, `failed` (RFC 8098 §3.2.6.2),
    /// lower case; nil when the receipt does not say.
    package var disposition: String?
    /// Whose receipt it is (Final-Recipient), when it says.
    package var recipient: String?
    /// The original message's subject, for its request tag when its Message-ID is not Carteiro's.
    package var originalSubject: String?

    /// Reads a `multipart/report; report-type=disposition-notification` message, or a TNEF
    /// receipt (`REPORT.IPM.Note.IPNRN`, `…IPNNRN`); nil for anything else.
    package static func read(_ message: MailMessage) -> ReadReceipt? {
        if let messageClass = message.tnefMessageClass?.uppercased(), messageClass.hasPrefix("REPORT.") {
            if messageClass.hasSuffix(".IPNRN") { return ReadReceipt(disposition: "displayed", subject: message.subject) }
            if messageClass.hasSuffix(".IPNNRN") { return ReadReceipt(disposition: "deleted", subject: message.subject) }
        }
        guard message.contentType.value == "multipart/report",
              message.contentType.parameters["report-type"]?.lowercased() == "disposition-notification" else { return nil }
        var receipt = ReadReceipt(originalMessageID: nil, disposition: nil, recipient: nil, originalSubject: nil)
        for part in message.root.children {
            let type = part.contentType.value
            if type == "message/disposition-notification" || type == "message/global-disposition-notification" {
                let (fields, _) = HeaderBlock.parse((part.decodedBody + [13, 10, 13, 10])[...])
                receipt.originalMessageID = fields.raw("original-message-id").flatMap { MailMessage.messageIDs($0).first }
                // "manual-action/MDN-sent-manually; displayed", with modifiers after a slash.
                if let disposition = fields.text("disposition"), let semicolon = disposition.lastIndex(of: ";") {
                    let type = disposition[disposition.index(after: semicolon)...].split(separator: "/").first.map { String($0).lowercased() } ?? ""
                    let trimmed = type.filter { !$0.isWhitespace }
                    receipt.disposition = trimmed.isEmpty ? nil : trimmed
                }
                if let recipient = fields.text("final-recipient") {
                    receipt.recipient = recipient.split(separator: ";", maxSplits: 1).last.map { String($0).filter { !$0.isWhitespace } } ?? recipient
                }
            } else if type == "text/rfc822-headers" || type == "message/rfc822" || type == "message/rfc822-headers" {
                let (header, _) = HeaderBlock.parse(part.decodedBody[...])
                if receipt.originalMessageID == nil { receipt.originalMessageID = header.raw("message-id").flatMap { MailMessage.messageIDs($0).first } }
                receipt.originalSubject = header.text("subject")
            }
        }
        // Many receipts carry only a human part: the subject ("Read: …") still has the tag.
        if receipt.originalSubject == nil { receipt.originalSubject = message.subject }
        return receipt
    }

    init(originalMessageID: String?, disposition: String?, recipient: String?, originalSubject: String?) {
        self.originalMessageID = originalMessageID
        self.disposition = disposition
        self.recipient = recipient
        self.originalSubject = originalSubject
    }

    init(disposition: String, subject: String?) {
        self.init(originalMessageID: nil, disposition: disposition, recipient: nil, originalSubject: subject)
    }
}
