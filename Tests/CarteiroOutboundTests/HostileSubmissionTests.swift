import Foundation
import Testing
import CarteiroConfig
import CarteiroEvents
import CarteiroMail
@testable import CarteiroOutbound

/// Submissions and step templates written to hurt: a submission's texts are data, never a
/// template; a step template the engine would recurse on without end is refused with a reason.
struct HostileSubmissionTests {
    static func resolver(stepSubject: String = "Plain", stepBody: String = "b") throws -> SubmissionResolver {
        let text = """
        [daemon]
        system_outbound = "desk-out"
        [mailbox.desk-out]
        type = "outbound"
        server = "smtp.desk.example"
        sender = "Service Desk <desk@desk.example>"
        [user.ana]
        email = "ana@desk.example"
        [workflow.w.step.s]
        to_users = ["ana"]
        subject = '''\(stepSubject)'''
        body = '''\(stepBody)'''
        """
        let outcome = ConfigurationFile.load(text: text, file: "h.conf")
        let configuration = try #require(outcome.configuration, "\(outcome.errors)")
        return SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: Array("k".utf8)), hostname: "desk.example")
    }

    @Test func aSubmissionsTextIsSentAsWrittenBracesAndAll() throws {
        let resolver = try Self.resolver()
        let message = try #require(try resolver.resolve(Submission(to: ["a@b.example"], subject: "Use {{name}} here",
                                                                   text: "Template-looking text: {{#x}}{{y}}{{/x}} and {{{z}}}"), queueID: "q1").get().first)
        let parsed = MailMessage.parse(message.bytes)
        #expect(parsed.subject == "Use {{name}} here")
        #expect(parsed.text?.contains("Template-looking text: {{#x}}{{y}}{{/x}} and {{{z}}}") == true, "\(parsed.text ?? "")")
    }

    @Test func fiveThousandNestedSectionsInASubmissionAreJustText() throws {
        let resolver = try Self.resolver()
        let nested = String(repeating: "{{#a}}", count: 5000) + String(repeating: "{{/a}}", count: 5000)
        let message = try #require(try resolver.resolve(Submission(to: ["a@b.example"], subject: "s", text: nested), queueID: "q1").get().first)
        #expect(MailMessage.parse(message.bytes).text?.hasPrefix("{{#a}}{{#a}}") == true)
    }

    @Test func aStepTemplateNestedTooDeeplyIsRefusedWithAReason() throws {
        let nested = String(repeating: "{{#a}}", count: 5000) + "x" + String(repeating: "{{/a}}", count: 5000)
        let resolver = try Self.resolver(stepBody: nested)
        guard case .failure(let rejection) = resolver.resolve(Submission(workflow: "w", step: "s"), queueID: "q1") else {
            Issue.record("a 5000-deep template was accepted")
            return
        }
        #expect(rejection.description == "the step's text template nests sections deeper than 16 levels")
        // A reasonable depth still works.
        let fine = try Self.resolver(stepBody: "{{#a}}{{#b}}{{c}}{{/b}}{{/a}}ok")
        #expect(throws: Never.self) { try fine.resolve(Submission(workflow: "w", step: "s"), queueID: "q1").get() }
    }

    @Test func aBrokenStepTemplateIsRefusedWithTheEnginesReason() throws {
        let resolver = try Self.resolver(stepSubject: "{{#broken}}")
        guard case .failure(let rejection) = resolver.resolve(Submission(workflow: "w", step: "s"), queueID: "q1") else {
            Issue.record("a broken template was accepted")
            return
        }
        #expect(rejection.description.hasPrefix("the subject template is not valid Mustache"))
    }

    @Test(arguments: ["{{#a}}{{/a}}", "{{ #a}}{{ /a }}", "{{{x}}}", "}}{{/a}}{{/a}}{{#b}}", "{{", "{{#", String(repeating: "{", count: 100)])
    func sectionDepthNeverTraps(_ template: String) {
        #expect(SubmissionResolver.sectionDepth(template) <= 1)
    }
}

/// Addresses and header values that could be written in a way the envelope or the 998-octet
/// line limit does not agree with.
struct HeaderSafetyTests {
    @Test(arguments: ["\"a:b\"@x.example", "a\\b@x.example", "a:b@x.example", "a@[127.0.0.1]", "a..b@x.example", ".a@x.example",
                      "a@x_y.example", "a@x.example\u{2028}", "a\u{0}@x.example", "a@x..example"])
    func addressesThatCannotBeWrittenConsistentlyAreRefused(_ text: String) {
        #expect(!MailAddress.isValidAddress(text))
    }

    @Test(arguments: ["ana@x.example", "ana.souza+desk@x.example", "o'neil@x.example", "joão@açúcar.example", "a!#$%&*=?^_`{|}~-b@x.example"])
    func dotAtomAddressesAreAccepted(_ text: String) {
        #expect(MailAddress.isValidAddress(text))
    }

    @Test func noHeaderLineExceeds998Octets() throws {
        var builder = MessageBuilder(boundary: "b")
        let word = String(repeating: "x", count: 3000)
        try builder.addText("Subject", "a \(word) b")
        try builder.addAddresses("To", [ParsedAddress(name: word, address: "a@x.example")])
        #expect(throws: MessageBuilder.Refusal.self) { try builder.addRaw("In-Reply-To", "<\(word)@x.example>") }
        builder.text = "t"
        let text = String(decoding: builder.build(), as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 998) }
        let parsed = MailMessage.parse(builder.build())
        #expect(parsed.subject == "a \(word) b")
        #expect(parsed.to.first?.name == word)
    }
}
