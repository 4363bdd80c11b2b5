import CarteiroConfig

/// One message as a sender sends it: the envelope and the content, as queued.
package struct OutgoingMessage: Sendable {
    /// The queue's id: names the message in logs and tells a sender which message it announced.
    package var id: String
    package var envelopeFrom: String
    /// The recipients still to send to, in order; each gets one outcome.
    package var recipients: [String]
    package var bytes: [UInt8]

    package init(id: String, envelopeFrom: String, recipients: [String], bytes: [UInt8]) {
        self.id = id
        self.envelopeFrom = envelopeFrom
        self.recipients = recipients
        self.bytes = bytes
    }
}

/// What a sender learnt of one recipient: a reply code as SMTP has them (2xx sent, 4xx try
/// again later, 5xx refused for good; a sender of another protocol maps its answers to these)
/// and the server's words.
package struct RecipientOutcome: Sendable, Equatable {
    package var code: Int
    package var text: String

    package init(code: Int, text: String) {
        self.code = code
        self.text = text
    }
}

/// A logged-in connection that sends messages: what an outbound lane drives, whatever the
/// protocol (`SMTPSender` the first). The lane owns the queue, the retries and the limits; the
/// sender owns the transaction.
package protocol MailSender: AnyObject {
    /// The id of the message whose commands already went out behind the last one's content
    /// (SMTP pipelining): the server waits for it, so it must be the next one sent.
    var announced: String? { get }

    /// Sends `message` to its recipients; `record` hears each recipient's outcome as it is
    /// known (outcomes heard before a failure stand). `next` may be asked for the message the
    /// lane will send after this one, so that its commands go out early. Throws when the
    /// connection broke: what has no outcome is tried again later.
    func send(_ message: OutgoingMessage, next: () -> OutgoingMessage?, record: (_ recipient: Int, RecipientOutcome) -> Void) throws(MailConnectionError)

    /// Ends the session politely (bounded in time).
    func close()
}

/// SMTP as a sender: MAIL FROM, a RCPT TO per recipient, DATA and the content, dot-stuffed. When
/// the server offers PIPELINING (RFC 2920) they go out together, and the next message's
/// commands go out in the same write as this one's final dot: one round trip a message instead
/// of three or more.
package final class SMTPSender: MailSender {
    package let client: SMTPClient
    private let pipelining: Bool
    package private(set) var announced: String?

    package init(session: MailSession) {
        client = SMTPClient(session: session)
        pipelining = client.offersPipelining
    }

    /// Connects, negotiates TLS and logs in (libcurl does), ready to send.
    package static func open(_ endpoint: MailEndpoint, credentials: MailSession.Credentials?, ehloName: String) throws(MailConnectionError) -> SMTPSender {
        SMTPSender(session: try MailSession.open(endpoint, credentials: credentials, ehloName: ehloName))
    }

    package func close() { client.quit() }

    /// A transaction's commands: MAIL FROM, a RCPT TO per recipient, and all of them with DATA;
    /// nil when it cannot have one here (a non-ASCII address, and no SMTPUTF8 on the server).
    func commands(for message: OutgoingMessage) -> (mail: String, rcpts: [String], all: [String])? {
        guard !message.recipients.isEmpty else { return nil }
        let needsUTF8 = !([message.envelopeFrom] + message.recipients).allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
        if needsUTF8 && !client.offers("SMTPUTF8") { return nil }
        let mail = "MAIL FROM:<\(message.envelopeFrom)>" + (needsUTF8 ? " SMTPUTF8" : "")
        let rcpts = message.recipients.map { "RCPT TO:<\($0)>" }
        return (mail, rcpts, [mail] + rcpts + ["DATA"])
    }

    package func send(_ message: OutgoingMessage, next: () -> OutgoingMessage?, record: (Int, RecipientOutcome) -> Void) throws(MailConnectionError) {
        let alreadySent = announced == message.id
        announced = nil
        let everyone = message.recipients.indices
        guard !everyone.isEmpty else { return }
        // A non-ASCII address (RFC 6531) can only go to a server that offers SMTPUTF8; to any
        // other, raw 8-bit addresses would be mangled or refused at random: refused, in words.
        guard let commands = commands(for: message) else {
            let host = client.session.endpoint.host
            for index in everyone {
                record(index, RecipientOutcome(code: 553, text: "not sent: the message has a non-ASCII address, and \(host) does not offer SMTPUTF8 (RFC 6531)"))
            }
            return
        }
        let from: SMTPClient.Reply
        var rcptReplies: [SMTPClient.Reply] = []
        var data: SMTPClient.Reply?
        if pipelining {
            // Sent behind the previous message's dot already, or now in one write.
            if !alreadySent { try client.session.send(SMTPClient.pipelined(commands.all)) }
            let replies = try client.readReplies(to: commands.all)
            from = replies[0]
            rcptReplies = Array(replies[1..<(1 + commands.rcpts.count)])
            data = replies[commands.rcpts.count + 1]
        } else {
            from = try client.run(commands.mail)
            if from.code == 250 {
                for command in commands.rcpts { rcptReplies.append(try client.run(command)) }
            }
        }
        // A server that took DATA although nothing before it succeeded: end the empty message.
        func abandonData() throws(MailConnectionError) {
            if data?.code == 354 {
                try client.session.send(Array(".\r\n".utf8))
                _ = try client.readReply(to: ".")
            }
        }
        guard from.code == 250 else {
            try abandonData()
            _ = try? client.run("RSET")
            for index in everyone { record(index, RecipientOutcome(code: from.code, text: from.text)) }
            return
        }
        var accepted: [Int] = []
        for (index, reply) in zip(everyone, rcptReplies) {
            if reply.code / 100 == 2 { accepted.append(index) } else { record(index, RecipientOutcome(code: reply.code, text: reply.text)) }
        }
        guard !accepted.isEmpty else {
            try abandonData()
            _ = try client.run("RSET")
            return
        }
        if data == nil { data = try client.run("DATA") }
        guard let data, data.code == 354 else {
            for index in accepted { record(index, RecipientOutcome(code: data?.code ?? 451, text: data?.text ?? "")) }
            _ = try? client.run("RSET")
            return
        }
        var content = Self.dotStuffed(message.bytes)
        // The next message's commands go out in the same write as the dot: sent apart, the
        // server may answer in two writes, and the second waits on TCP's delayed
        // acknowledgement (measured: slower).
        if pipelining, let upcoming = next(), let upcomingCommands = self.commands(for: upcoming) {
            content.append(contentsOf: SMTPClient.pipelined(upcomingCommands.all))
            announced = upcoming.id
        }
        try client.session.send(content)
        let final = try client.readReply(to: ".")
        for index in accepted { record(index, RecipientOutcome(code: final.code, text: final.text)) }
    }

    /// SMTP's transparency (RFC 5321 §4.5.2), CRLF line ends, and the final dot.
    package static func dotStuffed(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var atLineStart = true
        for byte in bytes {
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(byte)
            atLineStart = byte == 10
        }
        if !atLineStart { out.append(contentsOf: [13, 10]) }
        out.append(contentsOf: Array(".\r\n".utf8))
        return out
    }
}
