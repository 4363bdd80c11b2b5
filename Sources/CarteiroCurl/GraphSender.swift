import CarteiroConfig
import CarteiroMail
import Foundation

extension GraphAPI {
    /// The largest request Graph takes (413 above it): the base64 of the MIME must fit.
    package static let largestRequest = 4 * 1024 * 1024

    /// `POST /users/{user}/sendMail` with the base64 of the whole message: 202 is "accepted"
    /// (queued by Exchange, not yet delivered), and the message is kept in the sending mailbox's
    /// own Sent Items (a shared mailbox's, not the application's).
    package func sendMail(_ mime: [UInt8]) throws(Failure) {
        let body = Array(Data(mime).base64EncodedString().utf8)
        _ = try send("POST", mailboxURL + "/sendMail", body: body, contentType: "text/plain", limit: 1 << 20)
    }
}

/// Microsoft Graph as a sender, for tenants without SMTP AUTH: each message goes whole, as MIME,
/// through `sendMail`; every recipient gets the one answer (202: accepted). Recipients of the
/// envelope that the header does not name (Bcc) are named in a `Bcc:` field for Exchange,
/// which reads the recipients from the header and takes the field out of what it delivers.
package final class GraphSender: MailSender {
    let api: GraphAPI
    package var announced: String? { nil }

    package init(api: GraphAPI) {
        self.api = api
    }

    package func close() {}

    package func send(_ message: OutgoingMessage, next: () -> OutgoingMessage?, record: (Int, RecipientOutcome) -> Void) throws(MailConnectionError) {
        let mime = Self.withBcc(message)
        // base64 grows the message by a third: what does not fit is refused here, in words.
        if (mime.count + 2) / 3 * 4 > GraphAPI.largestRequest {
            let outcome = RecipientOutcome(code: 552, text: "the message is \(mime.count / 1024) KB: Microsoft Graph takes at most 4 MB a request (about 3 MB of message); large messages through an upload session are not supported yet")
            for index in message.recipients.indices { record(index, outcome) }
            return
        }
        do throws(GraphAPI.Failure) {
            try api.sendMail(mime)
            let accepted = RecipientOutcome(code: 250, text: "accepted by Microsoft Graph (202): queued for delivery by Exchange")
            for index in message.recipients.indices { record(index, accepted) }
        } catch {
            switch error.status {
            case 401?:
                throw MailConnectionError(.loginRejected, endpoint: api.base, message: error.description)
            case 400?, 403?, 404?, 413?:
                // Refused for good, every recipient alike, with Graph's words.
                let code = error.status == 413 ? 552 : 550
                let outcome = RecipientOutcome(code: code, text: error.description)
                for index in message.recipients.indices { record(index, outcome) }
            default:
                // Throttled past what a send waits, a 5xx, the network: tried again later.
                throw MailConnectionError(error.kind == .tooSlow ? .tooSlow : .other, endpoint: api.base, message: error.description)
            }
        }
    }

    /// The message with a `Bcc:` field first for the envelope's recipients that To and Cc do not
    /// name (as addresses, case ignored); unchanged when there are none.
    static func withBcc(_ message: OutgoingMessage) -> [UInt8] {
        let (header, _) = HeaderBlock.parse(message.bytes[...])
        var named: Set<String> = []
        for field in ["to", "cc"] {
            for value in header.all(field) {
                for address in AddressList.parse(value) { named.insert(address.address.lowercased()) }
            }
        }
        let hidden = message.recipients.filter { !named.contains($0.lowercased()) }
        guard !hidden.isEmpty else { return message.bytes }
        return Array("Bcc: \(hidden.joined(separator: ",\r\n "))\r\n".utf8) + message.bytes
    }
}
