import Foundation
import Testing
import CarteiroTesting

/// IMAP IDLE against the lab's Dovecot: new mail becomes an event without waiting for the poll
/// interval (an hour here); a connection the server ends is made again; a SIGKILL while idling
/// loses and doubles nothing; `idle = false` only polls.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct IdleTests {
    func configuration(_ directory: TemporaryDirectory, user: String, lab: MailLab, extra: String = "") throws -> String {
        try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1h",
            mailboxes: inboundMailbox("idle", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: extra + "\nidle_refresh = \"30s\""),
            contractMailboxes: ["idle"]))
    }

    func waitForIdle(_ daemon: DaemonProcess) -> Bool {
        waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=idle") }
    }

    @Test func mailArrivingWhileIdlingBecomesAnEventAtOnce() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("idle")
        try lab.addUser(user)
        let config = try configuration(directory, user: user, lab: lab)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitForIdle(daemon), "\(daemon.log.suffix(2000))")
        for n in 1...3 {
            try lab.deliver(MailLab.message(id: "idle-\(user)-\(n)@lab.test", subject: "Idle \(n)"), to: user)
            #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.contains { $0.messageID == "<idle-\(user)-\(n)@lab.test>" } }, "\(daemon.log.suffix(2000))")
        }
        // The server ends the IDLE connection: it is made again, and mail still comes at once.
        let kick = Process()
        kick.executableURL = URL(fileURLWithPath: "/usr/bin/doveadm")
        kick.arguments = ["-c", lab.directory + "/dovecot/dovecot.conf", "kick", user]
        kick.standardOutput = FileHandle.nullDevice
        kick.standardError = FileHandle.nullDevice
        try kick.run()
        kick.waitUntilExit()
        #expect(waitUntil(timeout: .seconds(20)) { daemon.log.contains("idle connection lost; reconnecting") }, "\(daemon.log.suffix(2000))")
        Thread.sleep(forTimeInterval: 6)
        try lab.deliver(MailLab.message(id: "idle-\(user)-after@lab.test", subject: "After the kick"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0.messageID == "<idle-\(user)-after@lab.test>" } }, "\(daemon.log.suffix(2500))")
        #expect(daemon.events().count == 4)
    }

    @Test func aSIGKILLWhileIdlingLosesAndDoublesNothing() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("idlekill")
        try lab.addUser(user)
        let config = try configuration(directory, user: user, lab: lab)
        var daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        #expect(waitForIdle(daemon), "\(daemon.log.suffix(2000))")
        try lab.deliver(MailLab.message(id: "idlekill-\(user)-1@lab.test", subject: "One"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.count == 1 }, "\(daemon.log.suffix(2000))")
        daemon.kill()
        try lab.deliver(MailLab.message(id: "idlekill-\(user)-2@lab.test", subject: "Two"), to: user)
        daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon-2.log")
        defer { _ = daemon.terminate() }
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 2 }, "\(daemon.log.suffix(2000))")
        Thread.sleep(forTimeInterval: 2)
        let ids = daemon.events().compactMap(\.messageID).sorted()
        #expect(ids == ["<idlekill-\(user)-1@lab.test>", "<idlekill-\(user)-2@lab.test>"])
    }

    @Test func idleFalseOnlyPolls() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("noidle")
        try lab.addUser(user)
        let config = try configuration(directory, user: user, lab: lab, extra: "idle = false")
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        Thread.sleep(forTimeInterval: 6) // the first poll is done; the next one is an hour away
        try lab.deliver(MailLab.message(id: "noidle-\(user)@lab.test", subject: "Waits"), to: user)
        #expect(!daemon.waitForEvents(timeout: .seconds(4)) { !$0.isEmpty })
        #expect(!daemon.log.contains("idle mailbox=idle"))
    }
}
