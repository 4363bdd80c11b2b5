import Foundation
import Testing
import CarteiroTesting

/// SIGHUP: a broken file leaves the running configuration in place; a good one adds mailboxes.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct ReloadTests {
    @Test func aBrokenReloadKeepsRunningAndAGoodOneAddsAMailbox() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let first = uniqueName("reload-a"), second = uniqueName("reload-b")
        try lab.addUser(first)
        try lab.addUser(second)
        let state = directory.path + "/state"
        let one = daemonConfiguration(state: state, mailboxes: inboundMailbox("a", provider: "imaps", port: lab.imapsPort, user: first, lab: lab),
                                      contractMailboxes: ["a"])
        let config = try directory.write("carteiro.conf", one)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        try lab.deliver(MailLab.message(id: "\(first)-1@lab.test", subject: "antes"), to: first)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 1 }, "\(daemon.log)")

        // A broken file: every error logged with its position, the old mailbox still polled.
        try directory.write("carteiro.conf", one + "\n[mailbox.b]\ntype = \"inbound\"\nprovider = \"imapz\"\n")
        kill(daemon.process.processIdentifier, SIGHUP)
        try lab.deliver(MailLab.message(id: "\(first)-2@lab.test", subject: "durante"), to: first)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 2 }, "\(daemon.log)")
        #expect(daemon.log.contains("reload failed error=\"\(config):"))
        #expect(daemon.log.contains("did you mean \\\"imaps\\\"?"))

        // A good file: the new mailbox is polled, the old one goes on.
        let two = daemonConfiguration(state: state,
                                      mailboxes: inboundMailbox("a", provider: "imaps", port: lab.imapsPort, user: first, lab: lab)
                                        + inboundMailbox("b", provider: "pops", port: lab.pop3sPort, user: second, lab: lab),
                                      contractMailboxes: ["a", "b"])
        try directory.write("carteiro.conf", two)
        kill(daemon.process.processIdentifier, SIGHUP)
        try lab.deliver(MailLab.message(id: "\(second)-1@lab.test", subject: "nova caixa"), to: second)
        try lab.deliver(MailLab.message(id: "\(first)-3@lab.test", subject: "depois"), to: first)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 4 }, "\(daemon.log)")
        #expect(daemon.log.contains("reloaded inbound_mailboxes=2"))
        #expect(Set(daemon.events().compactMap(\.messageID)).count == 4)
        // The unchanged mailbox was not restarted: its running count goes on from before the reloads.
        var status = try runCarteiro(["status", "--config", config])
        for _ in 0..<30 where !status.stdout.contains("mailbox a: ok") || !status.stdout.contains("3 handed on") {
            Thread.sleep(forTimeInterval: 0.1)
            status = try runCarteiro(["status", "--config", config])
        }
        #expect(status.stdout.contains("3 handed on by this run"), "\(status.stdout)")
        #expect(!daemon.log.contains("polling started mailboxes=2"), "a reload restarted the inbound service")
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct ReloadUnderLoadTests {
    /// Many reloads while 200 messages come in and 100 notifications go out: none is lost and
    /// none comes twice.
    @Test func reloadsLoseAndDuplicateNothing() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("hup")
        let token = uniqueName("hupout")
        try lab.addUser(user)
        for n in 1...200 { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "HUP \(n)"), to: user) }
        let state = directory.path + "/state"
        var text = outboundConfiguration(lab: lab, state: state, token: token)
        text = text.replacingOccurrences(of: "hostname = \"desk.lab.test\"", with: "hostname = \"desk.lab.test\"\npoll_interval = \"1s\"")
        text += "\n" + inboundMailbox("hup", provider: "imaps", port: lab.imapsPort, user: user, lab: lab,
                                      extra: "import_existing = \"all\"\nafter_fetch = \"move:Processed\"")
        text = text.replacingOccurrences(of: "[contract.beta]", with: "[contract.beta]\ninbound_mailboxes = [\"hup\"]")
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        for n in 1...100 {
            try submit("{\"mailbox\": \"audit-out\", \"subject\": \"n\(n)\", \"text\": \"t\", \"to\": [\"r\(n).\(token)@lab.test\"]}", name: "r\(n)", state: state)
        }
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        for _ in 0..<10 {
            Thread.sleep(forTimeInterval: 0.15)
            kill(daemon.process.processIdentifier, SIGHUP)
        }
        let done = daemon.waitForEvents(timeout: .seconds(60)) { events in
            events.count >= 200 && ReceivedMail.all(in: lab, containing: token).count >= 100
        }
        Thread.sleep(forTimeInterval: 2)
        #expect(done, "\(daemon.log.suffix(2000))")
        let ids = daemon.events().compactMap(\.messageID)
        #expect(ids.count == 200, "events: \(ids.count)")
        #expect(Set(ids).count == 200)
        let sent = ReceivedMail.all(in: lab, containing: token).flatMap(\.recipients)
        #expect(sent.count == 100, "sent: \(sent.count)")
        #expect(Set(sent).count == 100)
        #expect(daemon.log.components(separatedBy: "reloaded").count - 1 >= 1)
        #expect(daemon.process.isRunning)
    }
}
