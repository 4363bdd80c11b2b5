import Foundation
import Testing
import CarteiroTesting

/// A polled IMAP mailbox keeps its authenticated session between polls: one login for many
/// polls; when the server ends the session between two polls (here `doveadm kick`, what a
/// server restart does to its clients), the next poll connects again without failing.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct KeptConnectionTests {
    @Test func aPolledMailboxLogsInOnceAndSurvivesTheServerEndingTheSession() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("kept")
        try lab.addUser(user)
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1s",
            mailboxes: inboundMailbox("kept", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "idle = false"),
            contractMailboxes: ["kept"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        try lab.deliver(MailLab.message(id: "kept-\(user)-1@lab.test", subject: "One"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 1 }, "\(daemon.log.suffix(2000))")
        // Several polls later, still the one login (a first one may have failed while Dovecot
        // learnt of the new user: counted are the successful ones).
        Thread.sleep(forTimeInterval: 4)
        #expect(lab.imapLogins(of: user) == 1)
        // The server ends the session between polls: the next poll logs in again, and fails not.
        try lab.kick(user)
        try lab.deliver(MailLab.message(id: "kept-\(user)-2@lab.test", subject: "Two"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 2 }, "\(daemon.log.suffix(2000))")
        Thread.sleep(forTimeInterval: 3)
        #expect(lab.imapLogins(of: user) == 2)
        #expect(!daemon.log.contains("poll failed"), "\(daemon.log.suffix(2000))")
        #expect(daemon.events().compactMap(\.messageID).sorted() == ["<kept-\(user)-1@lab.test>", "<kept-\(user)-2@lab.test>"])
    }
}
