import Foundation
import Testing
import CarteiroEvents
import CarteiroTesting

/// `carteiro run` against the lab's real Dovecot: every provider, after_fetch, isolation of a
/// failing mailbox, and exactly-once hand-over across SIGKILLs.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct DaemonInboundTests {
    @Test func everyProviderHandsOnEachMessageOnce() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let kinds: [(provider: String, port: Int, afterFetch: String)] = [
            ("imaps", lab.imapsPort, "move:Processed"), ("imap", lab.imapPort, "seen"), ("imaps", lab.imapsPort, "keep"),
            ("pops", lab.pop3sPort, "delete"), ("pop", lab.pop3Port, "keep"),
        ]
        var mailboxes = "", names: [String] = [], users: [String] = []
        for (index, kind) in kinds.enumerated() {
            let user = uniqueName("d\(index)")
            try lab.addUser(user)
            for n in 1...4 { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "Pedido \(n) para \(user)"), to: user) }
            let name = "m\(index)-\(kind.provider)"
            mailboxes += inboundMailbox(name, provider: kind.provider, port: kind.port, user: user, lab: lab,
                                        extra: "after_fetch = \"\(kind.afterFetch)\"\nimport_existing = \"all\"")
            names.append(name)
            users.append(user)
        }
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: mailboxes, contractMailboxes: names))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        let complete = daemon.waitForEvents(timeout: .seconds(30)) { $0.count >= 20 }
        // One more poll round, to see that nothing comes twice.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(daemon.terminate() == 0)
        #expect(complete, "\(daemon.log)")
        let events = daemon.events()
        #expect(events.count == 20, "\(daemon.log)")
        #expect(Set(events.compactMap(\.messageID)).count == 20)
        for name in names {
            #expect(events.filter { $0["mailbox"] as? String == name }.count == 4, "\(name)")
        }
        #expect(events.allSatisfy { $0["contract"] as? String == "lab" && $0["type"] as? String == "request.new" })
        // Each raw message is kept where the event says.
        for event in events {
            let raw = try #require(event["raw"] as? String)
            #expect(FileManager.default.fileExists(atPath: directory.path + "/state/" + raw))
        }
        // after_fetch, applied on the server only after the hand-over.
        #expect(lab.count(users[0]).messages == 0)
        #expect(lab.count(users[0], folder: "Processed").messages == 4)
        #expect(lab.count(users[1]) == (4, 4))
        #expect(lab.count(users[2]) == (4, 0), "keep must not even set \\Seen")
        #expect(lab.count(users[3]).messages == 0)
        #expect(lab.count(users[4]).messages == 4)
        #expect(daemon.log.contains("<5>stopped"))
        // Later polls start where the last one ended: nothing is downloaded again (a message
        // fetched twice would show as a skipped duplicate).
        #expect(daemon.log.range(of: "duplicates=[1-9]", options: .regularExpression) == nil, "\(daemon.log)")
    }

    @Test func aDeadAndASilentMailboxDelayNobody() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let silent = try ScriptedServer(greeting: nil)
        defer { silent.stop() }
        let user = uniqueName("iso")
        try lab.addUser(user)
        var mailboxes = inboundMailbox("healthy", provider: "imaps", port: lab.imapsPort, user: user, lab: lab)
        mailboxes += inboundMailbox("dead", provider: "imaps", port: 1, user: user, lab: lab)
        mailboxes += inboundMailbox("silent", provider: "imaps", port: silent.port, user: user, lab: lab, extra: "timeout = \"8s\"")
            .replacingOccurrences(of: "timeout = \"10s\"\n", with: "")
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "2s", maxParallel: 2,
                                                                             mailboxes: mailboxes, contractMailboxes: ["healthy", "dead", "silent"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        // Let the daemon settle into its failures, then a message arrives for the healthy mailbox.
        Thread.sleep(forTimeInterval: 3)
        try lab.deliver(MailLab.message(id: "\(user)-late@lab.test", subject: "Chegou agora"), to: user)
        let started = ContinuousClock.now
        let arrived = daemon.waitForEvents(timeout: .seconds(20)) { events in events.contains { $0.messageID == "<\(user)-late@lab.test>" } }
        let waited = ContinuousClock.now - started
        #expect(arrived, "\(daemon.log)")
        // Within one poll interval and a little slack: the silent server holds one slot for 8 s.
        #expect(waited < .seconds(6), "took \(waited)")
        #expect(daemon.log.contains("poll failed mailbox=dead"))
        #expect(daemon.events().allSatisfy { $0["mailbox"] as? String == "healthy" })
    }

    @Test func killedAtRandomMomentsEveryMessageBecomesExactlyOneEvent() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let imapUser = uniqueName("kill-imap"), popUser = uniqueName("kill-pop")
        try lab.addUser(imapUser)
        try lab.addUser(popUser)
        let perMailbox = 150
        for n in 1...perMailbox {
            try lab.deliver(MailLab.message(id: "\(imapUser)-\(n)@lab.test", subject: "IMAP \(n)"), to: imapUser)
            try lab.deliver(MailLab.message(id: "\(popUser)-\(n)@lab.test", subject: "POP \(n)"), to: popUser)
        }
        var mailboxes = inboundMailbox("kill-imap", provider: "imaps", port: lab.imapsPort, user: imapUser, lab: lab,
                                       extra: "after_fetch = \"move:Processed\"\nimport_existing = \"all\"")
        mailboxes += inboundMailbox("kill-pop", provider: "pops", port: lab.pop3sPort, user: popUser, lab: lab, extra: "after_fetch = \"delete\"")
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1s",
                                                                             mailboxes: mailboxes, contractMailboxes: ["kill-imap", "kill-pop"]))
        let spool = directory.path + "/state/events"
        var generator = SeededGenerator()
        print("inbound crash test: seed \(generator.seed) (CARTEIRO_TEST_SEED repeats it)")
        var kills = 0
        var landedDuringTheWork = 0
        let handedOn = { ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }.count
            + ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("taken-") }.count }
        for _ in 0..<12 {
            let before = handedOn()
            let daemon = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
            // However slowly the machine starts it, the kill comes once the hand-over has begun
            // (or soon after the start, once everything is handed on).
            // (Watched every 2 ms: the whole hand-over takes a tenth of a second.)
            let deadline = ContinuousClock.now + .seconds(20)
            while handedOn() <= before && before < 2 * perMailbox && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.002) }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.02, using: &generator))
            daemon.kill()
            kills += 1
            // Some messages handed on and some not: this kill interrupted the work.
            if (1..<(2 * perMailbox)).contains(handedOn()) { landedDuringTheWork += 1 }
            // The desk takes some events away meanwhile, as it would.
            let taken = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }
            for name in taken.prefix(10) {
                let data = try Data(contentsOf: URL(fileURLWithPath: spool + "/" + name))
                try data.write(to: URL(fileURLWithPath: directory.path + "/taken-" + name))
                try FileManager.default.removeItem(atPath: spool + "/" + name)
            }
        }
        let daemon = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
        let takenCount = { ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasPrefix("taken-") }.count }
        let finished = daemon.waitForEvents(timeout: .seconds(60)) { $0.count + takenCount() >= 2 * perMailbox }
        Thread.sleep(forTimeInterval: 2.5)
        #expect(daemon.terminate() == 0)
        #expect(finished, "\(daemon.log)")

        var ids: [String] = daemon.events().compactMap(\.messageID)
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []) where name.hasPrefix("taken-") {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + name))
            if let event = try JSONSerialization.jsonObject(with: data) as? [String: Any], let id = event.messageID { ids.append(id) }
        }
        let expected = Set((1...perMailbox).flatMap { ["<\(imapUser)-\($0)@lab.test>", "<\(popUser)-\($0)@lab.test>"] })
        print("inbound crash test: \(landedDuringTheWork) of \(kills) kills landed while messages were being handed on")
        #expect(landedDuringTheWork >= 1, "no kill interrupted the work (seed \(generator.seed))")
        #expect(ids.count == 2 * perMailbox, "\(kills) kills: \(ids.count) events for \(2 * perMailbox) messages (seed \(generator.seed))")
        #expect(Set(ids) == expected)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool + "/.pending")) ?? []).isEmpty)
        // And the server ends as after_fetch says, with nothing moved or deleted twice.
        #expect(lab.count(imapUser).messages == 0)
        #expect(lab.count(imapUser, folder: "Processed").messages == perMailbox)
        #expect(lab.count(popUser).messages == 0)
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct MailboxAlertTests {
    @Test func failingThenRecoveredWithStatusInBetween() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("alert")
        // The password file exists, the account does not yet: every login is rejected.
        try FileManager.default.createDirectory(atPath: lab.directory + "/secrets", withIntermediateDirectories: true)
        try Data((MailLab.password(of: user) + "\n").utf8).write(to: URL(fileURLWithPath: lab.passwordFile(of: user)))
        let mailboxes = inboundMailbox("flaky", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "alert_after = \"0s\"")
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: mailboxes, contractMailboxes: ["flaky"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        let failing = daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0["type"] as? String == "mailbox.failing" } }
        #expect(failing, "\(daemon.log)")
        let event = try #require(daemon.events().first { $0["type"] as? String == "mailbox.failing" })
        #expect(event["mailbox"] as? String == "flaky")
        #expect(event["contract"] as? String == "lab")
        #expect((event["error"] as? String)?.contains("rejected the login") == true)

        // The status file is rewritten at most once a second.
        var status = try runCarteiro(["status", "--config", config])
        for _ in 0..<30 where !status.stdout.contains("FAILING") {
            Thread.sleep(forTimeInterval: 0.1)
            status = try runCarteiro(["status", "--config", config])
        }
        #expect(status.status == 0, "\(status.stdout)\(status.stderr)")
        #expect(status.stdout.contains("mailbox flaky: FAILING"))
        #expect(status.stdout.contains("last error:"))

        try lab.addUser(user)
        try lab.deliver(MailLab.message(id: "\(user)-1@lab.test", subject: "Depois da falha"), to: user)
        let recovered = daemon.waitForEvents(timeout: .seconds(20)) { events in
            events.contains { $0["type"] as? String == "mailbox.recovered" } && events.contains { $0.messageID == "<\(user)-1@lab.test>" }
        }
        #expect(recovered, "\(daemon.log)")
        #expect(daemon.events().filter { $0["type"] as? String == "mailbox.failing" }.count == 1, "one alert per failure episode")
    }

    @Test func statusSaysWhenTheDaemonIsNotRunning() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("c.conf", "[daemon]\nsystem_outbound = \"o\"\nstate_dir = \"\(directory.path)/state\"\n[mailbox.o]\ntype = \"outbound\"\nserver = \"h\"\nsender = \"a@b.c\"\n")
        let result = try runCarteiro(["status", "--config", config])
        #expect(result.status == 3)
        #expect(result.stdout.hasPrefix("carteiro is not running"))
    }
}

