import Foundation
import Testing
import CarteiroTesting

/// Notifications through the right mailbox, from a durable queue, against the lab's real SMTP
/// server: every resolution branch, per-recipient 4xx/5xx, rejected submissions, isolation of
/// a dead lane, and SIGKILLs while draining.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OutboundDeliveryTests {
    @Test func everyResolutionBranchSendsThroughTheRightMailbox() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("res")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        // contract → acme-out; contract without mailbox → desk-out; specific → audit-out;
        // unset → desk-out; explicit --mailbox wins.
        try submit(#"{"workflow": "approval", "step": "notify", "contract": "acme", "request": "1001", "vars": {"request.subject": "Impressora"}}"#, name: "a", state: state)
        try submit(#"{"workflow": "approval", "step": "notify", "contract": "beta", "request": "1002", "vars": {"request.subject": "Rede"}}"#, name: "b", state: state)
        try submit(#"{"workflow": "approval", "step": "audit", "contract": "acme", "request": "1003"}"#, name: "c", state: state)
        try submit(#"{"workflow": "approval", "step": "plain", "contract": "acme", "request": "1004"}"#, name: "d", state: state)
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "acme-out", "--request", "1005", "--to", "Extra <extra.\(token)@lab.test>",
                                    "--subject", "Explícito", "--text", "corpo"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(20)) { ReceivedMail.all(in: lab, containing: token).count == 7 }, "\(daemon.log)")
        let mails = ReceivedMail.all(in: lab, containing: token)
        func mails(request: String) -> [ReceivedMail] { mails.filter { $0.message.contains("[REQ#\(request)]") || $0.message.contains("REQ#\(request)") } }
        // 1001: one message per group member, through ACME's mailbox (STARTTLS + AUTH as acme).
        let acme = mails.filter { $0.mailFrom == "suporte@acme.example" && $0.authUser == "acme" && $0.listener == "starttls" }
        #expect(Set(acme.flatMap(\.recipients)) == ["ana.\(token)@lab.test", "bruno.\(token)@lab.test", "extra.\(token)@lab.test"])
        #expect(acme.allSatisfy { $0.recipients.count == 1 }, "each recipient gets a message of its own")
        #expect(acme.contains { $0.message.contains("From: ACME Atendimento <suporte@acme.example>") })
        // 1002 and 1004: the system's mailbox (implicit TLS + AUTH as ana).
        let desk = mails.filter { $0.mailFrom == "desk@desk.example" }
        #expect(desk.count == 3)
        #expect(desk.allSatisfy { $0.authUser == "ana" && $0.listener == "tls" })
        // 1003: the specific mailbox, plain text, no AUTH.
        let audit = mails.filter { $0.mailFrom == "audit@desk.example" }
        #expect(audit.count == 1)
        #expect(audit.first?.listener == "plain")
        #expect(audit.first?.recipients == ["bruno.\(token)@lab.test"])
        #expect(daemon.log.contains("contract has no outbound mailbox; using the system's mailbox=desk-out contract=beta"))
        // The headers every notification carries, on what the server received.
        let any = try #require(acme.first)
        #expect(any.message.contains("\r\nAuto-Submitted: auto-generated\r\n"))
        #expect(any.message.contains("\r\nX-Auto-Response-Suppress: All\r\n"))
        #expect(any.message.contains("Message-ID: <carteiro."))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox")) ?? []).filter { $0.hasSuffix(".json") }.isEmpty)
    }

    @Test func recipientsAnsweredWith4xxAnd5xx() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("codes")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        // One message to three recipients: accepted, refused for now, refused for good.
        try submit("""
        {"mailbox": "audit-out", "request": "2001", "one_message": true, "subject": "Três destinos", "text": "corpo",
         "to": ["ok.\(token)@lab.test", "451-later.\(token)@lab.test", "550-gone.\(token)@lab.test"]}
        """, name: "codes", state: state)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("delivery deferred") }, "\(daemon.log)")
        let received = ReceivedMail.all(in: lab, containing: token)
        #expect(received.count == 1)
        #expect(received.first?.recipients == ["ok.\(token)@lab.test"])
        // The 5xx recipient is reported at once? No: the message is not finished while one
        // recipient waits; the queue shows each recipient's state.
        let listing = try runCarteiro(["queue", "list", "--config", config])
        #expect(listing.stdout.contains("sent  ok.\(token)@lab.test  250"))
        #expect(listing.stdout.contains("pending  451-later.\(token)@lab.test  451"))
        #expect(listing.stdout.contains("failed  550-gone.\(token)@lab.test  550"))
        // The 4xx recipient is retried alone; the server still says 451, so force the lifetime:
        // retry now, and it is deferred again, never sent to the others twice.
        let id = try #require(listing.stdout.split(separator: " ").first.map(String.init))
        let retried = try runCarteiro(["queue", "retry", id, "--config", config])
        #expect(retried.status == 0, "\(retried.status): \(retried.stdout)\(retried.stderr)\n\(daemon.log)")
        #expect(waitUntil(timeout: .seconds(10)) { daemon.log.components(separatedBy: "delivery deferred").count >= 3 }, "\(daemon.log)")
        #expect(ReceivedMail.all(in: lab, containing: token).count == 1, "a retry goes only to the recipient that waits")
        // Deleting it gives it up without a word to anyone else.
        let deleted = try runCarteiro(["queue", "delete", id, "--config", config])
        #expect(deleted.status == 0, "\(deleted.status): \(deleted.stdout)\(deleted.stderr)\n\(daemon.log)")
        #expect(try runCarteiro(["queue", "list", "--config", config]).stdout == "the queue is empty\n")
    }

    @Test func permanentFailureRaisesDeliveryFailed() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("fail")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        try submit("""
        {"mailbox": "audit-out", "contract": "acme", "request": "3001", "subject": "Não entregue", "text": "x", "to": ["550-gone.\(token)@lab.test"]}
        """, name: "fail", state: state)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0["type"] as? String == "delivery.failed" } }, "\(daemon.log)")
        let event = try #require(daemon.events().first { $0["type"] as? String == "delivery.failed" })
        #expect(event["request"] as? String == "3001")
        #expect(event["contract"] as? String == "acme")
        let delivery = try #require(event["delivery"] as? [String: Any])
        let failed = try #require(delivery["failed_recipients"] as? [[String: Any]])
        #expect(failed.first?["address"] as? String == "550-gone.\(token)@lab.test")
        #expect(failed.first?["status"] as? String == "550")
        #expect((delivery["original_message_id"] as? String)?.hasPrefix("<carteiro.3001.") == true)
        #expect(FileManager.default.fileExists(atPath: state + "/" + (event["raw"] as? String ?? "")))
        let listing = try runCarteiro(["queue", "list", "--config", config])
        #expect(listing.stdout.contains("failed (audit-out)"))
    }

    /// The lab's SMTP server does not offer SMTPUTF8: a message to a non-ASCII address is
    /// given up with that reason (not sent as raw 8-bit), and the ASCII one beside it goes out.
    @Test func aNonASCIIAddressNeedsSMTPUTF8() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("utf8")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        try submit("""
        {"mailbox": "audit-out", "request": "3002", "subject": "s", "text": "x", "to": ["joão.\(token)@lab.test", "joao.\(token)@lab.test"]}
        """, name: "utf8", state: state)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(!result.crashed, "\(result.stderr)")
        let received = ReceivedMail.all(in: lab, containing: token)
        #expect(received.map(\.recipients) == [["joao.\(token)@lab.test"]], "\(result.stderr)")
        let listing = try runCarteiro(["queue", "list", "--config", config])
        #expect(listing.stdout.contains("does not offer SMTPUTF8"), "\(listing.stdout)")
    }

    @Test func anUnresolvableSubmissionIsMovedAsideWithItsReason() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: "x"), mode: 0o600)
        try submit(#"{"workflow": "approval", "step": "notfy", "contract": "acme"}"#, name: "bad-step", state: state)
        try submit(#"{"to": ["a@b.example"], "subject": "x\r\nBcc: victim@evil.example", "text": "t"}"#, name: "injection", state: state)
        try submit("not json at all", name: "garbage", state: state)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        let rejected = state + "/outbox/rejected"
        #expect(waitUntil(timeout: .seconds(10)) { ((try? FileManager.default.contentsOfDirectory(atPath: rejected)) ?? []).count == 6 }, "\(daemon.log)")
        func reason(_ name: String) -> String { (try? String(contentsOfFile: rejected + "/\(name).json.reason", encoding: .utf8)) ?? "" }
        #expect(reason("bad-step") == "workflow \"approval\" has no step \"notfy\"; did you mean \"notify\"?\n")
        #expect(reason("injection").contains("header injection"))
        #expect(reason("garbage").hasPrefix("the submission is not valid JSON"))
        // carteiro send says the same and queues nothing.
        let send = try runCarteiro(["send", "--config", config, "--workflow", "approval", "--step", "notfy"])
        #expect(send.status == 65)
        #expect(send.stderr.contains("has no step \"notfy\"; did you mean \"notify\"?"))
        #expect(try runCarteiro(["queue", "list", "--config", config]).stdout == "the queue is empty\n")
    }

    @Test func aDeadLaneDelaysNoOtherLane() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let silent = try ScriptedServer(greeting: nil)
        defer { silent.stop() }
        let token = uniqueName("lane")
        let state = directory.path + "/state"
        let dead = """
        [mailbox.dead-out]
        type = "outbound"
        server = "127.0.0.1"
        port = \(silent.port)
        tls = "none"
        sender = "dead@desk.example"
        timeout = "30s"

        """
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token, extraMailboxes: dead), mode: 0o600)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        for n in 1...3 {
            try submit("{\"mailbox\": \"dead-out\", \"subject\": \"s\", \"text\": \"t\", \"to\": [\"stuck\(n).\(token)@lab.test\"]}", name: "dead\(n)", state: state)
        }
        Thread.sleep(forTimeInterval: 1)
        try submit("{\"mailbox\": \"audit-out\", \"subject\": \"s\", \"text\": \"t\", \"to\": [\"healthy.\(token)@lab.test\"]}", name: "healthy", state: state)
        let started = ContinuousClock.now
        #expect(waitUntil(timeout: .seconds(20)) { !ReceivedMail.all(in: lab, containing: "healthy.\(token)").isEmpty }, "\(daemon.log)")
        #expect(ContinuousClock.now - started < .seconds(5), "the healthy lane waited for the dead one")
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OutboundCrashTests {
    /// SMTP allows a duplicate after a crash between the server's 250 and the queue's removal;
    /// nothing may be lost. The duplicates are counted and printed.
    @Test func killedWhileDrainingNothingIsLost() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("crash")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        let total = 1200
        for n in 1...total {
            try submit("{\"mailbox\": \"audit-out\", \"subject\": \"n\(n)\", \"text\": \"t\", \"to\": [\"c\(n).\(token)@lab.test\"]}", name: "c\(n)", state: state)
        }
        var generator = SeededGenerator()
        print("outbound crash test: seed \(generator.seed) (CARTEIRO_TEST_SEED repeats it)")
        var landedDuringTheWork = 0
        // What is not handed to the server yet: submissions still in the outbox and messages
        // in the lane (one goes once the server said 250). Read from the daemon's own folders,
        // every millisecond: the lab's spool, which every test shares, takes far longer to read
        // than the daemon takes to send a thousand messages.
        let waiting = { (folder: String) in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.count }
        let unsent = { waiting(state + "/outbox") + waiting(state + "/queue/audit-out") }
        for _ in 0..<8 {
            let before = unsent()
            let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
            // However slowly the machine starts it, the kill comes once sending has begun.
            let deadline = ContinuousClock.now + .seconds(20)
            while before > 0, unsent() >= before, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.001) }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.01, using: &generator))
            daemon.kill()
            // Some messages sent and some not: this kill interrupted the work.
            if (1..<total).contains(unsent()) { landedDuringTheWork += 1 }
        }
        print("outbound crash test: \(landedDuringTheWork) of 8 kills landed while messages were being sent")
        #expect(landedDuringTheWork >= 1, "no kill interrupted the work (seed \(generator.seed))")
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        let drained = waitUntil(timeout: .seconds(60)) {
            (try? runCarteiro(["queue", "list", "--config", config]))?.stdout == "the queue is empty\n"
                && ((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox")) ?? []).filter { $0.hasSuffix(".json") }.isEmpty
        }
        #expect(daemon.terminate() == 0)
        #expect(drained, "\(daemon.log)")
        let received = ReceivedMail.all(in: lab, containing: token).flatMap(\.recipients)
        let expected = Set((1...total).map { "c\($0).\(token)@lab.test" })
        #expect(Set(received) == expected, "lost: \(expected.subtracting(received).sorted().prefix(5))")
        print("outbound crash test: \(total) messages, \(received.count - Set(received).count) duplicates after 8 SIGKILLs")
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OutboundLifetimeTests {
    @Test func aMessageDeferredPastItsLifetimeIsGivenUp() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("life")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        try submit("{\"mailbox\": \"audit-out\", \"request\": \"4001\", \"subject\": \"s\", \"text\": \"t\", \"to\": [\"451-wait.\(token)@lab.test\"]}", name: "life", state: state)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("delivery deferred") }, "\(daemon.log)")
        // Age the message past queue_lifetime (5 days by default), then make it due.
        let lane = state + "/queue/audit-out"
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: lane).first { $0.hasSuffix(".json") })
        var entry = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lane + "/" + name))) as? [String: Any])
        entry["created"] = Int(Date().timeIntervalSince1970) - 6 * 86_400
        entry["next_attempt"] = 0
        try JSONSerialization.data(withJSONObject: entry).write(to: URL(fileURLWithPath: lane + "/" + name))
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0["type"] as? String == "delivery.failed" } }, "\(daemon.log)")
        let event = try #require(daemon.events().first { $0["type"] as? String == "delivery.failed" })
        let delivery = try #require(event["delivery"] as? [String: Any])
        #expect((delivery["reason"] as? String)?.contains("not delivered within the queue lifetime (5d)") == true)
        let failed = try #require((delivery["failed_recipients"] as? [[String: Any]])?.first)
        #expect(failed["diagnostic"] as? String == "4.3.0 try again later (lab rule)")
        #expect(try runCarteiro(["queue", "list", "--config", config]).stdout.contains("failed (audit-out)"))
    }

    /// A queue entry none of whose recipients is still pending (every one answered, and the
    /// entry not yet settled when the daemon died) is settled at the next run without a
    /// transaction: delivered ones removed, nothing sent again, no crash.
    @Test func anEntryWithNothingPendingIsSettledWithoutSending() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let token = uniqueName("settled")
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", outboundConfiguration(lab: lab, state: state, token: token), mode: 0o600)
        let queued = try runCarteiro(["send", "--config", config, "--mailbox", "audit-out", "--to", "ok.\(token)@lab.test",
                                      "--subject", "Já entregue", "--text", "x"])
        #expect(queued.status == 0, "\(queued.stderr)")
        let lane = state + "/queue/audit-out"
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: lane).first { $0.hasSuffix(".json") })
        var entry = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lane + "/" + name))) as? [String: Any])
        var recipients = try #require(entry["recipients"] as? [[String: Any]])
        for index in recipients.indices { recipients[index]["state"] = "sent"; recipients[index]["code"] = 250 }
        entry["recipients"] = recipients
        try JSONSerialization.data(withJSONObject: entry).write(to: URL(fileURLWithPath: lane + "/" + name))
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: lane)) ?? []).isEmpty)
        #expect(ReceivedMail.all(in: lab, containing: token).isEmpty, "nothing is sent again")
    }
}
