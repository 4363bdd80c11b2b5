import Foundation
import Testing
import CarteiroTesting
import CarteiroEvents
import CarteiroConfig

/// Events POSTed to a real HTTP server on loopback that refuses the first attempts.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct WebhookTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    @Test func eventsArePostedInOrderAndRemovedOnlyOn2xx() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let received = directory.path + "/received.jsonl"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [Self.root + "/scripts/lab/webhook_server.py", "--fail-first", "3", "--log", received]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let portLine = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try #require(Int(portLine), "the webhook server did not start")

        let user = uniqueName("hook")
        try lab.addUser(user)
        for n in 1...5 { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "webhook \(n)"), to: user) }
        var text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("hook", provider: "imaps", port: lab.imapsPort, user: user, lab: lab),
                                       contractMailboxes: ["hook"])
        text = text.replacingOccurrences(of: "[mailbox.out]", with: "[events]\nwebhook = \"http://127.0.0.1:\(port)/mail-events\"\n\n[mailbox.out]")
        let config = try directory.write("carteiro.conf", text)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }

        let deadline = ContinuousClock.now + .seconds(30)
        var lines: [String] = []
        while ContinuousClock.now < deadline {
            lines = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            if lines.count >= 5 && daemon.events().isEmpty { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(lines.count == 5, "\(daemon.log)")
        #expect(daemon.events().isEmpty, "accepted events leave the spool")
        let ids = lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?.messageID
        }
        // In order per mailbox: the refused first event held the others back.
        #expect(ids == (1...5).map { "<\(user)-\($0)@lab.test>" })
        #expect(daemon.log.components(separatedBy: "webhook refused an event").count - 1 == 3)
        #expect(daemon.log.contains("reason=\"HTTP 503\""))
    }

    @Test func postsAreSignedCarryTheTokenAndInlineAttachments() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let received = directory.path + "/received.jsonl"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [Self.root + "/scripts/lab/webhook_server.py", "--envelope", "--log", received]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let port = try #require(Int(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        let user = uniqueName("signed")
        try lab.addUser(user)
        try lab.deliver("From: c@example.com\r\nTo: \(user)@lab\r\nSubject: With a file\r\nMessage-ID: <signed-\(user)@lab.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--b\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nfile body\r\n--b--\r\n", to: user)
        let secret = "s3cret-\(user)"
        var text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("signed", provider: "imaps", port: lab.imapsPort, user: user, lab: lab),
                                       contractMailboxes: ["signed"])
        text = text.replacingOccurrences(of: "[mailbox.out]", with: """
            [events]
            webhook = "http://127.0.0.1:\(port)/mail-events"
            webhook_secret_env = "HOOK_SECRET"
            webhook_token = "tok-\(user)"
            timeout = "5s"
            inline_attachments = "1MB"

            [mailbox.out]
            """)
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log",
                                       environment: ["HOOK_SECRET": secret])
        defer { _ = daemon.terminate() }
        var line: [String: Any]?
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, line == nil {
            line = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n").first
                .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let envelope = try #require(line, "\(daemon.log)")
        #expect(envelope["authorization"] as? String == "Bearer tok-\(user)")
        // The signature: t=TIME,v1=HMAC-SHA-256("TIME." + body), recomputed here as a desk would.
        let signature = try #require(envelope["signature"] as? String)
        let raw = try #require(envelope["raw"] as? String)
        let parts = Dictionary(uniqueKeysWithValues: signature.split(separator: ",").compactMap { part -> (String, String)? in
            let pair = part.split(separator: "=", maxSplits: 1)
            return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
        })
        let time = try #require(parts["t"])
        let expected = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), data: Array("\(time).".utf8) + Array(raw.utf8)))
        #expect(parts["v1"] == expected)
        #expect(abs((Int64(time) ?? 0) - Int64(Date().timeIntervalSince1970)) < 60)
        // The attachment rode inside the event.
        let event = try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
        let attachment = try #require(((event["message"] as? [String: Any])?["attachments"] as? [[String: Any]])?.first)
        #expect(attachment["content_base64"] as? String == Data("file body".utf8).base64EncodedString())
        #expect(!daemon.log.contains(secret) && !daemon.log.contains("tok-\(user)"))
    }

    /// The spool's order (oldest first by modification time, as the webhook reads it) is the
    /// mailbox's order, although a batch's events are written by parallel workers.
    @Test func theSpoolKeepsTheMailboxOrder() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("order")
        try lab.addUser(user)
        let total = 120
        for n in 1...total { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "ordem \(n)"), to: user) }
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state,
            mailboxes: inboundMailbox("order", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "import_existing = \"all\""),
            contractMailboxes: ["order"]))
        _ = waitUntil(timeout: .seconds(10)) { (try? runCarteiro(["test-mailbox", "order", "--config", config]).status) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let spool = state + "/events"
        let names = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".json") }
        #expect(names.count == total)
        let ordered = names.map { name -> (uid: Int, time: timespec) in
            var info = stat()
            stat(spool + "/" + name, &info)
            return (Int(name.dropLast(5).split(separator: "+").last ?? "") ?? 0, info.st_mtim)
        }.sorted { ($0.time.tv_sec, $0.time.tv_nsec) < ($1.time.tv_sec, $1.time.tv_nsec) }.map(\.uid)
        #expect(ordered == Array(1...total))
    }
}
