import CarteiroConfig
import CarteiroEvents
import CarteiroMail
import Foundation
import Synchronization
import Mustache

/// Turns a submission into messages: which mailbox sends (explicit → step's
/// `specific` → contract's → system's), who receives (the step's users and group members and the
/// extra addresses, each once), and what each message says (templates or given texts).
package struct SubmissionResolver: Sendable {
    package let configuration: Configuration
    package let threading: RequestThreading
    package let hostname: String
    let templateCache = TemplateCache()

    package init(configuration: Configuration, threading: RequestThreading, hostname: String) {
        self.configuration = configuration
        self.threading = threading
        self.hostname = hostname
    }

    struct Recipient {
        var name: String?
        var address: String
    }

    /// `attachmentsDirectory`: where attachments given by `path` are (the outbox); without
    /// it only inline attachments are taken.
    package func resolve(_ submission: Submission, queueID: String, now: Date = Date(), attachmentsDirectory: String? = nil) -> Result<[OutboundMessage], SubmissionRejection> {
        do {
            return .success(try messages(submission, queueID: queueID, now: now, attachmentsDirectory: attachmentsDirectory))
        } catch let rejection as SubmissionRejection {
            return .failure(rejection)
        } catch {
            return .failure(SubmissionRejection("\(error)"))
        }
    }

    func messages(_ submission: Submission, queueID: String, now: Date, attachmentsDirectory: String? = nil) throws -> [OutboundMessage] {
        // The step.
        var step: WorkflowStep?
        if submission.workflow != nil || submission.step != nil {
            guard let workflowName = submission.workflow, let stepName = submission.step else {
                throw SubmissionRejection("a submission names both `workflow` and `step`, or neither")
            }
            guard let workflow = configuration.workflow(workflowName) else {
                throw SubmissionRejection("there is no workflow \"\(workflowName)\"" + NearestName.hint(workflowName, among: configuration.workflows.map(\.id), quote: { "\"\($0)\"" }))
            }
            guard let found = workflow.steps.first(where: { $0.id == stepName }) else {
                throw SubmissionRejection("workflow \"\(workflowName)\" has no step \"\(stepName)\"" + NearestName.hint(stepName, among: workflow.steps.map(\.id), quote: { "\"\($0)\"" }))
            }
            step = found
        }
        // The contract.
        var contract: Contract?
        if let name = submission.contract {
            guard let found = configuration.contract(name) else {
                throw SubmissionRejection("there is no contract \"\(name)\"" + NearestName.hint(name, among: configuration.contracts.map(\.id), quote: { "\"\($0)\"" }))
            }
            contract = found
        }
        // The mailbox.
        if let explicit = submission.mailbox, configuration.outbound(explicit) == nil {
            let what = configuration.inbound(explicit) != nil ? "is an inbound mailbox" : "is not an outbound mailbox of the configuration"
            throw SubmissionRejection("mailbox \"\(explicit)\" \(what)")
        }
        let resolution = OutboundResolution.resolve(step: step, contract: contract, explicitMailbox: submission.mailbox, in: configuration)
        guard let mailbox = configuration.outbound(resolution.mailbox) else {
            throw SubmissionRejection("the resolved mailbox \"\(resolution.mailbox)\" is not an outbound mailbox")
        }
        if let request = submission.request, !request.unicodeScalars.allSatisfy({ ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }) {
            throw SubmissionRejection("`request` may hold letters, digits, `-` and `_` only")
        }

        // The recipients: the step's users, its groups' members, the extra addresses, once each.
        var recipients: [Recipient] = []
        var seen: Set<String> = []
        func add(_ recipient: Recipient) {
            if seen.insert(recipient.address.lowercased()).inserted { recipients.append(recipient) }
        }
        if let step {
            for user in configuration.recipients(of: step) { add(Recipient(name: user.name, address: user.email.address)) }
        }
        for text in submission.to ?? [] { add(try Self.address(text, field: "to")) }
        let cc = try (submission.cc ?? []).map { try Self.address($0, field: "cc") }
        let bcc = try (submission.bcc ?? []).map { try Self.address($0, field: "bcc") }
        guard !recipients.isEmpty || !cc.isEmpty || !bcc.isEmpty else {
            throw SubmissionRejection("no recipient is left: the step names none, and the submission adds no `to`, `cc` or `bcc`")
        }

        // The texts.
        let subjectTemplate = submission.subject ?? step?.subject
        let textTemplate = submission.text ?? step?.body
        let htmlTemplate = submission.html ?? step?.html
        guard let subjectTemplate else { throw SubmissionRejection("there is no subject: give `subject`, or a step that has one") }
        guard textTemplate != nil || htmlTemplate != nil else { throw SubmissionRejection("there is no body: give `text` or `html`, or a step that has one") }
        // Only the step's texts are templates: a submission's own subject, text and html are
        // sent as written, braces and all (a desk's text is data, never code to run).
        let compiled = try (
            subject: compile(subjectTemplate, field: "subject", html: false, isTemplate: submission.subject == nil),
            text: textTemplate.map { try compile($0, field: "text", html: false, isTemplate: submission.text == nil) },
            html: htmlTemplate.map { try compile($0, field: "html", html: true, isTemplate: submission.html == nil) })

        let replyTo = try (submission.replyTo ?? []).map { try Self.address($0, field: "reply_to") }
        let files = try Self.attachments(submission.attachments ?? [], directory: attachmentsDirectory, mailbox: mailbox)
        // The variables a step's template uses outside any section must be given: a missing
        // one would render as nothing ("Olá ,"). A section on it is the explicit default:
        // {{#request.subject}}{{request.subject}}{{/request.subject}}{{^request.subject}}(none){{/request.subject}}.
        let used: [(field: String, names: [String])] = [
            ("subject", submission.subject == nil ? Self.unguardedVariables(subjectTemplate) : []),
            ("text", submission.text == nil ? textTemplate.map(Self.unguardedVariables) ?? [] : []),
            ("html", submission.html == nil ? htmlTemplate.map(Self.unguardedVariables) ?? [] : []),
            ("contract signature", contract?.signature.map(Self.unguardedVariables) ?? []),
            ("contract signature_html", contract?.signatureHTML.map(Self.unguardedVariables) ?? []),
        ]
        // The contract's signature: its own template, after the body.
        let signature = try contract?.signature.map { try compile($0, field: "signature", html: false, isTemplate: true) }
        let signatureHTML = try contract?.signatureHTML.map { try compile($0, field: "signature_html", html: true, isTemplate: true) }

        let oneMessage = submission.oneMessage ?? false
        let groups: [[Recipient]] = oneMessage || recipients.isEmpty ? [recipients] : recipients.map { [$0] }
        var messages: [OutboundMessage] = []
        for (index, group) in groups.enumerated() {
            let recipient = group.count == 1 ? group[0] : nil
            let context = Self.context(submission: submission, contract: contract, mailbox: mailbox, recipient: recipient)
            for (field, names) in used {
                for name in names where !Self.has(name, in: context) {
                    let hint = name.hasPrefix("recipient.") && recipient == nil
                        ? " (recipient.* is there only when each recipient gets a message of their own: one_message is true here)"
                        : "; give it in `vars` (\"vars\": {\"\(name.split(separator: ".").joined(separator: "\": {\""))\": \"…\"}}), or give the template a default with a section"
                    let what = field.hasPrefix("contract ") ? "the contract's \(field.dropFirst(9)) template" : "the step's \(field) template"
                    throw SubmissionRejection("\(what) uses {{\(name)}}, which the submission does not provide\(hint)")
                }
            }
            var subject = compiled.subject.render(context).trimmingCharacters(in: .whitespacesAndNewlines)
            if let request = submission.request, threading.request(fromSubject: subject) != request {
                subject = "[\(threading.tagPrefix)\(request)] " + subject
            }
            let nonce = "\(queueID)-\(index + 1)".filter { $0.isLetter || $0.isNumber || $0 == "-" }
            let messageID = submission.request.flatMap { threading.messageID(request: $0, nonce: nonce, host: hostname) }
                ?? "<carteiro.\(nonce)@\(hostname)>"
            var builder = MessageBuilder(boundary: "=_carteiro_\(nonce)")
            do {
                try builder.addAddresses("From", [ParsedAddress(name: mailbox.sender.name, address: mailbox.sender.address)])
                let to = group.map { ParsedAddress(name: $0.name, address: $0.address) }
                if !to.isEmpty { try builder.addAddresses("To", to) }
                // Cc goes on the message where it is visible; Bcc never appears in a header.
                if !cc.isEmpty && (oneMessage || index == 0) { try builder.addAddresses("Cc", cc.map { ParsedAddress(name: $0.name, address: $0.address) }) }
                if !replyTo.isEmpty { try builder.addAddresses("Reply-To", replyTo.map { ParsedAddress(name: $0.name, address: $0.address) }) }
                try builder.addText("Subject", subject)
                try builder.addRaw("Date", Self.rfc5322Date(now))
                try builder.addRaw("Message-ID", messageID)
                if let inReplyTo = submission.inReplyTo {
                    try builder.addRaw("In-Reply-To", inReplyTo)
                    try builder.addRaw("References", ((submission.references ?? []) + [inReplyTo]).joined(separator: " "))
                } else if let references = submission.references, !references.isEmpty {
                    try builder.addRaw("References", references.joined(separator: " "))
                }
                // RFC 3834: machines must not answer this; Exchange's out-of-office stays quiet.
                try builder.addRaw("Auto-Submitted", "auto-generated")
                try builder.addRaw("X-Auto-Response-Suppress", "All")
            } catch {
                throw SubmissionRejection(error.description)
            }
            builder.attachments = files
            builder.text = compiled.text?.render(context)
            builder.html = compiled.html?.render(context)
            if let signature, let text = builder.text {
                builder.text = text + (text.hasSuffix("\n") ? "\n" : "\n\n") + signature.render(context)
            }
            if let signatureHTML, let html = builder.html {
                builder.html = html + signatureHTML.render(context)
            }
            var envelope = group.map(\.address)
            if oneMessage || index == 0 { envelope += cc.map(\.address) }
            if oneMessage || index == 0 { envelope += bcc.map(\.address) }
            messages.append(OutboundMessage(mailbox: mailbox.name, envelopeFrom: mailbox.sender.address, recipients: envelope,
                                            messageID: messageID, request: submission.request, contract: contract?.id,
                                            bytes: builder.build(), resolution: resolution))
        }
        return messages
    }

    /// Sections nested deeper than this are refused: the template engine recurses once per
    /// level, and no notification needs more than a handful.
    static let maximumSectionDepth = 16

    func compile(_ template: String, field: String, html: Bool, isTemplate: Bool) throws -> CompiledTemplate {
        // Text without a tag needs no template engine.
        guard isTemplate, Self.hasTag(template) else { return CompiledTemplate(constant: template) }
        if Self.sectionDepth(template) > Self.maximumSectionDepth {
            throw SubmissionRejection("the step's \(field) template nests sections deeper than \(Self.maximumSectionDepth) levels")
        }
        let key = (html ? "H" : "T") + template
        if let cached = templateCache.get(key) { return cached }
        do {
            // Subjects and plain text are not HTML: nothing in them is escaped.
            let compiled = CompiledTemplate(template: try MustacheTemplate(string: (html ? "" : "{{% CONTENT_TYPE: TEXT}}") + template))
            templateCache.set(key, compiled)
            return compiled
        } catch {
            throw SubmissionRejection("the \(field) template is not valid Mustache: \(error)")
        }
    }

    static func address(_ text: String, field: String) throws -> Recipient {
        if text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
            throw SubmissionRejection("`\(field)` holds a line break (refused: header injection)")
        }
        guard let parsed = MailAddress(parsing: text) else {
            throw SubmissionRejection("`\(field)`: \"\(text)\" is not an e-mail address")
        }
        return Recipient(name: parsed.name, address: parsed.address)
    }

    /// The template context: request, contract, recipient, mailbox, and the submission's vars
    /// (dotted keys nest, so `request.subject` extends `request`).
    static func context(submission: Submission, contract: Contract?, mailbox: OutboundMailbox, recipient: Recipient?) -> [String: Any] {
        var root: [String: Any] = [
            "request": ["id": submission.request ?? ""] as [String: Any],
            "contract": ["id": contract?.id ?? "", "name": contract?.name ?? ""] as [String: Any],
            "mailbox": ["name": mailbox.name, "sender": mailbox.sender.description, "address": mailbox.sender.address] as [String: Any],
        ]
        if let recipient {
            root["recipient"] = ["name": recipient.name ?? recipient.address, "email": recipient.address] as [String: Any]
        }
        for (key, value) in submission.vars ?? [:] {
            let path = key.split(separator: ".").map(String.init)
            guard !path.isEmpty else { continue }
            root = insert(value, at: path[...], into: root)
        }
        return root
    }

    static func insert(_ value: String, at path: ArraySlice<String>, into dictionary: [String: Any]) -> [String: Any] {
        var copy = dictionary
        guard let first = path.first else { return copy }
        if path.count == 1 {
            copy[first] = value
        } else {
            copy[first] = insert(value, at: path.dropFirst(), into: copy[first] as? [String: Any] ?? [:])
        }
        return copy
    }

    /// The attachments, read and checked: a name (no path, no control character, at most 255
    /// bytes), a MIME type (default application/octet-stream), and either inline base64 or a
    /// path inside `directory` (no way out of it, symbolic links included); together at most
    /// the mailbox's `max_attachment_size`.
    static func attachments(_ list: [SubmissionAttachment], directory: String?, mailbox: OutboundMailbox) throws -> [MessageBuilder.Attachment] {
        var files: [MessageBuilder.Attachment] = []
        var total = 0
        let limit = mailbox.maxAttachmentSize
        for (index, attachment) in list.enumerated() {
            let field = "`attachments[\(index)]`"
            let name = attachment.name
            guard !name.isEmpty, name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" || $0 == "\\" }) else {
                throw SubmissionRejection("\(field): the name must be a file name (no path, no control character, at most 255 bytes)")
            }
            let type = attachment.type ?? "application/octet-stream"
            guard Self.isMIMEType(type) else { throw SubmissionRejection("\(field): \"\(type.prefix(80))\" is not a MIME type such as application/pdf") }
            let bytes: [UInt8]
            switch (attachment.path, attachment.contentBase64) {
            case (nil, let encoded?):
                guard encoded.utf8.count <= (limit / 3 + 1) * 4 + encoded.utf8.count / 38 + 16 else {
                    throw SubmissionRejection("the attachments are larger than max_attachment_size (\(limit / 1024) KB) of mailbox \"\(mailbox.name)\"")
                }
                switch StrictBase64.decode(encoded) {
                case .success(let data): bytes = data
                case .failure(let reason): throw SubmissionRejection("\(field): content_base64 is not standard base64: it \(reason)")
                }
            case (let path?, nil):
                guard let directory else {
                    throw SubmissionRejection("\(field): a path is read from the outbox only; give content_base64 (carteiro send --attach FILE does)")
                }
                bytes = try Self.read(path, inside: directory, field: field, limit: limit - total)
            default:
                throw SubmissionRejection("\(field) needs either `path` (a file inside the outbox) or `content_base64`, not both")
            }
            total += bytes.count
            guard total <= limit else {
                throw SubmissionRejection("the attachments hold more than max_attachment_size (\(limit / 1024) KB) of mailbox \"\(mailbox.name)\"")
            }
            files.append(MessageBuilder.Attachment(name: name, contentType: type, bytes: bytes))
        }
        return files
    }

    /// A file by a relative path inside `directory`, opened beneath it with no symbolic link
    /// anywhere on the way and checked on the opened descriptor (a plain file with one name):
    /// the desk's group writes into the outbox, and a path checked first and opened later could
    /// be swapped for a link to the service's own files in between.
    static func read(_ path: String, inside directory: String, field: String, limit: Int) throws -> [UInt8] {
        switch RegularFile.read(beneath: directory, path: path, limit: max(limit, 0)) {
        case .success(let bytes): return bytes
        case .failure(.outside):
            throw SubmissionRejection(path.hasPrefix("/") ? "\(field): \(path) is an absolute path: give it relative to the outbox (where the desk puts the file)"
                                                          : "\(field): \(path) leads outside the outbox (by `..` or a symbolic link): give a path inside it")
        case .failure(.missing): throw SubmissionRejection("\(field): \(path) does not exist in the outbox")
        case .failure(.tooLarge): throw SubmissionRejection("the attachments hold more than max_attachment_size of the mailbox (\(path))")
        case .failure(let problem): throw SubmissionRejection("\(field): \(path) \(problem)")
        }
    }

    /// type/subtype of RFC 2045 tokens.
    static func isMIMEType(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, text.utf8.count <= 127 else { return false }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&^_.+-".unicodeScalars)
        return parts.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy(allowed.contains) }
    }

    /// Whether the dotted `name` leads to a value in `context`.
    static func has(_ name: String, in context: [String: Any]) -> Bool {
        var current: Any = context
        for part in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard let dictionary = current as? [String: Any], let next = dictionary[String(part)] else { return false }
            current = next
        }
        return true
    }

    /// The variables a template renders outside every section (`{{name}}`, `{{{name}}}`,
    /// `{{&name}}`), each once. Inside a section a name may refer to the section's item, and a
    /// section on a name is its explicit default, so those are not counted. A template that
    /// changes its delimiters is not looked into.
    static func unguardedVariables(_ template: String) -> [String] {
        var names: [String] = []
        var depth = 0
        var rest = template[...]
        while let open = rest.range(of: "{{") {
            var after = rest[open.upperBound...]
            let triple = after.hasPrefix("{")
            if triple { after = after.dropFirst() }
            guard let close = after.range(of: triple ? "}}}" : "}}") else { break }
            let tag = after[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            rest = after[close.upperBound...]
            guard let sigil = tag.first else { continue }
            switch sigil {
            case "#", "^", "$", "<": depth += 1
            case "/": depth = max(depth - 1, 0)
            case "=": return names
            case "!", ">", "%": continue
            default:
                let name = (sigil == "&" ? String(tag.dropFirst()) : tag).trimmingCharacters(in: .whitespaces)
                if depth == 0, !name.isEmpty, name != ".", !names.contains(name) { names.append(name) }
            }
        }
        return names
    }

    /// The deepest nesting of `{{#…}}`, `{{^…}}`, `{{$…}}` and `{{<…}}` sections, counted
    /// without the engine (whose parser recurses per level), whatever the delimiters' balance.
    static func sectionDepth(_ template: String) -> Int {
        let bytes = Array(template.utf8)
        var depth = 0, deepest = 0, i = 0
        while i + 2 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") && bytes[i + 1] == UInt8(ascii: "{") {
                var k = i + 2
                while k < bytes.count, bytes[k] == UInt8(ascii: "{") || bytes[k] == 32 { k += 1 }
                if k < bytes.count {
                    switch bytes[k] {
                    case UInt8(ascii: "#"), UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "<"):
                        depth += 1
                        deepest = max(deepest, depth)
                    case UInt8(ascii: "/"):
                        depth = max(depth - 1, 0)
                    default: break
                    }
                }
                i = k
                continue
            }
            i += 1
        }
        return deepest
    }

    static func hasTag(_ template: String) -> Bool {
        var previous: UInt8 = 0
        for byte in template.utf8 {
            if byte == UInt8(ascii: "{") && previous == UInt8(ascii: "{") { return true }
            previous = byte
        }
        return false
    }

    /// "Wed, 25 Nov 2026 12:00:00 +0000" (RFC 5322 §3.3), in UTC.
    static func rfc5322Date(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970)
        let iso = MailDate.iso8601(seconds) // 2026-11-25T12:00:00Z
        let parts = iso.split(whereSeparator: { $0 == "-" || $0 == "T" || $0 == "Z" })
        guard parts.count >= 4, let month = Int(parts[1]), (1...12).contains(month) else { return iso }
        let days = Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((days % 7) + 7) % 7]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(weekday), \(parts[2]) \(months[month - 1]) \(parts[0]) \(parts[3]) +0000"
    }
}

/// A template ready to render: Mustache, or constant text that needs no engine.
struct CompiledTemplate: Sendable {
    let template: MustacheTemplate?
    let constant: String

    init(template: MustacheTemplate) {
        self.template = template
        constant = ""
    }

    init(constant: String) {
        template = nil
        self.constant = constant
    }

    func render(_ context: [String: Any]) -> String {
        template?.render(context) ?? constant
    }
}

/// Step templates are the same for every submission: each is parsed once.
final class TemplateCache: Sendable {
    private let entries = Mutex<[String: CompiledTemplate]>([:])
    func get(_ key: String) -> CompiledTemplate? { entries.withLock { $0[key] } }
    func set(_ key: String, _ value: CompiledTemplate) {
        entries.withLock { entries in
            if entries.count > 1000 { entries.removeAll() }
            entries[key] = value
        }
    }
}
