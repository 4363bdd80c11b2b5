import Foundation
import Testing
import CarteiroTesting

/// What a first poll takes (import_existing), what a new UIDVALIDITY does, and a POP3 server
/// without UIDL.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct ImportAndValidityTests {
    @Test func importExistingAllUnseenNone() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        var mailboxes = "", users: [String: String] = [:]
        for mode in ["all", "unseen", "none"] {
            let user = uniqueName("imp-\(mode)")
            users[mode] = user
            try lab.addUser(user)
            try lab.deliverSeen(MailLab.message(id: "\(user)-old-seen@lab.test", subject: "lida"), to: user)
            try lab.deliver(MailLab.message(id: "\(user)-old-unseen-1@lab.test", subject: "não lida 1"), to: user)
            try lab.deliver(MailLab.message(id: "\(user)-old-unseen-2@lab.test", subject: "não lida 2"), to: user)
            mailboxes += inboundMailbox("imp-\(mode)", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "import_existing = \"\(mode)\"")
        }
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: mailboxes,
                                                                             contractMailboxes: ["imp-all", "imp-unseen", "imp-none"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        // The first polls are done once every mailbox has a state file.
        let polled = daemon.waitForEvents(timeout: .seconds(15)) { _ in
            ["all", "unseen", "none"].allSatisfy { FileManager.default.fileExists(atPath: directory.path + "/state/mailboxes/imp-\($0)/state.json") }
        }
        #expect(polled)
        for user in users.values { try lab.deliver(MailLab.message(id: "\(user)-new@lab.test", subject: "nova"), to: user) }
        let done = daemon.waitForEvents(timeout: .seconds(15)) { events in users.values.allSatisfy { user in events.contains { $0.messageID == "<\(user)-new@lab.test>" } } }
        #expect(done, "\(daemon.log)")
        Thread.sleep(forTimeInterval: 1.2)
        func ids(_ mode: String) -> Set<String> {
            Set(daemon.events().filter { $0["mailbox"] as? String == "imp-\(mode)" }.compactMap(\.messageID))
        }
        let all = users["all"]!, unseen = users["unseen"]!, none = users["none"]!
        #expect(ids("all") == ["<\(all)-old-seen@lab.test>", "<\(all)-old-unseen-1@lab.test>", "<\(all)-old-unseen-2@lab.test>", "<\(all)-new@lab.test>"])
        #expect(ids("unseen") == ["<\(unseen)-old-unseen-1@lab.test>", "<\(unseen)-old-unseen-2@lab.test>", "<\(unseen)-new@lab.test>"])
        #expect(ids("none") == ["<\(none)-new@lab.test>"])
    }

    @Test func aNewUIDValidityDoesNotRecreateOldRequests() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("validity")
        try lab.addUser(user)
        for n in 1...3 { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "antes \(n)"), to: user) }
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state",
            mailboxes: inboundMailbox("validity", provider: "imaps", port: lab.imapsPort, user: user, lab: lab), contractMailboxes: ["validity"]))
        let spool = directory.path + "/state/events"
        let first = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
        #expect(first.waitForEvents(timeout: .seconds(15)) { $0.count == 3 })
        #expect(first.terminate() == 0)
        let oldValidity = Set(first.events().compactMap { ($0["id"] as? String)?.split(separator: "/")[1] })

        Thread.sleep(forTimeInterval: 1.1) // Dovecot's new UIDVALIDITY is time-based.
        try lab.resetUIDValidity(of: user)
        try lab.deliver(MailLab.message(id: "\(user)-4@lab.test", subject: "depois"), to: user)
        let second = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
        #expect(second.waitForEvents(timeout: .seconds(15)) { $0.count >= 4 })
        Thread.sleep(forTimeInterval: 1.5)
        #expect(second.terminate() == 0)
        let events = second.events()
        #expect(events.count == 4, "\(second.log)")
        #expect(Set(events.compactMap(\.messageID)).count == 4)
        let newest = try #require(events.first { $0.messageID == "<\(user)-4@lab.test>" })
        let newValidity = try #require((newest["id"] as? String)?.split(separator: "/")[1])
        #expect(!oldValidity.contains(newValidity), "the lab did not change UIDVALIDITY")
        #expect(second.log.contains("duplicates=3"))
    }

    /// A POP3 server with no UIDL: a mailbox that keeps messages fails with the reason in words;
    /// one that deletes them works.
    @Test func pop3WithoutUIDL() throws {
        let message = MailLab.message(id: "nouidl-1@lab.test", subject: "sem UIDL").replacingOccurrences(of: "\n", with: "\r\n")
        let deleted = LineCollector()
        let server = try ScriptedServer(greeting: "+OK fake POP3 ready\r\n") { line in
            let verb = line.split(separator: " ").first?.uppercased() ?? ""
            switch verb {
            case "CAPA": return "+OK\r\nUSER\r\n.\r\n"
            case "USER", "PASS", "NOOP": return "+OK\r\n"
            case "UIDL": return "-ERR unknown command\r\n"
            case "LIST": return "+OK 1 message\r\n1 \(message.utf8.count)\r\n.\r\n"
            case "RETR": return "+OK\r\n\(message)\r\n.\r\n"
            case "DELE": deleted.add(line); return "+OK deleted\r\n"
            case "QUIT": return "+OK bye\r\n"
            default: return "-ERR no\r\n"
            }
        }
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        func mailbox(_ name: String, afterFetch: String) -> String {
            """
            [mailbox.\(name)]
            type = "inbound"
            provider = "pop"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            after_fetch = "\(afterFetch)"
            timeout = "5s"

            """
        }
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state",
            mailboxes: mailbox("keeps", afterFetch: "keep") + mailbox("deletes", afterFetch: "delete"), contractMailboxes: ["keeps", "deletes"]), mode: 0o600)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        let handed = daemon.waitForEvents(timeout: .seconds(15)) { events in events.contains { $0["mailbox"] as? String == "deletes" } }
        _ = waitUntil(timeout: .seconds(15)) { daemon.log.contains("poll failed mailbox=keeps") }
        #expect(daemon.terminate() == 0)
        #expect(handed, "\(daemon.log)")
        #expect(daemon.events().filter { $0["mailbox"] as? String == "keeps" }.isEmpty)
        #expect(daemon.log.contains("poll failed mailbox=keeps"))
        #expect(daemon.log.contains("does not support UIDL"))
        #expect(deleted.lines.contains("DELE 1"))
    }
}

