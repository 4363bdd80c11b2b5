import Foundation
import Testing
import CarteiroConfig
import CarteiroEvents
import CarteiroMail
@testable import CarteiroOutbound

/// Resolution by the seed's rules, message construction, and a round trip through Carteiro's
/// own parser and Python's `email` package.
struct SubmissionResolverTests {
    static let text = """
    [daemon]
    system_outbound = "desk-out"
    [mailbox.desk-out]
    type = "outbound"
    server = "smtp.desk.example"
    sender = "Service Desk <desk@desk.example>"
    [mailbox.acme-out]
    type = "outbound"
    server = "smtp.acme.example"
    sender = "ACME Atendimento <suporte@acme.example>"
    [mailbox.audit-out]
    max_attachment_size = "1KB"
    type = "outbound"
    server = "smtp.desk.example"
    sender = "audit@desk.example"
    [mailbox.acme-in]
    type = "inbound"
    provider = "imaps"
    server = "imap.acme.example"
    user = "u"
    password = "p"
    [contract.acme]
    name = "ACME Corp"
    outbound_mailbox = "acme-out"
    inbound_mailboxes = ["acme-in"]
    [contract.beta]
    name = "Beta"
    [user.ana]
    name = "Ana Souza"
    email = "ana@desk.example"
    [user.joao]
    name = "João Araújo"
    email = "joao@desk.example"
    [group.desk]
    members = ["joao", "ana"]
    [workflow.approval.step.notify]
    mailbox = "contract"
    to_users = ["ana"]
    to_groups = ["desk"]
    subject = "Aprovação necessária: {{request.subject}}"
    body = \"\"\"
    Olá {{recipient.name}},
    a requisição {{request.id}} do contrato {{contract.name}} aguarda aprovação <agora>.
    \"\"\"
    html = "<p>Olá {{recipient.name}}, requisição {{request.id}}: {{request.subject}}</p>"
    [workflow.approval.step.audit]
    mailbox = "specific"
    specific_mailbox = "audit-out"
    to_users = ["ana"]
    subject = "Audit {{request.id}}"
    body = "b"
    [workflow.approval.step.plain]
    to_users = ["ana"]
    subject = "Plain"
    body = "b"
    """

    let configuration: Configuration
    let resolver: SubmissionResolver

