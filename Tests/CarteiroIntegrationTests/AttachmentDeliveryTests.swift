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

    @Test func aSendingLimitHoldsMessagesBackAcrossRestartsWithoutFailingThem() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let token = uniqueName("rate")
        var text = outboundConfiguration(lab: lab, state: state, token: token)
        text = text.replacingOccurrences(of: "sender = \"Audit <audit@desk.example>\"", with: "sender = \"Audit <audit@desk.example>\"\nmax_messages_per_minute = 2")
        let config = try directory.write("carteiro.conf", text)
        for n in 1...5 {
            let sent = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", "r\(n).\(token)@lab.test", "--subject", "Rate \(n)", "--text", "t"])
            #expect(sent.status == 0, "\(sent.stderr)")
        }
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.stderr.contains("sending limit reached; messages wait"), "\(first.stderr)")
        #expect(ReceivedMail.all(in: lab, containing: token).count == 2)
        // A restart within the minute sends nothing more: the count is on disk.
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(ReceivedMail.all(in: lab, containing: token).count == 2)
        // The rest wait, queued, no attempt counted, nothing failed.
        let list = try runCarteiro(["queue", "list", "--config", config])
        #expect(list.stdout.components(separatedBy: "audit-out  0 attempts").count - 1 == 3, "\(list.stdout)")
        #expect(!list.stdout.contains("failed"))
        // `status` says so in text as in JSON.
        let status = try runCarteiro(["status", "--config", config])
        #expect(status.stdout.contains("lane audit-out: 3 queued (0 deferred); HELD BACK by its sending limit until "), "\(status.stdout)")
        let json = try runCarteiro(["status", "--json", "--config", config])
        let lane = try #require(((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["lanes"] as? [[String: Any]])?
            .first { $0["name"] as? String == "audit-out" })
        #expect(lane["throttled_until"] is Int && lane["failed"] as? Int == 0, "\(lane)")
    }

    @Test func eachDeliveryAttemptIsLoggedAndRunOnceSaysWhenOneFailed() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let token = uniqueName("attempt")
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token))
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", "ok.\(token)@lab.test", "--to", "550-no.\(token)@lab.test",
                                    "--subject", "Attempt \(token)", "--text", "t"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 1, "a refused recipient makes run --once fail: \(run.stderr)")
        let attempts = run.stderr.split(separator: "\n").filter { $0.contains("delivery attempt") }
        #expect(attempts.contains { $0.contains("recipient=ok.\(token)@lab.test") && $0.contains("code=250") }, "\(run.stderr)")
        #expect(attempts.contains { $0.contains("recipient=550-no.\(token)@lab.test") && $0.contains("code=550") }, "\(run.stderr)")
        // Nothing left to send: the next run is clean.
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
    }
}