/// POP3 PIPELINING (RFC 2449): a batch's RETRs go out together. A server that refuses one of
/// them mid-batch fails the poll with its reply; nothing of the batch is handed on, and no QUIT
/// is sent, so the server deletes nothing; the next poll takes every message exactly once.
struct POP3PipeliningTests {
    @Test func aRefusedRetrInAPipelinedBatchLosesNothing() throws {
        let messages = (1...5).map { MailLab.message(id: "piped-\($0)@lab.test", subject: "Pedido \($0)").replacingOccurrences(of: "\n", with: "\r\n") }
        final class State: @unchecked Sendable {
            let lock = NSLock()
            var refuseThird = true
            var batchesSeen: [[String]] = []
            var deleted: [String] = []
            var quits = 0
        }
        let state = State()
        let server = try ScriptedServer(greeting: "+OK fake POP3 ready\r\n") { line in
            let parts = line.split(separator: " ")
            let verb = parts.first?.uppercased() ?? ""
            let number = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return state.lock.withLock { () -> String in
                switch verb {
                case "CAPA": return "+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n.\r\n"
                case "USER", "PASS", "NOOP": return "+OK\r\n"
                case "UIDL": return "+OK\r\n" + (1...5).map { "\($0) uid-\($0)\r\n" }.joined() + ".\r\n"
                case "LIST": return "+OK 5 messages\r\n" + messages.enumerated().map { "\($0.offset + 1) \($0.element.utf8.count)\r\n" }.joined() + ".\r\n"
                case "RETR":
                    if number == 1 { state.batchesSeen.append([]) }
                    state.batchesSeen[state.batchesSeen.count - 1].append(line)
                    if number == 3 && state.refuseThird { return "-ERR [IN-USE] message locked\r\n" }
                    return "+OK\r\n" + messages[number - 1].replacingOccurrences(of: "\r\n.", with: "\r\n..") + "\r\n.\r\n"
                case "DELE": state.deleted.append(line); return "+OK deleted\r\n"
                case "QUIT": state.quits += 1; return "+OK bye\r\n"
                default: return "-ERR no\r\n"
                }
            }
        }
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: """
            [mailbox.piped]
            type = "inbound"
            provider = "pop"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            after_fetch = "delete"
            timeout = "5s"

            """, contractMailboxes: ["piped"]), mode: 0o600)
        let refused = try runCarteiro(["run", "--once", "--config", config])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refused RETR"), "\(refused.stderr)")
        #expect(refused.stderr.contains("IN-USE"), "\(refused.stderr)")
        let spool = directory.path + "/state/events"
        func events() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") } }
        #expect(events().isEmpty)
        state.lock.withLock {
            #expect(state.deleted.isEmpty)
            #expect(state.batchesSeen.first?.count == 5, "all five RETRs were sent before any reply was read")
            state.refuseThird = false
        }
        let fixed = try runCarteiro(["run", "--once", "--config", config])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect(events().count == 5)
        state.lock.withLock {
            #expect(Set(state.deleted) == Set((1...5).map { "DELE \($0)" }))
            #expect(state.quits == 1, "only the successful poll commits its deletions with QUIT")
        }
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OversizeTests {
    @Test func anOversizeMessageIsHandedOnWithItsHeadersOnly() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("big")
        try lab.addUser(user)
        let big = MailLab.message(id: "\(user)-big@lab.test", subject: "anexo enorme") + "\n" + String(repeating: "x", count: 4000)
        try lab.deliver(big, to: user)
        try lab.deliver(MailLab.message(id: "\(user)-small@lab.test", subject: "pequena"), to: user)
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state",
            mailboxes: inboundMailbox("big", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "max_message_size = \"1KB\""),
            contractMailboxes: ["big"]))
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.count == 2 }, "\(daemon.log)")
        #expect(daemon.terminate() == 0)
        let events = daemon.events()
        let oversize = try #require(events.first { $0.messageID == "<\(user)-big@lab.test>" })
        #expect(oversize["flags"] as? [String] == ["oversize"])
        let message = try #require(oversize["message"] as? [String: Any])
        #expect(message["subject"] as? String == "anexo enorme")
        #expect((message["size"] as? Int ?? 0) > 4000)
        let raw = try String(contentsOfFile: directory.path + "/state/" + (oversize["raw"] as? String ?? ""), encoding: .utf8)
        #expect(raw.contains("Subject: anexo enorme"))
        #expect(!raw.contains("xxxx"), "the body was downloaded")
        let small = try #require(events.first { $0.messageID == "<\(user)-small@lab.test>" })
        #expect(small["flags"] as? [String] == [])
    }
}
