import CarteiroMail

/// Turns a fetched message into its request event (carteiro-events(5)): parsed, classified, threaded.
package struct EventBuilder: Sendable {
    package var threading: RequestThreading
    /// The system's own addresses (every outbound sender): mail from them is a loop.
    package var ownAddresses: Set<String>

    /// The contract a request belongs to, when known (see `RequestContracts`).
    package var contractOfRequest: @Sendable (String) -> String?

    /// The routing rules, evaluated for every message before it is threaded.
    package var rules: RoutingRules

    package init(threading: RequestThreading, ownAddresses: Set<String>, rules: RoutingRules = RoutingRules(),
                 contractOfRequest: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.threading = threading
        self.ownAddresses = Set(ownAddresses.map { $0.lowercased() })
        self.rules = rules
        self.contractOfRequest = contractOfRequest
    }

    package struct Input: Sendable {
        package var mailbox: String
        package var contract: String?
        package var origin: MessageOrigin
        package var receivedAt: Int64
        /// The whole message, or only its header when it was over the size limit.
        package var bytes: [UInt8]
        /// The size the server announced (RFC822.SIZE or LIST).
        package var size: Int
        package var oversize: Bool
        /// The message could not be fetched, poll after poll: why. It is handed on without its
        /// content as a `message.unreadable` event, so that the desk knows and the rest go on.
        package var unreadable: String?
        /// The receiving servers whose Authentication-Results the mailbox trusts (lower case):
        /// with any, the event carries the verdict on its sender.
        package var authservIDs: Set<String> = []
        /// Whether a failed sender is flagged `unverified-sender` (the mailbox's policy is not off).
        package var flagsUnverifiedSender = true
        /// The correspondent is past the mailbox's flood limit (see `SenderCounts`).
        package var flood = false

        package init(mailbox: String, contract: String?, origin: MessageOrigin, receivedAt: Int64, bytes: [UInt8], size: Int, oversize: Bool,
                    unreadable: String? = nil) {
            self.mailbox = mailbox
            self.contract = contract
            self.origin = origin
            self.receivedAt = receivedAt
            self.bytes = bytes
            self.size = size
            self.oversize = oversize
            self.unreadable = unreadable
        }
    }

    /// The request a report about a sent message names (a bounce, a read receipt): by the
    /// original's keyed Message-ID, else by the tag in its subject.
    func returnedRequest(messageID: String?, subject: String?) -> (request: String, rule: String)? {
        if let messageID, let request = threading.request(fromMessageID: messageID) { return (request, RequestThreading.Match.messageID.rawValue) }
        if let subject, let request = threading.request(fromSubject: subject) { return (request, RequestThreading.Match.subjectTag.rawValue) }
        return nil
    }

    /// The event, and the attachment contents to store (by SHA-256) alongside it.
    package func build(_ input: Input) -> (event: RequestEvent, attachments: [(sha256: String, data: [UInt8])]) {
        let id = input.origin.eventID(mailbox: input.mailbox)
        let origin = input.origin.source.flatMap { source in input.origin.sourceID.map { (source, $0) } }
        if let reason = input.unreadable {
            var event = RequestEvent(id: id, type: "message.unreadable", contract: input.contract, mailbox: input.mailbox,
                                     receivedAt: input.receivedAt, request: nil, matchedBy: nil, flags: ["unreadable"], message: nil,
                                     messageSize: input.size, attachments: [], problems: [reason], rawPath: "raw/\(id).eml", delivery: nil)
            event.origin = origin
            return (event, [])
        }
        let message = MailMessage.parse(input.bytes)
        var flags = AutomaticMail.flags(message.header, from: message.from, ownAddresses: ownAddresses)
        var authentication: SenderAuthentication?
        if !input.authservIDs.isEmpty {
            let author = message.from.map { SenderAuthentication.domain(of: $0.address) }
            let judged = SenderAuthentication.judge(message.header, authorDomain: author, trusting: input.authservIDs)
            if judged.verdict == .fail && input.flagsUnverifiedSender { flags.append("unverified-sender") }
            authentication = judged
        }
        if input.oversize { flags.append("oversize") }
        if input.flood { flags.append("flood") }
        let unparsed = message.header.fields.isEmpty || message.problems.contains { $0 != "damaged header" && !$0.hasPrefix("text not in") }
        if unparsed { flags.append("unparsed") }

        var stored: [StoredAttachment] = []
        var contents: [(String, [UInt8])] = []
        if !input.oversize {
            for attachment in message.attachments {
                let hex = Digest.hex(Digest.sha256(attachment.data))
                stored.append(StoredAttachment(filename: attachment.filename, contentType: attachment.contentType, size: attachment.data.count,
                                               sha256: hex, path: StoredAttachment.path(forSHA256: hex), contentID: attachment.contentID))
                if !contents.contains(where: { $0.0 == hex }) { contents.append((hex, attachment.data)) }
            }
        }
        // The rules come first: the contract they set is the one the message is threaded in.
        var contract = input.contract
        var routing: Routing?
        var problems = message.problems
        if !rules.isEmpty {
            let routed = rules.route(message.header, mailbox: input.mailbox, contract: input.contract,
                                     verdict: authentication?.verdict.rawValue ?? SenderAuthentication.Verdict.unknown.rawValue)
            if let problem = routed.problem { problems.append(problem) }
            if let set = routed.contract { contract = set }
            routing = routed.isEmpty ? nil : routed
        }
        var event = RequestEvent(id: id, type: "request.new", contract: contract, mailbox: input.mailbox,
                                 receivedAt: input.receivedAt, request: nil, matchedBy: nil, flags: flags, message: message,
                                 messageSize: input.size, attachments: stored, problems: problems,
                                 rawPath: "raw/\(id).eml", delivery: nil, authentication: authentication)
        event.routing = routing
        event.origin = origin
        let report = DeliveryReport.read(message)
        if report != nil || AutomaticMail.looksLikeBounce(message.header, from: message.from) {
            // A bounce is a bounce whatever else its headers say: a desk that sets auto-replies
            // aside must not set these aside with them.
            event.flags.removeAll { $0 == "auto-replied" || $0 == "auto-generated" }
            event.flags.append("bounce")
        }
        if let report {
            // A bounce never opens a request: the returned message's keyed Message-ID names its
            // request, else its subject's tag; a bounce that names none is flagged as such.
            event.type = "delivery.failed"
            event.delivery = report
            if let (request, rule) = returnedRequest(messageID: report.originalMessageID, subject: report.originalSubject) {
                event.request = request
                event.matchedBy = rule
            }
        } else if AutomaticMail.looksLikeBounce(message.header, from: message.from) {
            event.type = "delivery.failed"
            event.delivery = DeliveryReport(originalMessageID: nil, failedRecipients: [], originalSubject: nil)
        } else if let receipt = ReadReceipt.read(message) {
            // A read receipt never opens a request either: matched like a bounce (its report's
            // Original-Message-ID, the returned subject's tag), else as a reply is.
            event.type = "delivery.receipt"
            event.receipt = receipt
            if let (request, rule) = returnedRequest(messageID: receipt.originalMessageID, subject: receipt.originalSubject) {
                event.request = request
                event.matchedBy = rule
            } else if let match = threading.match(message), match.rule != .subjectTag || contractOfRequest(match.request).map({ $0 == contract }) ?? true {
                event.request = match.request
                event.matchedBy = match.rule.rawValue
            }
        } else if let match = threading.match(message) {
            let owner = contractOfRequest(match.request)
            let foreign = owner != nil && owner != contract
            if foreign && match.rule == .subjectTag {
                // Anyone can type a tag: in another contract's mailbox it attaches nothing. A new
                // request of this contract, with the tag reported for the desk to judge.
                event.tagOfOtherContract = match.request
            } else {
                event.type = "request.reply"
                event.request = match.request
                event.matchedBy = match.rule.rawValue
                // A keyed Message-ID cannot be forged: still a reply, but across contracts.
                if foreign { event.flags.append("other-contract") }
            }
        }
        return (event, contents)
    }
}
