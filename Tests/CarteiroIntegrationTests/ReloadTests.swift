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
    }
}
