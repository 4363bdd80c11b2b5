import CarteiroJSON
import CarteiroMail

/// Where a message came from, as its source names it: the path under the mailbox that makes
/// its event id, stable across re-fetches. Each kind of source makes its own (an IMAP message
/// is `UIDVALIDITY/UID`, a POP3 one `uidl/UIDL`).
package struct MessageOrigin: Sendable, Hashable {
    /// The components of the id after the mailbox's name, each safe in a file name.
    package let components: [String]
    /// For a source whose ids the event id cannot show whole (Graph's run to 150 characters):
    /// the source's name and the message's own id, carried in the event as `origin`.
    package private(set) var source: String?
    package private(set) var sourceID: String?

    /// `components` as given, each made safe for a file name (see `fileSafe`).
    package init(_ components: [String]) {
        self.components = components.map(Self.fileSafe)
    }

    /// `graph/<the immutable id, %-encoded or hashed>`, with the id itself kept for the event.
    package static func graph(id: String) -> MessageOrigin {
        var origin = MessageOrigin(["graph", id])
        origin.source = "graph"
        origin.sourceID = id
        return origin
    }

    /// Components known to be safe (digits), taken as they are.
    private init(safe components: [String]) {
        self.components = components
    }

    /// `1700000000/42`.
    package static func imap(uidValidity: UInt32, uid: UInt32) -> MessageOrigin {
        MessageOrigin(safe: [String(uidValidity), String(uid)])
    }

    /// `uidl/<UIDL with unsafe characters %-encoded>`.
    package static func pop3(uidl: String) -> MessageOrigin {
        MessageOrigin(["uidl", uidl])
    }

    /// `acme-in/1700000000/42`, or `beta-in/uidl/a%2Fb`.
    package func eventID(mailbox: String) -> String {
        ([mailbox] + components).joined(separator: "/")
    }

    /// A component comes from a server: a UIDL may hold any printable ASCII (RFC 1939 §7), `/`
    /// included, and at most 70 of them. Unsafe bytes are %-encoded, and a component longer
    /// than 70 bytes becomes a hash, so a file name never grows past what the file system
    /// allows (a name it refuses would stop the mailbox); an empty one becomes `-`.
    static func fileSafe(_ text: String) -> String {
        guard !text.isEmpty else { return "-" }
        guard text.utf8.count <= 70 else { return "h-" + String(Digest.hex(Digest.sha256(Array(text.utf8))).prefix(40)) }
        var out = ""
        for byte in text.utf8 {
            let c = Unicode.Scalar(byte)
            if (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "-" || c == "_" || c == "." && !out.isEmpty {
                out.unicodeScalars.append(c)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

/// An attachment as the event names it: stored once per content, by SHA-256.
package struct StoredAttachment: Sendable {
    package var filename: String?
    package var contentType: String
    package var size: Int
    package var sha256: String
    /// Relative to the state directory: `attachments/ab/abcdef…`.
    package var path: String
    package var contentID: String?

    package static func path(forSHA256 hex: String) -> String { "attachments/\(hex.prefix(2))/\(hex)" }

    /// The names mail programs give the parts that come without one.
    static let knownNames: [String: String] = [
        "application/pgp-signature": "signature.asc",
        "application/pgp-keys": "key.asc",
        "application/pgp-encrypted": "version.txt",
        "application/pkcs7-signature": "smime.p7s",
        "application/x-pkcs7-signature": "smime.p7s",
        "application/pkcs7-mime": "smime.p7m",
        "application/x-pkcs7-mime": "smime.p7m",
        "text/calendar": "invite.ics",
        "text/plain": "attachment.txt",
        "message/delivery-status": "delivery-status.txt",
        "message/disposition-notification": "disposition-notification.txt",
        "text/rfc822-headers": "headers.txt",
    ]

    /// The file name as the sender wrote it may hold anything (`../`, `/etc/x`, NUL, CR/LF, a
    /// thousand characters): `filename` keeps it, and this is a name the desk can give a file.
    /// The last path component only, control characters and `/ \ : * ? " < > |` replaced by
    /// `_`, no leading dot or dash, at most 200 bytes (the extension kept), never empty
    /// (a part without a name gets the one mail programs give it: `signature.asc` …).
    package static func safeName(_ original: String?, contentType: String) -> String {
        var name = ""
        for scalar in (original ?? "").unicodeScalars {
            if scalar == "/" || scalar == "\\" {
                name = ""
                continue
            }
            let unsafe = scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                || ":*?\"<>|".unicodeScalars.contains(scalar) || scalar == "\u{2028}" || scalar == "\u{2029}"
            name.unicodeScalars.append(unsafe ? "_" : scalar)
        }
        while let first = name.first, first == "." || first == "-" || first == " " { name.removeFirst() }
        while let last = name.last, last == " " || last == "." { name.removeLast() }
        if name.utf8.count > 200 {
            let dot = name.lastIndex(of: ".").map { name[$0...] }.map(String.init) ?? ""
            let keep = dot.utf8.count <= 20 ? dot : ""
            var stem = String(name.dropLast(keep.count))
            while stem.utf8.count + keep.utf8.count > 200 { stem.removeLast() }
            name = stem + keep
        }
        if name.isEmpty, let known = knownNames[contentType.lowercased()] { name = known }
        if name.isEmpty {
            let type = contentType.lowercased()
            let subtype = type == "message/rfc822" ? "eml"
                : String((type.split(separator: "/").last.map(String.init) ?? "").filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }.prefix(20))
            name = "attachment" + (subtype.isEmpty ? "" : "." + subtype)
        }
        return name
    }
}

/// What a message becomes for the desk (carteiro-events(5)), before it is written as JSON.
package struct RequestEvent: Sendable {
    package var id: String
    package var type: String
    package var contract: String?
    package var mailbox: String
    package var receivedAt: Int64
    package var request: String?
    package var matchedBy: String?
    package var flags: [String]
    package var message: MailMessage?
    package var messageSize: Int
    package var attachments: [StoredAttachment]
    package var problems: [String]
    /// Relative to the state directory: `raw/acme-in/1700000000/42.eml`.
    package var rawPath: String
    package var delivery: DeliveryReport?
    /// The subject carried the tag of request R of another contract: not attached to it.
    package var tagOfOtherContract: String?
    /// What a read receipt says (`delivery.receipt`).
    package var receipt: ReadReceipt?
    /// The source's own name of the message, where the event id cannot show it whole.
    package var origin: (source: String, id: String)?
    /// The receiving server's verdict on the sender, for a mailbox that trusts one.
    package var authentication: SenderAuthentication?
    /// What the routing rules made of it, when any matched.
    package var routing: Routing?

    package func json() -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("id", .string(id)),
            ("type", .string(type)),
            ("contract", .optional(contract)),
            ("mailbox", .string(mailbox)),
            ("received_at", .string(MailDate.iso8601(receivedAt))),
            ("request", .optional(request)),
        ]
        if let matchedBy { members.append(("matched_by", .string(matchedBy))) }
        if let origin { members.append(("origin", .object([("source", .string(origin.source)), ("id", .string(origin.id))]))) }
        if let tagOfOtherContract { members.append(("tag_of_other_contract", .string(tagOfOtherContract))) }
        members.append(("flags", .array(flags.map(JSONValue.string))))
        if let authentication {
            members.append(("authentication", .object([
                ("verdict", .string(authentication.verdict.rawValue)),
                ("authserv_id", .optional(authentication.authservID)),
                ("spf", .optional(authentication.spf)),
                ("spf_domain", .optional(authentication.spfDomain)),
                ("dkim", .array(authentication.dkim.map { .object([("result", .string($0.result)), ("domain", .optional($0.domain))]) })),
                ("dmarc", .optional(authentication.dmarc)),
                ("aligned", .bool(authentication.aligned)),
            ])))
        }
        if let routing {
            members.append(("routing", .object([
                ("rules", .array(routing.rules.map(JSONValue.string))),
                ("tags", .array(routing.tags.map(JSONValue.string))),
                ("priority", .optional(routing.priority)),
                ("queue", .optional(routing.queue)),
            ])))
        }
        members.append(("message", messageJSON()))
        if let delivery {
            members.append(("delivery", .object([
                ("original_message_id", .optional(delivery.originalMessageID)),
                ("failed_recipients", .array(delivery.failedRecipients.map { recipient in
                    .object([("address", .string(recipient.address)), ("status", .optional(recipient.status)), ("diagnostic", .optional(recipient.diagnostic))])
                })),
            ])))
        }
        if let receipt {
            members.append(("receipt", .object([
                ("original_message_id", .optional(receipt.originalMessageID)),
                ("disposition", .optional(receipt.disposition)),
                ("recipient", .optional(receipt.recipient)),
            ])))
        }
        if !problems.isEmpty { members.append(("problems", .array(problems.map(JSONValue.string)))) }
        members.append(("raw", .string(rawPath)))
        return .object(members)
    }

    /// The event as `json().renderedBytes()` writes it, byte for byte, without the tree: what
    /// the ingest writes for every message.
    package func renderedBytes() -> [UInt8] {
        let m = message
        var w = JSONWriter(capacity: (m?.textUTF8?.count ?? 0) + (m?.htmlUTF8?.count ?? 0) + 2048 + 512 * attachments.count)
        w.beginObject()
        w.key("id"); w.string(id)
        w.key("type"); w.string(type)
        w.key("contract"); w.optional(contract)
        w.key("mailbox"); w.string(mailbox)
        w.key("received_at"); w.string(MailDate.iso8601(receivedAt))
        w.key("request"); w.optional(request)
        if let matchedBy { w.key("matched_by"); w.string(matchedBy) }
        if let origin {
            w.key("origin")
            w.beginObject()
            w.key("source"); w.string(origin.source)
            w.key("id"); w.string(origin.id)
            w.endObject()
        }
        if let tagOfOtherContract { w.key("tag_of_other_contract"); w.string(tagOfOtherContract) }
        w.key("flags"); w.strings(flags)
        if let authentication {
            w.key("authentication")
            w.beginObject()
            w.key("verdict"); w.string(authentication.verdict.rawValue)
            w.key("authserv_id"); w.optional(authentication.authservID)
            w.key("spf"); w.optional(authentication.spf)
            w.key("spf_domain"); w.optional(authentication.spfDomain)
            w.key("dkim")
            w.beginArray()
            for signature in authentication.dkim {
                w.item()
                w.beginObject()
                w.key("result"); w.string(signature.result)
                w.key("domain"); w.optional(signature.domain)
                w.endObject()
            }
            w.endArray()
            w.key("dmarc"); w.optional(authentication.dmarc)
            w.key("aligned"); w.bool(authentication.aligned)
            w.endObject()
        }
        if let routing {
            w.key("routing")
            w.beginObject()
            w.key("rules"); w.strings(routing.rules)
            w.key("tags"); w.strings(routing.tags)
            w.key("priority"); w.optional(routing.priority)
            w.key("queue"); w.optional(routing.queue)
            w.endObject()
        }
        w.key("message")
        w.beginObject()
        w.key("message_id"); w.optional(m?.messageID)
        w.key("in_reply_to"); w.optional(m?.inReplyTo)
        w.key("references"); w.strings(m?.references ?? [])
        w.key("date"); w.optional(m?.date.map(MailDate.iso8601))
        w.key("from")
        if let from = m?.from { Self.write(from, to: &w) } else { w.null() }
        for (name, list) in [("to", m?.to ?? []), ("cc", m?.cc ?? []), ("reply_to", m?.replyTo ?? [])] {
            w.key(name)
            w.beginArray()
            for address in list {
                w.item()
                Self.write(address, to: &w)
            }
            w.endArray()
        }
        w.key("subject"); w.optional(m?.subject)
        w.key("text"); w.optional(utf8: m?.textUTF8)
        w.key("html"); w.optional(utf8: m?.htmlUTF8)
        w.key("attachments")
        w.beginArray()
        for a in attachments {
            w.item()
            w.beginObject()
            w.key("filename"); w.optional(a.filename)
            w.key("safe_name"); w.string(StoredAttachment.safeName(a.filename, contentType: a.contentType))
            w.key("content_type"); w.string(a.contentType)
            w.key("size"); w.number(Int64(a.size))
            w.key("sha256"); w.string(a.sha256)
            w.key("path"); w.string(a.path)
            w.key("content_id"); w.optional(a.contentID)
            w.endObject()
        }
        w.endArray()
        w.key("size"); w.number(Int64(messageSize))
        w.endObject()
        if let delivery {
            w.key("delivery")
            w.beginObject()
            w.key("original_message_id"); w.optional(delivery.originalMessageID)
            w.key("failed_recipients")
            w.beginArray()
            for recipient in delivery.failedRecipients {
                w.item()
                w.beginObject()
                w.key("address"); w.string(recipient.address)
                w.key("status"); w.optional(recipient.status)
                w.key("diagnostic"); w.optional(recipient.diagnostic)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
        if let receipt {
            w.key("receipt")
            w.beginObject()
            w.key("original_message_id"); w.optional(receipt.originalMessageID)
            w.key("disposition"); w.optional(receipt.disposition)
            w.key("recipient"); w.optional(receipt.recipient)
            w.endObject()
        }
        if !problems.isEmpty { w.key("problems"); w.strings(problems) }
        w.key("raw"); w.string(rawPath)
        w.endObject()
        return w.finish()
    }

    static func write(_ address: ParsedAddress, to w: inout JSONWriter) {
        w.beginObject()
        w.key("name"); w.optional(address.name)
        w.key("address"); w.string(address.address)
        w.endObject()
    }

    static func address(_ address: ParsedAddress) -> JSONValue {
        .object([("name", .optional(address.name)), ("address", .string(address.address))])
    }

    func messageJSON() -> JSONValue {
        let m = message
        return .object([
            ("message_id", .optional(m?.messageID)),
            ("in_reply_to", .optional(m?.inReplyTo)),
            ("references", .array((m?.references ?? []).map(JSONValue.string))),
            ("date", m?.date.map { .string(MailDate.iso8601($0)) } ?? .null),
            ("from", m?.from.map(Self.address) ?? .null),
            ("to", .array((m?.to ?? []).map(Self.address))),
            ("cc", .array((m?.cc ?? []).map(Self.address))),
            ("reply_to", .array((m?.replyTo ?? []).map(Self.address))),
            ("subject", .optional(m?.subject)),
            ("text", .optional(utf8: m?.textUTF8)),
            ("html", .optional(utf8: m?.htmlUTF8)),
            ("attachments", .array(attachments.map { a in
                .object([("filename", .optional(a.filename)), ("safe_name", .string(StoredAttachment.safeName(a.filename, contentType: a.contentType))),
                         ("content_type", .string(a.contentType)), ("size", .number(Int64(a.size))),
                         ("sha256", .string(a.sha256)), ("path", .string(a.path)), ("content_id", .optional(a.contentID))])
            })),
            ("size", .number(Int64(messageSize))),
        ])
    }
}
