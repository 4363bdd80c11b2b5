import Foundation
import Testing
import CarteiroTesting

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
}
