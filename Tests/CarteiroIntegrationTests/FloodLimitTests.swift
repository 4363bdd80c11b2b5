import Foundation
import Testing
import CarteiroStore
import CarteiroTesting

/// Flood limits per correspondent: past the limit a sender's mail is still handed on, flagged
/// `flood`, and one `sender.flooding` alert names it per window; the counts survive a restart
/// and cost bounded memory whatever the number of senders.
struct FloodLimitTests {
    @Test func aSenderPastItsLimitIsFlaggedAndAlertedOncePerWindowAcrossRestarts() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("flood")
        try lab.addUser(user)
        for n in 1...5 { try lab.deliver(MailLab.message(id: "loop-\(n)-\(user)@lab.test", subject: "Auto \(n)", from: "robot@loop.example"), to: user) }
        try lab.deliver(MailLab.message(id: "person-\(user)@lab.test", subject: "Hello", from: "ana@customer.example"), to: user)
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: inboundMailbox(
            "in", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "max_messages_per_sender = 3\nmax_messages_per_domain = 0"),
            contractMailboxes: ["in"]))
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "in"]))?.status ?? 1) == 0 }
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("sender flooding"), "\(first.stderr)")
        var events = try Self.events(state + "/events")
        let alerts = events.filter { $0["type"] as? String == "sender.flooding" }
        #expect(alerts.count == 1)
        #expect((alerts.first?["flood"] as? [String: Any])?["sender"] as? String == "robot@loop.example")
        let messages = events.filter { $0["type"] as? String == "request.new" }
        #expect(messages.count == 6, "every message is still handed on")
        let flooded = messages.filter { Self.flags($0).contains("flood") }
        let floodedSenders = Set(flooded.map { Self.sender($0) })
        #expect(flooded.count == 2)
        #expect(floodedSenders == ["robot@loop.example"])
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
        // A restart does not start the count afresh, nor alert again within the window.
        try lab.deliver(MailLab.message(id: "loop-6-\(user)@lab.test", subject: "Auto 6", from: "robot@loop.example"), to: user)
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        events = try Self.events(state + "/events")
        #expect(events.filter { $0["type"] as? String == "sender.flooding" }.count == 1)
        let sixth = try #require(events.first { ($0["message"] as? [String: Any])?["subject"] as? String == "Auto 6" })
        let sixthFlags = Self.flags(sixth)
        #expect(sixthFlags.contains("flood"))
    }

    @Test func countsAreBoundedWindowedAndReadBack() {
        var counts = SenderCounts()
        for n in 0..<50_000 { _ = counts.count("s\(n)@x.example", now: 1000, window: 3600, limit: 30) }
        #expect(counts.entries.count <= SenderCounts.capacity)
        var one = SenderCounts()
        #expect(one.count("a@b", now: 0, window: 60, limit: 2) == (1, false))
        #expect(one.count("a@b", now: 1, window: 60, limit: 2) == (2, false))
        #expect(one.count("a@b", now: 2, window: 60, limit: 2) == (3, true))
        #expect(one.count("a@b", now: 3, window: 60, limit: 2) == (4, false), "alerted once per window")
        #expect(one.count("a@b", now: 61, window: 60, limit: 2) == (1, false), "a new window")
        #expect(one.count("a@b", now: 5, window: 60, limit: 2) == (1, false), "a clock that went back starts anew")
        #expect(SenderCounts(json: one.json().renderedBytes()) == one)
        #expect(SenderCounts(json: Array("{\"a\": [1, -5, true], \"b\": \"x\", \"c\": [1, 2, false]}".utf8)).entries.keys.sorted() == ["c"])
        #expect(SenderCounts(json: Array("not json".utf8)).entries.isEmpty)
        // A damaged count at the top of the range is left out, not added to (no overflow).
        var damaged = SenderCounts(json: Array("{\"a@b\": [0, \(Int.max), false]}".utf8))
        #expect(damaged.entries.isEmpty)
        #expect(damaged.count("a@b", now: 1, window: 60, limit: 0) == (1, false))
    }

    static func flags(_ event: [String: Any]) -> [String] { event["flags"] as? [String] ?? [] }

    static func sender(_ event: [String: Any]) -> String {
        ((event["message"] as? [String: Any])?["from"] as? [String: Any])?["address"] as? String ?? ""
    }

    static func events(_ spool: String) throws -> [[String: Any]] {
        try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".json") }.map {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spool + "/" + $0))) as? [String: Any] ?? [:]
        }
    }
}

/// The other way: the desk's notifications to one address stop at the outbound mailbox's limit
/// within the window; the rest wait (never lost), the message's other recipients still get it,
/// and the desk is told once.
struct NotificationLimitTests {
    @Test func notificationsToOneAddressWaitPastTheLimitAcrossRestarts() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let token = uniqueName("notify")
        var text = outboundConfiguration(lab: lab, state: state, token: token)
        text = text.replacingOccurrences(of: "sender = \"Audit <audit@desk.example>\"", with: "sender = \"Audit <audit@desk.example>\"\nmax_notifications_per_recipient = 2")
        let config = try directory.write("carteiro.conf", text)
        let busy = "busy.\(token)@lab.test", other = "other.\(token)@lab.test"
        for n in 1...4 {
            let sent = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", busy, "--subject", "Note \(n) \(token)", "--text", "t"])
            #expect(sent.status == 0, "\(sent.stderr)")
        }
        let both = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", busy, "--to", other, "--one-message",
                                    "--subject", "Both \(token)", "--text", "t"])
        #expect(both.status == 0, "\(both.stderr)")
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.stderr.contains("recipient limit reached; notifications wait"), "\(first.stderr)")
        let received = ReceivedMail.all(in: lab, containing: token)
        #expect(received.filter { $0.message.contains("Note ") }.count == 2)
        #expect(received.filter { $0.message.contains("Both \(token)") }.count == 1, "the other recipient is not held up")
        let alerts = try FloodLimitTests.events(state + "/events").filter { $0["type"] as? String == "recipient.flooding" }
        #expect(alerts.count == 1)
        #expect((alerts.first?["flood"] as? [String: Any])?["recipient"] as? String == busy)
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
        // A restart does not forget the count: nothing more goes to the busy address, nothing fails.
        _ = try runCarteiro(["run", "--once", "--config", config])
        #expect(ReceivedMail.all(in: lab, containing: token).count == 3)
        let list = try runCarteiro(["queue", "list", "--config", config])
        #expect(list.stdout.components(separatedBy: "pending  \(busy)").count - 1 == 3, "\(list.stdout)")
        #expect(!list.stdout.contains("failed"))
    }
}
