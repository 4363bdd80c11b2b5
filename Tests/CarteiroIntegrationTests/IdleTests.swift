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

    /// A lab user of its own (named from `prefix`) and the daemon watching its inbox in IDLE; the
    /// directory goes with them (released, it is removed).
    func idleDaemon(_ prefix: String, extra: String = "") throws -> (lab: MailLab, user: String, daemon: DaemonProcess, directory: TemporaryDirectory) {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName(prefix)
        try lab.addUser(user)
        let config = try configuration(directory, user: user, lab: lab, extra: extra)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        return (lab, user, daemon, directory)
    }

    func waitForIdle(_ daemon: DaemonProcess) -> Bool {
        waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=idle") }
    }

    @Test func mailArrivingWhileIdlingBecomesAnEventAtOnce() throws {
        let (lab, user, daemon, directory) = try idleDaemon("idle")
        defer { withExtendedLifetime(directory) { _ = daemon.terminate() } }
        #expect(waitForIdle(daemon), "\(daemon.log.suffix(2000))")
        for n in 1...3 {
            try lab.deliver(MailLab.message(id: "idle-\(user)-\(n)@lab.test", subject: "Idle \(n)"), to: user)
            #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.contains { $0.messageID == "<idle-\(user)-\(n)@lab.test>" } }, "\(daemon.log.suffix(2000))")
        }
        // The server ends the IDLE connection: it is made again, and mail still comes at once.
        // (A first login may already have failed, while Dovecot learnt of the new user.)
        func count(_ text: String) -> Int { daemon.log.components(separatedBy: text).count - 1 }
        let lostBefore = count("idle connection lost; reconnecting"), idleBefore = count("idle mailbox=idle")
        try lab.kick(user)
        #expect(waitUntil(timeout: .seconds(20)) { count("idle connection lost; reconnecting") > lostBefore }, "\(daemon.log.suffix(2000))")
        #expect(waitUntil(timeout: .seconds(30)) { count("idle mailbox=idle") > idleBefore }, "\(daemon.log.suffix(2000))")
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
        let (lab, user, daemon, directory) = try idleDaemon("noidle", extra: "idle = false")
        defer { withExtendedLifetime(directory) { _ = daemon.terminate() } }
        Thread.sleep(forTimeInterval: 6) // the first poll is done; the next one is an hour away
        try lab.deliver(MailLab.message(id: "noidle-\(user)@lab.test", subject: "Waits"), to: user)
        #expect(!daemon.waitForEvents(timeout: .seconds(4)) { !$0.isEmpty })
        #expect(!daemon.log.contains("idle mailbox=idle"))
    }

    @Test func aNewUIDValidityWhileIdlingDoublesNothing() throws {
        let (lab, user, daemon, directory) = try idleDaemon("idleval")
        defer { withExtendedLifetime(directory) { _ = daemon.terminate() } }
        #expect(waitForIdle(daemon), "\(daemon.log.suffix(2000))")
        try lab.deliver(MailLab.message(id: "idleval-\(user)-1@lab.test", subject: "Before"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.count == 1 }, "\(daemon.log.suffix(2000))")
        try lab.resetUIDValidity(of: user)
        try lab.deliver(MailLab.message(id: "idleval-\(user)-2@lab.test", subject: "After"), to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(40)) { $0.count >= 2 }, "\(daemon.log.suffix(2500))")
        Thread.sleep(forTimeInterval: 3)
        #expect(daemon.events().compactMap(\.messageID).sorted() == ["<idleval-\(user)-1@lab.test>", "<idleval-\(user)-2@lab.test>"])
    }

    @Test func reloadsAddChangeAndRemoveIdleMailboxes() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let first = uniqueName("idlea"), second = uniqueName("idleb")
        try lab.addUser(first)
        try lab.addUser(second)
        func write(_ mailboxes: String, _ names: [String]) throws -> String {
            try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1h", mailboxes: mailboxes, contractMailboxes: names))
        }
        let a = inboundMailbox("a", provider: "imaps", port: lab.imapsPort, user: first, lab: lab)
        let b = inboundMailbox("b", provider: "imaps", port: lab.imapsPort, user: second, lab: lab)
        let config = try write(a, ["a"])
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=a") }, "\(daemon.log.suffix(2000))")
        // Added: b idles too, and its mail arrives at once.
        _ = try write(a + b, ["a", "b"])
        kill(daemon.process.processIdentifier, SIGHUP)
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=b") }, "\(daemon.log.suffix(2000))")
        Thread.sleep(forTimeInterval: 6)
        try lab.deliver(MailLab.message(id: "reload-\(second)@lab.test", subject: "B"), to: second)
        #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.contains { $0.messageID == "<reload-\(second)@lab.test>" } }, "\(daemon.log.suffix(2000))")
        // Changed to idle = false, and removed: their IDLE connections end.
        _ = try write(inboundMailbox("a", provider: "imaps", port: lab.imapsPort, user: first, lab: lab, extra: "idle = false"), ["a"])
        kill(daemon.process.processIdentifier, SIGHUP)
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle ended mailbox=a") && daemon.log.contains("idle ended mailbox=b") }, "\(daemon.log.suffix(2000))")
    }

    /// A server that accepts IDLE and then stops answering (DONE gets no reply): the watcher
    /// notices at the next refresh, within `timeout`, and connects again.
    @Test func aServerThatStopsAnsweringIsNoticedAndReconnected() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1 IDLE] silent soon\r\n") { line in
            let words = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard words.count >= 2 else { return nil } // DONE: never answered
            let tag = words[0]
            switch words[1].uppercased() {
            case "CAPABILITY": return "* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n\(tag) OK done\r\n"
            case "IDLE": return "+ idling\r\n"
            case "SELECT", "EXAMINE": return "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 1] n\r\n\(tag) OK [READ-WRITE] done\r\n"
            case "UID": return "* SEARCH\r\n\(tag) OK done\r\n"
            default: return "\(tag) OK done\r\n"
            }
        }
        defer { server.stop() }
        let user = uniqueName("silent")
        try lab.addUser(user) // for its password file only
        let mailbox = inboundMailbox("silent", provider: "imap", port: server.port, user: user, lab: lab, extra: "starttls = false\nidle_refresh = \"30s\"")
            .replacingOccurrences(of: "timeout = \"10s\"", with: "timeout = \"2s\"")
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1h", mailboxes: mailbox, contractMailboxes: ["silent"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=silent") }, "\(daemon.log.suffix(2000))")
        // The refresh after 30 s meets silence: lost within the 2 s timeout, then made again after 5 s.
        #expect(waitUntil(timeout: .seconds(60)) { daemon.log.contains("idle connection lost; reconnecting mailbox=silent") }, "\(daemon.log.suffix(2000))")
        #expect(daemon.log.contains("did not answer within 2s"), "\(daemon.log.suffix(2000))")
        #expect(waitUntil(timeout: .seconds(20)) { daemon.log.components(separatedBy: "idle mailbox=silent").count - 1 >= 2 }, "\(daemon.log.suffix(2000))")
    }

    /// The polls of a mailbox in IDLE (each new message, and the safety net every poll_interval)
    /// run on its IDLE connection, out of IDLE and back: no login once the first message arrived.
    /// (Counted from there: a first login may fail while Dovecot learns of the new user, and the
    /// first poll may then have logged in on a connection of its own.)
    @Test func pollsOfAnIdleMailboxUseItsIdleConnection() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("idleone")
        try lab.addUser(user)
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "2s",
            mailboxes: inboundMailbox("idle", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "after_fetch = \"seen\""),
            contractMailboxes: ["idle"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitForIdle(daemon), "\(daemon.log.suffix(2000))")
        var logins = 0, lost = 0
        for n in 1...3 {
            try lab.deliver(MailLab.message(id: "one-\(user)-\(n)@lab.test", subject: "One \(n)"), to: user)
            #expect(daemon.waitForEvents(timeout: .seconds(10)) { $0.count == n }, "\(daemon.log.suffix(2000))")
            if n == 1 {
                logins = lab.imapLogins(of: user)
                lost = daemon.log.components(separatedBy: "idle connection lost").count
            }
        }
        Thread.sleep(forTimeInterval: 5) // safety-net polls, every 2 s
        #expect(lab.imapLogins(of: user) == logins)
        #expect(!daemon.log.contains("poll failed"), "\(daemon.log.suffix(2000))")
        #expect(daemon.log.components(separatedBy: "idle connection lost").count == lost, "\(daemon.log.suffix(2000))")
        #expect(daemon.events().count == 3)
    }
}
