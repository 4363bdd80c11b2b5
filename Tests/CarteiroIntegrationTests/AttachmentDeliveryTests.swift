import Foundation
import Testing
import CarteiroTesting

/// Attachments end to end: a desk's submission naming a file in the outbox, and `carteiro send
/// --attach`, both delivered by the lab's SMTP server as multipart/mixed with their names.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct AttachmentDeliveryTests {
    @Test func outboxFilesAndSendAttachReachTheServer() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let token = uniqueName("att")
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token))
        // A file the desk put beside its submission, and one `send` reads itself.
        try FileManager.default.createDirectory(atPath: state + "/outbox/files", withIntermediateDirectories: true)
        try Data("line 1\nline 2\n".utf8).write(to: URL(fileURLWithPath: state + "/outbox/files/report-\(token).csv"))
        try submit(#"{"mailbox": "audit-out", "to": ["desk.\#(token)@lab.test"], "subject": "Report \#(token)", "text": "Attached.", "reply_to": "suporte@acme.example", "attachments": [{"name": "relatório.csv", "type": "text/csv", "path": "files/report-\#(token).csv"}]}"#,
                   name: "report-\(token)", state: state)
        let local = try directory.write("invoice.pdf", "%PDF-1.4 fake")
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", "cli.\(token)@lab.test", "--subject", "Invoice \(token)", "--text", "See attached.", "--attach", local])
        #expect(sent.status == 0, "\(sent.stderr)")
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let received = ReceivedMail.all(in: lab, containing: token)
        let report = try #require(received.first { $0.message.contains("Report \(token)") }, "\(run.stderr)")
        #expect(report.message.contains("Content-Type: multipart/mixed"))
        #expect(report.message.contains("Content-Type: text/csv; name*=utf-8''relat%C3%B3rio.csv"))
        #expect(report.message.contains("Reply-To: suporte@acme.example"))
        #expect(report.message.contains(Data("line 1\nline 2\n".utf8).base64EncodedString()))
        let invoice = try #require(received.first { $0.message.contains("Invoice \(token)") })
        #expect(invoice.message.contains("Content-Type: application/pdf; name=\"invoice.pdf\""))
        #expect(invoice.message.contains(Data("%PDF-1.4 fake".utf8).base64EncodedString()))
    }
}
