import Foundation
import Testing
import CarteiroEvents
import CarteiroTesting

/// Retention runs while messages come in: what is old and unreferenced goes; nothing an event
/// points at is removed (a shared attachment reused by a new message included).
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct RetentionTests {
    static func age(_ path: String, days: Int) {
        let past = Date().addingTimeInterval(-Double(days) * 86_400)
        try? FileManager.default.setAttributes([.modificationDate: past], ofItemAtPath: path)
    }

    @Test func cleaningWhileIngestingRemovesOnlyWhatIsNotNeeded() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let user = uniqueName("ret")
        try lab.addUser(user)
        // Old things: a raw message and a given-up message nobody needs, and the file of an
        // attachment that the new messages will carry again.
        let shared = Array("the shared attachment of \(user)\n".utf8)
        let sharedSHA = Digest.hex(Digest.sha256(shared))
        let sharedPath = state + "/attachments/\(sharedSHA.prefix(2))/\(sharedSHA)"
        try FileManager.default.createDirectory(atPath: state + "/raw/old", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state + "/attachments/\(sharedSHA.prefix(2))", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state + "/queue/failed", withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: state + "/raw/old/1.eml"))
        try Data(shared).write(to: URL(fileURLWithPath: sharedPath))
        try Data("{}".utf8).write(to: URL(fileURLWithPath: state + "/queue/failed/old.json"))
        for path in [state + "/raw/old/1.eml", sharedPath, state + "/queue/failed/old.json"] { Self.age(path, days: 100) }

        var text = daemonConfiguration(state: state, mailboxes: inboundMailbox("ret", provider: "imaps", port: lab.imapsPort, user: user, lab: lab),
                                       contractMailboxes: ["ret"])
        text = text.replacingOccurrences(of: "poll_interval = \"1s\"", with: "poll_interval = \"1s\"\nkeep_raw = \"1d\"\nkeep_attachments = \"1d\"\nkeep_failed = \"1d\"")
        let config = try directory.write("carteiro.conf", text)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log",
                                       environment: ["CARTEIRO_RETENTION_EVERY": "1"])
        defer { _ = daemon.terminate() }
        let total = 40
        for n in 1...total {
            let unique = "unique \(n) of \(user)"
            try lab.deliver("""
                From: c@example.com\r\nTo: \(user)@lab\r\nSubject: Retention \(n)\r\nMessage-ID: <ret-\(user)-\(n)@lab.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n--b\r\nContent-Type: text/plain; name=shared.txt\r\nContent-Disposition: attachment; filename=shared.txt\r\n\r\n\(String(decoding: shared, as: UTF8.self))--b\r\nContent-Type: text/plain; name=u.txt\r\nContent-Disposition: attachment; filename=u.txt\r\n\r\n\(unique)\r\n--b--\r\n
                """, to: user)
            if n % 8 == 0 { Thread.sleep(forTimeInterval: 0.7) }
        }
        #expect(daemon.waitForEvents(timeout: .seconds(40)) { $0.count >= total }, "\(daemon.log.suffix(2000))")
        Thread.sleep(forTimeInterval: 2.5) // more clean-ups after the last message
        // Every waiting event's raw message and attachments are there, with their content.
        for event in daemon.events() {
            let raw = try #require(event["raw"] as? String)
            #expect(FileManager.default.fileExists(atPath: state + "/" + raw), "\(raw) was removed")
            for attachment in (event["message"] as? [String: Any])?["attachments"] as? [[String: Any]] ?? [] {
                let path = try #require(attachment["path"] as? String)
                let bytes = try #require(FileManager.default.contents(atPath: state + "/" + path), "\(path) was removed")
                #expect(Digest.hex(Digest.sha256([UInt8](bytes))) == attachment["sha256"] as? String)
            }
        }
        // The old, unreferenced things are gone.
        #expect(!FileManager.default.fileExists(atPath: state + "/raw/old/1.eml"))
        #expect(!FileManager.default.fileExists(atPath: state + "/queue/failed/old.json"))
        #expect(daemon.log.contains("retention"), "\(daemon.log.suffix(1500))")
        // Once the desk has taken the events, their files age out too (here: made old by hand).
        for event in daemon.events() {
            if let raw = event["raw"] as? String { Self.age(state + "/" + raw, days: 100) }
        }
        Self.age(sharedPath, days: 100)
        for name in (try FileManager.default.contentsOfDirectory(atPath: state + "/events")) where name.hasSuffix(".json") {
            try FileManager.default.removeItem(atPath: state + "/events/" + name)
        }
        #expect(waitUntil(timeout: .seconds(10)) { !FileManager.default.fileExists(atPath: sharedPath) }, "\(daemon.log.suffix(1500))")
    }

    @Test func theDedupeLedgerIsCompactedAndStillRecognisesWhatTheServerHolds() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("ledger")
        try lab.addUser(user)
        for n in 1...6 { try lab.deliver(MailLab.message(id: "ledger-\(user)-\(n)@lab.test", subject: "Ledger \(n)"), to: user) }
        let text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("lg", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "import_existing = \"all\""),
                                       contractMailboxes: ["lg"])
        let config = try directory.write("carteiro.conf", text)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "lg"]))?.status ?? 1) == 0 }
        let environment = ProcessInfo.processInfo.environment.merging(["CARTEIRO_LEDGER_SLACK": "0"]) { $1 }
        #expect(try runCarteiro(["run", "--once", "--config", config], environment: environment).status == 0)
        let keys = directory.path + "/state/mailboxes/lg/message-keys"
        func lines() -> [String] { ((try? String(contentsOfFile: keys, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        #expect(lines().count == 6)
        // Three messages leave the server (a person deleted them): their keys can go.
        let maildir = lab.directory + "/mail/\(user)/Maildir"
        var removed = 0
        for folder in ["cur", "new"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: maildir + "/" + folder) where removed < 3 {
                let content = try String(contentsOfFile: maildir + "/" + folder + "/" + name, encoding: .utf8)
                if content.contains("ledger-\(user)-1@") || content.contains("ledger-\(user)-2@") || content.contains("ledger-\(user)-3@") {
                    try FileManager.default.removeItem(atPath: maildir + "/" + folder + "/" + name)
                    removed += 1
                }
            }
        }
        #expect(removed == 3)
        let compacting = try runCarteiro(["run", "--once", "--config", config], environment: environment)
        #expect(compacting.status == 0, "\(compacting.stderr)")
        #expect(compacting.stderr.contains("dedupe ledger compacted"), "\(compacting.stderr)")
        #expect(lines().count == 3)
        #expect(lines().allSatisfy { $0.contains("ledger-\(user)-4@") || $0.contains("ledger-\(user)-5@") || $0.contains("ledger-\(user)-6@") }, "\(lines())")
        // What the server still holds is still recognised: a new UIDVALIDITY makes every message
        // look new, and none becomes an event twice.
        let eventsBefore = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/state/events").filter { $0.hasSuffix(".json") }.count
        try lab.resetUIDValidity(of: user)
        let again = try runCarteiro(["run", "--once", "--config", config], environment: environment)
        #expect(again.status == 0, "\(again.stderr)")
        let eventsAfter = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/state/events").filter { $0.hasSuffix(".json") }.count
        #expect(eventsAfter == eventsBefore, "\(again.stderr)")
    }

    @Test func aPOP3LedgerIsCompactedToo() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("popledger")
        try lab.addUser(user)
        for n in 1...4 { try lab.deliver(MailLab.message(id: "popledger-\(user)-\(n)@lab.test", subject: "Ledger \(n)"), to: user) }
        let text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("pl", provider: "pops", port: lab.pop3sPort, user: user, lab: lab, extra: "import_existing = \"all\""),
                                       contractMailboxes: ["pl"])
        let config = try directory.write("carteiro.conf", text)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "pl"]))?.status ?? 1) == 0 }
        let environment = ProcessInfo.processInfo.environment.merging(["CARTEIRO_LEDGER_SLACK": "0"]) { $1 }
        #expect(try runCarteiro(["run", "--once", "--config", config], environment: environment).status == 0)
        let keys = directory.path + "/state/mailboxes/pl/message-keys"
        func lines() -> [String] { ((try? String(contentsOfFile: keys, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        #expect(lines().count == 4)
        let maildir = lab.directory + "/mail/\(user)/Maildir"
        for folder in ["cur", "new"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: maildir + "/" + folder) {
                let content = try String(contentsOfFile: maildir + "/" + folder + "/" + name, encoding: .utf8)
                if content.contains("popledger-\(user)-1@") || content.contains("popledger-\(user)-2@") {
                    try FileManager.default.removeItem(atPath: maildir + "/" + folder + "/" + name)
                }
            }
        }
        let compacting = try runCarteiro(["run", "--once", "--config", config], environment: environment)
        #expect(compacting.status == 0, "\(compacting.stderr)")
        #expect(compacting.stderr.contains("dedupe ledger compacted"), "\(compacting.stderr)")
        #expect(lines().count == 2 && lines().allSatisfy { $0.contains("popledger-\(user)-3@") || $0.contains("popledger-\(user)-4@") }, "\(lines())")
    }
}