/// A state directory that refuses a batch half-way through an ingest (here: a file where an
/// attachment directory must go, as a full or broken disk would refuse it) loses nothing: the
/// poll fails with the reason, the batches before it stay handed on, the server keeps every
/// message not yet durable, and once the disk is fixed each message becomes exactly one event.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct StorageFailureTests {
    @Test func aRefusedBatchLosesNothingAndIsTakenLater() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("disk")
        try lab.addUser(user)
        let total = 90
        let poisoned = 60
        let attachment = "conteúdo do anexo \(user)"
        let digest = Digest.hex(Digest.sha256(Array(attachment.utf8)))
        for n in 1...total {
            if n == poisoned {
                try lab.deliver("""
                Message-ID: <\(user)-\(n)@lab.test>\r\nFrom: cliente@acme.example\r\nTo: suporte@acme.example\r\nSubject: Pedido \(n)\r\n\
                MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nVeja o anexo.\r\n\
                --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a.bin"\r\n\
                Content-Transfer-Encoding: base64\r\n\r\n\(Data(attachment.utf8).base64EncodedString())\r\n--b--\r\n
                """, to: user)
            } else {
                try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "Pedido \(n)"), to: user)
            }
        }
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(
            state: state,
            mailboxes: inboundMailbox("disk", provider: "imaps", port: lab.imapsPort, user: user, lab: lab,
                                      extra: "after_fetch = \"delete\"\nimport_existing = \"all\""),
            contractMailboxes: ["disk"]))
        // The obstacle: a plain file where the poisoned message's attachment directory goes.
        try FileManager.default.createDirectory(atPath: state + "/attachments", withIntermediateDirectories: true)
        let obstacle = state + "/attachments/" + digest.prefix(2)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: obstacle))

        // Dovecot takes up a new lab user when it next reads its passwd file: wait for that,
        // since `run --once` does not retry a rejected login.
        let loginWorks = waitUntil(timeout: .seconds(10)) {
            (try? runCarteiro(["test-mailbox", "disk", "--config", config]).status) == 0
        }
        #expect(loginWorks)
        let failed = try runCarteiro(["run", "--once", "--config", config])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("state directory"), "\(failed.stderr)")
        let spool = state + "/events"
        func events() -> [[String: Any]] {
            ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }.compactMap {
                try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spool + "/" + $0))) as? [String: Any]
            }
        }
        let before = events()
        // The batches before the poisoned one are handed on; nothing from its batch or after.
        #expect(!before.isEmpty && before.count < poisoned, "\(before.count) events")
        #expect(lab.count(user).messages >= total - before.count, "the server keeps what is not durable")
        // What was handed on before the failure is said, since the failed poll cannot count it.
        #expect(failed.stderr.contains("messages handed on before the poll failed mailbox=disk contract=lab count=\(before.count)"), "\(failed.stderr)")

        try FileManager.default.removeItem(atPath: obstacle)
        let fixed = try runCarteiro(["run", "--once", "--config", config])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let after = events()
        #expect(after.count == total)
        let ids = after.compactMap { ($0["message"] as? [String: Any])?["message_id"] as? String }
        #expect(Set(ids) == Set((1...total).map { "<\(user)-\($0)@lab.test>" }))
        #expect(FileManager.default.fileExists(atPath: state + "/attachments/" + digest.prefix(2) + "/" + digest))
        #expect(lab.count(user).messages == 0, "after_fetch applied once everything is durable")
    }
}
