import Foundation
import Testing
import CarteiroStore
import CarteiroTesting

/// `sender_verification = "quarantine"` against Dovecot: a message whose sender the trusted
/// server says is forged waits in the quarantine, not in the spool, until released; the others
/// go on as always, and nothing is lost or doubled.
@Suite(.serialized)
struct QuarantineTests {
    static func message(id: String, results: String) -> String {
        """
        Authentication-Results: mx.acme.example; \(results)
        Received: from mail.sender.example by mx.acme.example with ESMTPS; Tue, 24 Nov 2026 10:00:01 -0300
        From: CFO <cfo@customer.example>
        To: suporte@acme.example
        Subject: Urgent payment \(id)
        Date: Tue, 24 Nov 2026 10:00:00 -0300
        Message-ID: <\(id)@customer.example>

        Please pay the invoice today.

        """
    }

    @Test func aForgedSenderWaitsForAPersonAndTheRestGoOn() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("quar")
        try lab.addUser(user)
        try lab.deliver(Self.message(id: "forged-\(user)", results: "spf=fail smtp.mailfrom=cfo@customer.example; dmarc=fail header.from=customer.example"), to: user)
        try lab.deliver(Self.message(id: "genuine-\(user)", results: "dkim=pass header.d=customer.example; dmarc=pass header.from=customer.example"), to: user)
        try lab.deliver(Self.message(id: "unchecked-\(user)", results: "none"), to: user)
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: inboundMailbox(
            "in", provider: "imaps", port: lab.imapsPort, user: user, lab: lab,
            extra: "authserv_ids = [\"mx.acme.example\"]\nsender_verification = \"quarantine\""), contractMailboxes: ["in"]))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("trusts mx.acme.example (a failed sender: quarantine)"), "\(check.stdout)")
        // `parse` judges a message as the mailbox would.
        let file = try directory.write("forged.eml", Self.message(id: "parse-\(user)", results: "dmarc=fail header.from=customer.example"))
        let parsed = try runCarteiro(["parse", "--config", config, "--mailbox", "in", file])
        let judged = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any], "\(parsed.stderr)")
        #expect((judged["authentication"] as? [String: Any])?["verdict"] as? String == "fail")
        #expect((judged["flags"] as? [String])?.contains("unverified-sender") == true)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "in"]))?.status ?? 1) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("quarantined=\"sender failed authentication\""), "\(run.stderr)")

        // Two in the spool (the genuine one verified, the unchecked one unknown), one held.
        let spool = state + "/events"
        let handed = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".json") }
        #expect(handed.count == 2, "\(handed)")
        let verdicts = try handed.map { name -> String in
            let event = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spool + "/" + name))) as? [String: Any])
            return (event["authentication"] as? [String: Any])?["verdict"] as? String ?? "absent"
        }
        #expect(Set(verdicts) == ["pass", "unknown"])
        let list = try runCarteiro(["quarantine", "list", "--config", config])
        #expect(list.status == 0 && list.stdout.contains("from cfo@customer.example") && list.stdout.contains("sender fail"), "\(list.stdout)")
        let name = try #require(list.stdout.split(separator: " ").first.map(String.init))
        let status = try runCarteiro(["status", "--config", config])
        #expect(status.stdout.contains("quarantine: 1 event held"), "\(status.stdout)")

        // Retention keeps a held event's raw message however old: someone may release it.
        let heldEvent = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: spool + "/.quarantine/" + name + ".json"))) as? [String: Any])
        let heldRaw = state + "/" + (heldEvent["raw"] as? String ?? "")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-400 * 86_400)], ofItemAtPath: heldRaw)
        _ = Retention.clean(StateDirectory(root: state, spool: spool), keepRaw: .seconds(3600), keepAttachments: .seconds(3600), keepFailed: nil)
        #expect(FileManager.default.fileExists(atPath: heldRaw))
        // Polled again: the held message is not taken twice, nor handed on.
        _ = try runCarteiro(["run", "--once", "--config", config])
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".json") }.count == 2)
        // Released (no daemon: the owner does it under the lock): the desk gets it, flagged.
        let release = try runCarteiro(["quarantine", "release", "--config", config, name])
        #expect(release.status == 0, "\(release.stderr)")
        let released = try Data(contentsOf: URL(fileURLWithPath: spool + "/" + name + ".json"))
        let event = try #require(try JSONSerialization.jsonObject(with: released) as? [String: Any])
        #expect((event["flags"] as? [String])?.contains("unverified-sender") == true)
        let raw = try #require(event["raw"] as? String)
        #expect(FileManager.default.fileExists(atPath: state + "/" + raw))
        #expect(validateAgainstSchema([spool]).status == 0)
        #expect(try runCarteiro(["quarantine", "list", "--config", config]).stdout.contains("nothing is held"))
        // Names that are not held events are refused unread; a second release finds nothing.
        #expect(try runCarteiro(["quarantine", "release", "--config", config, "../threading.key"]).status == 64)
        #expect(try runCarteiro(["quarantine", "delete", "--config", config, name]).status == 1)
    }
}
