#if canImport(Glibc)
import Glibc
#endif

/// A part kept apart from the body text: a file, an inline image, an attached message.
package struct MessageAttachment: Sendable {
    package var filename: String?
    package var contentType: String
    package var data: [UInt8]
    /// Without the angle brackets, as `cid:` URLs in the HTML name it.
    package var contentID: String?
    package var isInline: Bool
}

/// What Carteiro reads from a message: addresses, threading, subject, bodies, attachments.
/// Parsing never fails: a broken message yields what could be read, and `problems` says why.
package struct MailMessage: Sendable {
    package var header: HeaderBlock
    package var messageID: String?
    package var inReplyTo: String?
    package var references: [String]
    /// Seconds since 1970, UTC.
    package var date: Int64?
    package var from: ParsedAddress?
    package var to: [ParsedAddress]
    package var cc: [ParsedAddress]
    package var replyTo: [ParsedAddress]
    package var subject: String?
    /// The text body and the HTML body, as well-formed UTF-8: what the event carries, kept
    /// as bytes so that no String is made of them on the way (see `UTF8Validation`).
    package var textUTF8: [UInt8]?
    package var htmlUTF8: [UInt8]?
    package var text: String? {
        get { textUTF8.map { String(decoding: $0, as: UTF8.self) } }
        set { textUTF8 = newValue.map { Array($0.utf8) } }
    }
    package var html: String? {
        get { htmlUTF8.map { String(decoding: $0, as: UTF8.self) } }
        set { htmlUTF8 = newValue.map { Array($0.utf8) } }
    }
    package var attachments: [MessageAttachment]
    /// Structural problems (damaged header, missing boundary, undecodable charset …).
    package var problems: [String]
    /// The MIME type of the top entity (multipart/report for delivery reports …).
    package var contentType: MIMEHeaderValue
    /// Where the attachments stood when the last HTML piece was read (see `joinHTML`).
    var htmlPiecesEnd = 0
    /// The message class a TNEF part named (`IPM.Note`, `REPORT.IPM.Note.IPNRN` for a read
    /// receipt), when there was one.
    package var tnefMessageClass: String?
    package var root: MIMEEntity

    package static func parse(_ bytes: [UInt8]) -> MailMessage {
        parse(bytes[...])
    }

    package static func parse(_ bytes: ArraySlice<UInt8>) -> MailMessage {
        var parser = MIMEParser()
        let root = parser.parse(bytes)
        let header = root.header
        var message = MailMessage(
            header: header,
            messageID: header.raw("message-id").flatMap { messageIDs($0).first ?? nonEmpty(EncodedWords.plain($0)) },
            inReplyTo: header.raw("in-reply-to").flatMap { messageIDs($0).first },
            references: header.raw("references").map(messageIDs) ?? [],
            date: header.text("date").flatMap(MailDate.parse),
            from: header.raw("from").flatMap { AddressList.parse($0).first },
            to: header.all("to").flatMap(AddressList.parse),
            cc: header.all("cc").flatMap(AddressList.parse),
            replyTo: header.raw("reply-to").map(AddressList.parse) ?? [],
            subject: header.text("subject"),
            textUTF8: nil, htmlUTF8: nil, attachments: [], problems: [],
            contentType: root.contentType, htmlPiecesEnd: 0, tnefMessageClass: nil, root: root)
        if header.fields.isEmpty { message.problems.append("no header") }
        message.collect(root, inAlternative: false)
        if message.textUTF8?.isEmpty != false, let html = message.html { message.text = HTMLText.render(html) }
        return message
    }

    static func nonEmpty(_ text: String) -> String? { text.isEmpty ? nil : text }

    /// Every `<…>` in a header value: Message-ID, In-Reply-To, References.
    package static func messageIDs(_ raw: [UInt8]) -> [String] {
        var ids: [String] = []
        var i = 0
        while let open = raw[i...].firstIndex(of: UInt8(ascii: "<")) {
            guard let close = raw[open...].firstIndex(of: UInt8(ascii: ">")) else { break }
            let id = raw[open...close].filter { $0 != 32 && $0 != 9 && $0 != 13 && $0 != 10 }
            if id.count > 2 { ids.append(EncodedWords.plain(id)) }
            i = close + 1
        }
        return ids
    }

    mutating func collect(_ entity: MIMEEntity, inAlternative: Bool) {
        problems.append(contentsOf: entity.problems)
        if entity.isMultipart {
            let alternative = entity.contentType.value == "multipart/alternative"
            for child in entity.children { collect(child, inAlternative: alternative) }
            return
        }
        let type = entity.contentType.value
        if type == "message/rfc822" || type == "message/global" {
            let subject = entity.embeddedMessage.first?.header.text("subject")
            attachments.append(MessageAttachment(filename: entity.filename ?? subject.map { Self.safeFilename($0) + ".eml" },
                                                 contentType: type, data: entity.decodedBody, contentID: nil, isInline: false))
            return
        }
        if Self.isTNEF(type: type, filename: entity.filename) {
            // Outlook's rich text wrapper: its body and files are what the sender attached.
            if let tnef = TNEF.read(entity.decodedBody) {
                absorb(tnef)
                return
            }
            problems.append("TNEF attachment could not be read")
        }
        if type == "application/mac-binhex40" || type == "application/x-mac-binhex40", let file = BinHex.decode(entity.decodedBody) {
            attachments.append(MessageAttachment(filename: file.name, contentType: Self.guessType(file.name), data: file.data,
                                                 contentID: nil, isInline: false))
            return
        }
        let isBodyCandidate = !entity.isAttachment && entity.filename == nil
        if isBodyCandidate && (type == "text/plain" || type == "text/html") {
            let charset = entity.contentType.parameters["charset"]
            var decoded: (utf8: [UInt8], exact: Bool)
            if Charset.keepsASCIILineEnds(charset) {
                // Line ends are the same bytes before and after decoding: normalise them first,
                // so that the text is decoded, validated and copied once. UTF-8 as declared
                // (most mail) is taken as it is.
                let normalized = Self.normalizedLineEnds(entity.decodedBody)
                if Charset.readsAsUTF8(charset) && UTF8Validation.isValid(normalized) {
                    decoded = (normalized, true)
                } else {
                    let (text, exact) = Charset.decodeLeniently(normalized, charset: charset)
                    decoded = (Array(text.utf8), exact)
                }
            } else {
                let (text, exact) = Charset.decodeLeniently(entity.decodedBody, charset: charset)
                decoded = (Array(Self.normalizedLineEnds(text).utf8), exact)
            }
            if !decoded.exact { problems.append("text not in its declared charset \(entity.contentType.parameters["charset"] ?? "")") }
            decoded.utf8 = UTF8Validation.withoutNUL(decoded.utf8)
            if type == "text/plain" {
                // Files uuencoded into the text (`begin 644 name` … `end`) are attachments.
                let (text, files) = UUEncode.extract(from: decoded.utf8)
                for file in files {
                    attachments.append(MessageAttachment(filename: file.name, contentType: Self.guessType(file.name), data: file.data, contentID: nil, isInline: false))
                }
                if textUTF8 == nil { textUTF8 = text; return }
                if !inAlternative { textUTF8! += [10] + text; return }
            } else if htmlUTF8 == nil {
                htmlUTF8 = decoded.utf8
                htmlPiecesEnd = attachments.count
                return
            } else if !inAlternative {
                // HTML in pieces between inline images (Apple Mail): one document, in order,
                // each image that came between two pieces shown where it stood.
                let images = attachments[htmlPiecesEnd...].filter { $0.isInline && $0.contentType.hasPrefix("image/") }.compactMap(\.contentID)
                let between = images.map { "<img src=\"cid:\($0)\">" }.joined()
                htmlUTF8 = Self.joinHTML(htmlUTF8!, decoded.utf8, between: Array(between.utf8))
                htmlPiecesEnd = attachments.count
                return
            }
        }
        let contentID = entity.contentID.map { $0.hasPrefix("<") && $0.hasSuffix(">") ? String($0.dropFirst().dropLast()) : $0 }
        let filename = entity.filename ?? (entity.isUUEncoded ? UUEncode.decodeBody(entity.rawBody).name : nil)
        attachments.append(MessageAttachment(filename: filename, contentType: type, data: entity.decodedBody,
                                             contentID: contentID, isInline: entity.disposition?.value == "inline" || (entity.disposition == nil && contentID != nil)))
    }

    static func isTNEF(type: String, filename: String?) -> Bool {
        type == "application/ms-tnef" || type == "application/vnd.ms-tnef"
            || (type == "application/octet-stream" && filename?.lowercased() == "winmail.dat")
    }

    /// What a TNEF attachment held: its files, and its body where the message has none.
    mutating func absorb(_ tnef: TNEF.Content) {
        // Outlook sends an empty text part beside the TNEF: the TNEF's body is the message's.
        if textUTF8?.isEmpty != false, let text = tnef.text { textUTF8 = Self.normalizedLineEnds(Array(UTF8Validation.withoutNUL(text).utf8)) }
        if htmlUTF8?.isEmpty != false, let html = tnef.html { htmlUTF8 = Array(UTF8Validation.withoutNUL(html).utf8) }
        if tnefMessageClass == nil { tnefMessageClass = tnef.messageClass }
        for file in tnef.attachments {
            attachments.append(MessageAttachment(filename: file.name, contentType: file.contentType ?? file.name.map(Self.guessType) ?? "application/octet-stream",
                                                 data: file.data, contentID: file.contentID, isInline: file.contentID != nil))
        }
        problems.append(contentsOf: tnef.problems)
    }

    /// Two HTML pieces as one document: `between`, then the second's body, go before the
    /// first's `</body>`.
    static func joinHTML(_ first: [UInt8], _ second: [UInt8], between: [UInt8] = []) -> [UInt8] {
        var body = second[...]
        if let open = ASCIICase.firstIndex(of: "<body", in: body), let close = body[open...].firstIndex(of: UInt8(ascii: ">")) {
            body = body[(close + 1)...]
        }
        if let end = ASCIICase.lastIndex(of: "</body", in: body) { body = body[..<end] }
        guard let insertAt = ASCIICase.lastIndex(of: "</body", in: first[...]) else { return first + [10] + between + body }
        return Array(first[..<insertAt]) + [10] + between + body + first[insertAt...]
    }

    /// A content type from a file name's extension, for files that came without one
    /// (uuencoded, BinHex, TNEF): the common ones, else application/octet-stream.
    static func guessType(_ name: String) -> String {
        let ext = name.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "pdf": return "application/pdf"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "bmp": return "image/bmp"
        case "tif", "tiff": return "image/tiff"
        case "txt": return "text/plain"
        case "htm", "html": return "text/html"
        case "rtf": return "application/rtf"
        case "zip": return "application/zip"
        case "doc": return "application/msword"
        case "xls": return "application/vnd.ms-excel"
        case "ppt": return "application/vnd.ms-powerpoint"
        case "docx": return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        case "xlsx": return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        case "eml": return "message/rfc822"
        default: return "application/octet-stream"
        }
    }

    /// Line ends as "\n" (CRLF, the "\r\r\n" of Outlook's encoded CRs, and lone CRs), and no
    /// trailing blank lines: the desk gets text, not transport artefacts.
    static func normalizedLineEnds(_ text: String) -> String {
        String(decoding: normalizedLineEnds(Array(text.utf8)), as: UTF8.self)
    }

    /// The same on bytes of any charset whose CR and LF are the ASCII bytes.
    static func normalizedLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBufferPointer { input -> [UInt8] in
            let count = input.count
            guard let base = input.baseAddress else { return [] }
            var out = [UInt8]()
            out.reserveCapacity(count)
            var runStart = 0
            while runStart < count {
                // The next CR, found by memchr: text is mostly runs without one.
                guard let found = memchr(base + runStart, 13, count - runStart) else {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<count]))
                    break
                }
                let i = UnsafeRawPointer(found).assumingMemoryBound(to: UInt8.self) - base
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<i])) }
                // "\r\n", "\r\r\n" and a lone "\r" are all one line end.
                var j = i
                while j < count && input[j] == 13 { j += 1 }
                if j < count && input[j] == 10 { j += 1 } else { j = i + 1 }
                out.append(10)
                runStart = j
            }
            while let last = out.last, last == 10 || last == 32 || last == 9 { out.removeLast() }
            return out
        }
    }

    /// A subject made safe to use as a file name.
    static func safeFilename(_ text: String) -> String {
        let cleaned = String(text.unicodeScalars.map { $0 == "/" || $0 == "\\" || $0.value < 32 ? "_" : Character($0) }).trimmingCharacters(" ")
        return cleaned.isEmpty ? "message" : String(cleaned.prefix(100))
    }
}