    init() throws {
        let outcome = ConfigurationFile.load(text: Self.text, file: "o.conf")
        configuration = try #require(outcome.configuration, "\(outcome.errors)")
        resolver = SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: Array("k".utf8)), hostname: "desk.example")
    }

    func resolve(_ submission: Submission) throws -> [OutboundMessage] {
        try resolver.resolve(submission, queueID: "q1").get()
    }

    func rejection(_ submission: Submission) -> String? {
        if case .failure(let rejection) = resolver.resolve(submission, queueID: "q1") { return rejection.description }
        return nil
    }

    @Test func everyResolutionBranch() throws {
        #expect(try resolve(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42", vars: ["request.subject": "VPN"])).allSatisfy { $0.mailbox == "acme-out" })
        #expect(try resolve(Submission(workflow: "approval", step: "notify", contract: "beta", request: "42", vars: ["request.subject": "VPN"])).first?.resolution.reason == .contractFallback)
        #expect(try resolve(Submission(workflow: "approval", step: "notify", request: "42", vars: ["request.subject": "VPN"])).first?.mailbox == "desk-out")
        #expect(try resolve(Submission(workflow: "approval", step: "audit", contract: "acme", request: "42")).first?.mailbox == "audit-out")
        #expect(try resolve(Submission(workflow: "approval", step: "plain", contract: "acme", request: "42")).first?.mailbox == "desk-out")
        #expect(try resolve(Submission(mailbox: "audit-out", to: ["x@y.example"], subject: "s", text: "t")).first?.resolution.reason == .explicit)
        #expect(try resolve(Submission(to: ["x@y.example"], subject: "s", text: "t")).first?.mailbox == "desk-out")
    }

    @Test func oneMessagePerRecipientWithoutDuplicates() throws {
        let messages = try resolve(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42", to: ["ANA@desk.example", "extra@cliente.example"], vars: ["request.subject": "VPN"]))
        #expect(messages.map(\.recipients) == [["ana@desk.example"], ["joao@desk.example"], ["extra@cliente.example"]])
        #expect(Set(messages.map(\.messageID)).count == 3)
        // One message to everyone has no single recipient to greet: the template says whom.
        #expect(rejection(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42", vars: ["request.subject": "VPN"], oneMessage: true))?
            .contains("uses {{recipient.name}}, which the submission does not provide (recipient.* is there only when each recipient gets a message of their own") == true)
        let together = try resolve(Submission(workflow: "approval", step: "audit", contract: "acme", request: "42", to: ["a@x.example", "b@x.example"], oneMessage: true))
        #expect(together.count == 1)
        #expect(together[0].recipients == ["ana@desk.example", "a@x.example", "b@x.example"])
    }

    @Test func unknownKeysAreRefusedWithTheNearestKnownOne() {
        func decoded(_ json: String) -> String? {
            if case .failure(let rejection) = Submission.decode(Data(json.utf8)) { return rejection.description }
            return nil
        }
        #expect(decoded(#"{"mailbox": "desk-out", "to": ["a@b.c"], "subject": "s", "text": "t", "one_mesage": true}"#)?
            .hasPrefix("unknown key `one_mesage`; did you mean `one_message`?") == true)
        #expect(decoded(#"{"mailbox": "desk-out", "attachmnts": []}"#)?.hasPrefix("unknown key `attachmnts`") == true)
        #expect(decoded(#"["not", "an", "object"]"#) == "the submission must be a JSON object ({…})")
        #expect(decoded(#"{"vars": {"items": ["a", "b"]}}"#) == "`vars.items` is a list; template variables are text, numbers or objects")
    }

    @Test func varsNestAndAreFlattened() throws {
        let submission = try Submission.decode(Data(#"{"workflow": "approval", "step": "notify", "request": "42", "vars": {"request": {"subject": "VPN", "priority": 2, "urgent": true}, "contract.note": "x"}}"#.utf8)).get()
        #expect(submission.vars == ["request.subject": "VPN", "request.priority": "2", "request.urgent": "true", "contract.note": "x"])
        let messages = try resolve(submission)
        let text = String(decoding: try #require(messages.first).bytes, as: UTF8.self)
        #expect(text.contains("Aprova=C3=A7=C3=A3o necess=C3=A1ria: VPN") || text.contains("VPN"))
    }

    @Test func aMissingTemplateVariableIsARejectionNamingIt() {
        #expect(rejection(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42"))
            == "the step's subject template uses {{request.subject}}, which the submission does not provide; give it in `vars` (\"vars\": {\"request\": {\"subject\": \"…\"}}), or give the template a default with a section")
        // A section is an explicit default: nothing is required inside it.
        #expect(SubmissionResolver.unguardedVariables("Hi {{name}}{{#items}}{{title}}{{/items}}{{^x}}none{{/x}} {{{raw}}} {{& amp}} {{! note}}") == ["name", "raw", "amp"])
        #expect(SubmissionResolver.unguardedVariables("{{=<% %>=}} <% hidden %>").isEmpty)
        // A submission's own texts are not templates: braces there are text.
        #expect((try? resolve(Submission(mailbox: "desk-out", to: ["x@y.example"], subject: "{{unknown}}", text: "{{also}}"))) != nil)
    }

    @Test func aContractsSignatureFollowsItsNotifications() throws {
        let text = """
        [daemon]
        system_outbound = "out"
        [mailbox.out]
        type = "outbound"
        server = "h"
        sender = "d@desk.example"
        [contract.acme]
        name = "ACME Corp"
        signature = "--\\n{{contract.name}} desk"
        signature_html = "<p>{{contract.name}}</p>"
        [contract.beta]
        """
        let configuration = try #require(ConfigurationFile.load(text: text, file: "s.conf", environment: [:]).configuration)
        let resolver = SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: Array("k".utf8)), hostname: "desk.example")
        let acme = try resolver.resolve(Submission(contract: "acme", to: ["x@y.example"], subject: "s", text: "Hello.", html: "<p>Hello.</p>"), queueID: "q").get()
        let parsed = MailMessage.parse(try #require(acme.first).bytes)
        #expect(parsed.text == "Hello.\n\n--\nACME Corp desk")
        #expect(parsed.html == "<p>Hello.</p><p>ACME Corp</p>")
        let beta = try resolver.resolve(Submission(contract: "beta", to: ["x@y.example"], subject: "s", text: "Hello."), queueID: "q").get()
        #expect(MailMessage.parse(try #require(beta.first).bytes).text == "Hello.")
    }

    @Test func replyToIsAHeader() throws {
        let messages = try resolve(Submission(mailbox: "desk-out", to: ["x@y.example"], subject: "s", text: "t", replyTo: ["Suporte <suporte@acme.example>"]))
        let text = String(decoding: try #require(messages.first).bytes, as: UTF8.self)
        #expect(text.contains("Reply-To: Suporte <suporte@acme.example>\r\n"))
        #expect(rejection(Submission(mailbox: "desk-out", to: ["x@y.example"], subject: "s", text: "t", replyTo: ["not an address"])) == "`reply_to`: \"not an address\" is not an e-mail address")
        let single = try Submission.decode(Data(#"{"mailbox": "desk-out", "to": ["x@y.example"], "subject": "s", "text": "t", "reply_to": "a@b.example"}"#.utf8)).get()
        #expect(single.replyTo == ["a@b.example"])
    }

    @Test func rejectionsSayWhy() {
        #expect(rejection(Submission(workflow: "aproval", step: "notify")) == "there is no workflow \"aproval\"; did you mean \"approval\"?")
        #expect(rejection(Submission(workflow: "approval", step: "notfy")) == "workflow \"approval\" has no step \"notfy\"; did you mean \"notify\"?")
        #expect(rejection(Submission(workflow: "approval", step: "notify", contract: "acm")) == "there is no contract \"acm\"; did you mean \"acme\"?")
        #expect(rejection(Submission(mailbox: "acme-in", to: ["a@b.example"], subject: "s", text: "t")) == "mailbox \"acme-in\" is an inbound mailbox")
        #expect(rejection(Submission(subject: "s", text: "t")) == "no recipient is left: the step names none, and the submission adds no `to`, `cc` or `bcc`")
        #expect(rejection(Submission(to: ["a@b.example"], subject: "s\r\nBcc: victim@x.example", text: "t"))?.contains("header injection") == true)
        #expect(rejection(Submission(to: ["a@b.example\r\nBcc: v@x.example"], subject: "s", text: "t"))?.contains("header injection") == true)
        #expect(rejection(Submission(to: ["a@b.example"], text: "t")) == "there is no subject: give `subject`, or a step that has one")
    }

    @Test func theMessageAsSpecFourDescribesIt() throws {
        let message = try #require(try resolve(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42",
                                                          vars: ["request.subject": "Impressora não imprime"])).first)
        let text = String(decoding: message.bytes, as: UTF8.self)
        #expect(text.contains("\r\nAuto-Submitted: auto-generated\r\n"))
        #expect(text.contains("\r\nX-Auto-Response-Suppress: All\r\n"))
        #expect(text.contains("Content-Type: multipart/alternative"))
        #expect(!message.bytes.contains(where: { $0 >= 0x80 }), "8-bit bytes in a 7-bit message")
        for line in text.components(separatedBy: "\r\n") { #expect(line.utf8.count < 998) }
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "a bare LF")
        // Carteiro's own parser reads it back.
        let parsed = MailMessage.parse(message.bytes)
        #expect(parsed.subject == "[REQ#42] Aprovação necessária: Impressora não imprime")
        #expect(parsed.from == ParsedAddress(name: "ACME Atendimento", address: "suporte@acme.example"))
        #expect(parsed.to == [ParsedAddress(name: "Ana Souza", address: "ana@desk.example")])
        #expect(parsed.text == "Olá Ana Souza,\na requisição 42 do contrato ACME Corp aguarda aprovação <agora>.")
        #expect(parsed.html == "<p>Olá Ana Souza, requisição 42: Impressora não imprime</p>")
        // Its Message-ID threads back to request 42.
        #expect(RequestThreading(secret: Array("k".utf8)).request(fromMessageID: try #require(parsed.messageID)) == "42")
    }

    @Test func pythonsEmailPackageReadsTheSame() throws {
        let message = try #require(try resolve(Submission(workflow: "approval", step: "notify", contract: "acme", request: "42",
                                                          vars: ["request.subject": "Impressora não imprime — 3º andar"])).last)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("carteiro-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("m.eml")
        try Data(message.bytes).write(to: file)
        let script = """
        import email, email.policy, json, sys
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
        print(json.dumps({"subject": str(m["subject"]), "from": str(m["from"]), "to": str(m["to"]),
                          "text": m.get_body(("plain",)).get_content(), "html": m.get_body(("html",)).get_content()}))
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, file.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let python = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        let parsed = MailMessage.parse(message.bytes)
        #expect(python["subject"] == parsed.subject)
        #expect(python["subject"] == "[REQ#42] Aprovação necessária: Impressora não imprime — 3º andar")
        #expect(python["from"] == "ACME Atendimento <suporte@acme.example>")
        #expect(python["to"] == "João Araújo <joao@desk.example>")
        #expect(python["text"]?.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines) == parsed.text)
        #expect(python["html"]?.trimmingCharacters(in: .whitespacesAndNewlines) == parsed.html)
    }

    @Test func attachmentsMakeMultipartMixedReadBackByBothParsers() throws {
        let pdf: [UInt8] = Array("%PDF-1.4 relatório\n".utf8) + (0..<300).map { UInt8($0 % 256) }
        let submission = Submission(mailbox: "desk-out", to: ["x@y.example"], subject: "Relatório", text: "Segue.", html: "<p>Segue.</p>",
                                    attachments: [SubmissionAttachment(name: "relatório de março.pdf", type: "application/pdf", contentBase64: Data(pdf).base64EncodedString()),
                                                  SubmissionAttachment(name: "notes.txt", contentBase64: Data("hello".utf8).base64EncodedString())])
        let message = try #require(try resolve(submission).first)
        let text = String(decoding: message.bytes, as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/mixed"))
        #expect(text.contains("filename*=utf-8''relat%C3%B3rio%20de%20mar%C3%A7o.pdf"))
        #expect(!message.bytes.contains(where: { $0 >= 0x80 }))
        for line in text.components(separatedBy: "\r\n") { #expect(line.utf8.count < 998) }
        let parsed = MailMessage.parse(message.bytes)
        #expect(parsed.text == "Segue.")
        #expect(parsed.html == "<p>Segue.</p>")
        #expect(parsed.attachments.map(\.filename) == ["relatório de março.pdf", "notes.txt"])
        #expect(parsed.attachments.first?.data == pdf)
        #expect(parsed.attachments.last?.contentType == "application/octet-stream")
        // Python's email package agrees.
        let directory = try TemporaryFolder()
        let file = directory.url.appendingPathComponent("m.eml")
        try Data(message.bytes).write(to: file)
        let script = """
        import email, email.policy, json, sys
        m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
        print(json.dumps([[a.get_filename(), a.get_content_type(), len(a.get_content())] for a in m.iter_attachments()]))
        """
        let python = try runPython(script, file.path)
        #expect(python == "[[\"relat\\u00f3rio de mar\\u00e7o.pdf\", \"application/pdf\", \(pdf.count)], [\"notes.txt\", \"application/octet-stream\", 5]]")
    }

    @Test func attachmentsAreCheckedBeforeAnythingIsSent() throws {
        let folder = try TemporaryFolder()
        let outbox = folder.url.appendingPathComponent("outbox").path
        try FileManager.default.createDirectory(atPath: outbox + "/files", withIntermediateDirectories: true)
        try Data("inside".utf8).write(to: URL(fileURLWithPath: outbox + "/files/a.txt"))
        try Data("secret".utf8).write(to: folder.url.appendingPathComponent("threading.key"))
        try FileManager.default.createSymbolicLink(atPath: outbox + "/files/link", withDestinationPath: folder.url.appendingPathComponent("threading.key").path)
        func rejection(_ attachment: SubmissionAttachment, directory: String? = nil) -> String? {
            let submission = Submission(mailbox: "desk-out", to: ["x@y.example"], subject: "s", text: "t", attachments: [attachment])
            if case .failure(let failure) = resolver.resolve(submission, queueID: "q", attachmentsDirectory: directory) { return failure.description }
            return nil
        }
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "files/a.txt"), directory: outbox) == nil)
        // Links are never followed, wherever they lead, in the last component or on the way; a
        // hard link is refused too (it may be another name of a file the desk cannot read).
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "files/link"), directory: outbox) == "`attachments[0]`: files/link is a symbolic link (never followed here)")
        try FileManager.default.createSymbolicLink(atPath: outbox + "/inner", withDestinationPath: "files/a.txt")
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "inner"), directory: outbox) == "`attachments[0]`: inner is a symbolic link (never followed here)")
        try FileManager.default.createSymbolicLink(atPath: outbox + "/up", withDestinationPath: folder.url.path)
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "up/threading.key"), directory: outbox) == "`attachments[0]`: up/threading.key is a symbolic link (never followed here)")
        #expect(link(outbox + "/files/a.txt", outbox + "/files/hard") == 0)
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "files/hard"), directory: outbox) == "`attachments[0]`: files/hard has 2 names (a hard link; never read here)")
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "files/none"), directory: outbox) == "`attachments[0]`: files/none does not exist in the outbox")
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "../threading.key"), directory: outbox) == "`attachments[0]`: ../threading.key leads outside the outbox (by `..` or a symbolic link): give a path inside it")
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "/etc/passwd"), directory: outbox) == "`attachments[0]`: /etc/passwd is an absolute path: give it relative to the outbox (where the desk puts the file)")
        #expect(rejection(SubmissionAttachment(name: "a.txt", path: "files/a.txt")) == "`attachments[0]`: a path is read from the outbox only; give content_base64 (carteiro send --attach FILE does)")
        #expect(rejection(SubmissionAttachment(name: "../x", contentBase64: "aGk=")) == "`attachments[0]`: the name must be a file name (no path, no control character, at most 255 bytes)")
        #expect(rejection(SubmissionAttachment(name: "x", type: "pdf\r\nBcc: all@x", contentBase64: "aGk="))?.contains("is not a MIME type") == true)
        #expect(rejection(SubmissionAttachment(name: "x", contentBase64: "%%%not base64"))?.contains("not base64") == true)
        #expect(rejection(SubmissionAttachment(name: "x", path: "files/a.txt", contentBase64: "aGk="), directory: outbox) == "`attachments[0]` needs either `path` (a file inside the outbox) or `content_base64`, not both")
        // The mailbox's limit (max_attachment_size, 1 KB for audit-out in this configuration).
        let big = Data(repeating: 65, count: 4096).base64EncodedString()
        let submission = Submission(mailbox: "audit-out", to: ["x@y.example"], subject: "s", text: "t", attachments: [SubmissionAttachment(name: "big", contentBase64: big)])
        if case .failure(let failure) = resolver.resolve(submission, queueID: "q") {
            #expect(failure.description.contains("max_attachment_size"))
        } else {
            Issue.record("a 4 KB attachment passed a 1 KB limit")
        }
        if case .failure(let failure) = Submission.decode(Data(#"{"mailbox": "x", "attachments": [{"name": "a", "contnt_base64": "aGk="}]}"#.utf8)) {
            #expect(failure.description == "`attachments[0]`: unknown key `contnt_base64`; did you mean `content_base64`?")
        } else {
            Issue.record("a misspelt attachment key was accepted")
        }
    }

    @Test func quotedPrintableKeepsLinesShortAndDotsSafe() {
        let long = String(repeating: "ação ", count: 100) + "\n.\nfim  "
        let encoded = String(decoding: MessageBuilder.quotedPrintable(long), as: UTF8.self)
        #expect(encoded.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 76 })
        #expect(encoded.contains("\r\n=2E\r\n"))
        #expect(encoded.hasSuffix("fim =20"))
        #expect(TransferEncoding.quotedPrintable(Array(encoded.utf8)) == Array(long.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }
}

/// A temporary folder for one test, removed with it.
final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("carteiro-outbound-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs a Python script with one argument; its standard output, trimmed.
func runPython(_ script: String, _ argument: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", script, argument]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
