import Foundation
import Testing
import CarteiroTesting

/// Routing rules against a real Dovecot: events carry what the rules set, a dropped message
/// becomes no event and stays on the server even with after_fetch = delete (poll after poll,
/// over IMAP and POP3), the journal and status count it, and `parse` says which rule matched.
struct RoutingRuleTests {
    static let rules = """
        [contract.other]
        name = "Other customer"

        [rule.newsletters]
        header = "Subject"
        regex = '^\\[news\\]'
        drop = "newsletters are not requests"

        [rule.billing]
        to = "suporte+billing@acme.example"
        set_queue = "billing"
        add_tags = ["finance"]

        [rule.board]
        from = "*@board.acme.example"
        set_priority = "urgent"
        set_contract = "other"

        """

    static func message(_ id: String, subject: String, from: String = "cliente@acme.example", to: String = "suporte@acme.example") -> String {
        """
        From: <\(from)>
        To: <\(to)>
        Subject: \(subject)
        Message-ID: <\(id)>
        Date: Wed, 25 Nov 2026 12:00:00 -0300

        Body of \(id).
        """
    }

    @Test func aHostilePatternAndAHostileHeaderCannotStallAPoll() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("rules-hostile")
        try lab.addUser(user)
        // A subject of 200,000 characters against rules as costly as the language allows.
        try lab.deliver(Self.message("hostile-\(user)@x", subject: String(repeating: "a", count: 200_000)), to: user)
        try lab.deliver(Self.message("after-\(user)@x", subject: "The next one"), to: user)
        let hostile = String(repeating: "(a|a?)", count: 150) + "b"
        let rules = (0..<20).map { "[rule.h\($0)]\nheader = \"Subject\"\nregex = '\(hostile)'\nadd_tags = [\"h\"]\n" }.joined()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: inboundMailbox(
            "in", provider: "imaps", port: lab.imapsPort, user: user, lab: lab), contractMailboxes: ["in"]) + rules)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "in"]))?.status ?? 1) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let events = try FloodLimitTests.events(state + "/events")
        #expect(events.count == 2, "both handed on")
        let long = try #require(events.first { ($0["message"] as? [String: Any])?["message_id"] as? String == "<hostile-\(user)@x>" })
        #expect((long["problems"] as? [String])?.contains { $0.contains("routing rules stopped at rule \"h0\"") } == true, "\(long["problems"] ?? "")")
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
    }

    @Test(arguments: ["imaps", "pops"])
    func rulesRouteAndADroppedMessageStaysOnTheServer(provider: String) throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("rules")
        try lab.addUser(user)
        try lab.deliver(Self.message("news-\(user)@x", subject: "[news] December", from: "list@news.example"), to: user)
        try lab.deliver(Self.message("bill-\(user)@x", subject: "Invoice 12", to: "suporte+billing@acme.example"), to: user)
        try lab.deliver(Self.message("board-\(user)@x", subject: "Outage", from: "cfo@board.acme.example"), to: user)
        try lab.deliver(Self.message("plain-\(user)@x", subject: "Printer"), to: user)
        let state = directory.path + "/state"
        let port = provider == "imaps" ? lab.imapsPort : lab.pop3sPort
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: inboundMailbox(
            "in", provider: provider, port: port, user: user, lab: lab, extra: "after_fetch = \"delete\"\nimport_existing = \"all\""),
            contractMailboxes: ["in"]) + Self.rules)
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0 && check.stdout.contains("1. newsletters  (every inbound mailbox)"), "\(check.stdout)\(check.stderr)")
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "in"]))?.status ?? 1) == 0 }

        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("message dropped by a routing rule") && first.stderr.contains("rule=newsletters"), "\(first.stderr)")
        #expect(first.stderr.contains("count=3 dropped=1"), "\(first.stderr)")
        #expect(first.stderr.contains("contract=other event=in/"), "the journal names the contract a rule set: \(first.stderr)")
        var events = try FloodLimitTests.events(state + "/events")
        #expect(events.count == 3, "the newsletter became no event")
        func event(_ subject: String) -> [String: Any]? {
            events.first { ($0["message"] as? [String: Any])?["subject"] as? String == subject }
        }
        let billing = try #require(event("Invoice 12")?["routing"] as? [String: Any])
        #expect(billing["queue"] as? String == "billing" && billing["tags"] as? [String] == ["finance"])
        let board = try #require(event("Outage"))
        #expect(board["contract"] as? String == "other")
        #expect((board["routing"] as? [String: Any])?["priority"] as? String == "urgent")
        #expect(event("Printer")?["routing"] == nil && event("Printer")?["contract"] as? String == "lab")
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
        // after_fetch = delete took the three handed on, and left the dropped one.
        #expect(lab.count(user).messages == 1)
        let status = try runCarteiro(["status", "--json", "--config", config])
        #expect(status.stdout.contains("\"dropped\": 1") || status.stdout.contains("\"dropped\":1"), "\(status.stdout)")

        // The next polls leave it there too (it is not a leftover of after_fetch), and hand
        // nothing on again.
        for _ in 0..<2 {
            let again = try runCarteiro(["run", "--once", "--config", config])
            #expect(again.status == 0, "\(again.stderr)")
            #expect(lab.count(user).messages == 1)
        }
        events = try FloodLimitTests.events(state + "/events")
        #expect(events.count == 3)
        let mailboxState = try String(contentsOfFile: state + "/mailboxes/in/state.json", encoding: .utf8)
        #expect(mailboxState.contains("\"kept\""), "\(mailboxState)")

        // Once it is gone from the server, it is forgotten.
        let maildir = lab.directory + "/mail/\(user)/Maildir"
        for sub in ["new", "cur"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(maildir)/\(sub)")) ?? [] {
                try FileManager.default.removeItem(atPath: "\(maildir)/\(sub)/\(name)")
            }
        }
        let last = try runCarteiro(["run", "--once", "--config", config])
        #expect(last.status == 0, "\(last.stderr)")
        let forgotten = try String(contentsOfFile: state + "/mailboxes/in/state.json", encoding: .utf8)
        #expect(!forgotten.contains("\"kept\""), "\(forgotten)")

        // `parse` says which rule matched, or that one dropped it.
        let newsletter = try directory.write("news.eml", Self.message("n@x", subject: "[NEWS] again", from: "list@news.example"))
        let parsed = try runCarteiro(["parse", newsletter, "--mailbox", "in", "--config", config])
        #expect(parsed.status == 0)
        #expect(parsed.stderr.contains("dropped by rule \"newsletters\" (newsletters are not requests)"), "\(parsed.stderr)")
        let bill = try directory.write("bill.eml", Self.message("b@x", subject: "Invoice", to: "Suporte+Billing@ACME.example"))
        let routed = try runCarteiro(["parse", bill, "--mailbox", "in", "--config", config])
        #expect(routed.stderr.contains("rules matched in mailbox \"in\": \"billing\""), "\(routed.stderr)")
        #expect(routed.stdout.contains("\"queue\": \"billing\""), "\(routed.stdout)")
    }
}
