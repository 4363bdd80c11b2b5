import Foundation
import Testing
import CarteiroTesting

/// State directories written before sources kept cursors (`uidvalidity`, `last_uid`,
/// `after_fetch_from` and `uidls` side by side in `state.json`) go on where they stood: the
/// first poll reads the old members, hands on only what is new, and writes the cursor.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct StateMigrationTests {
    @Test func anOldStateFileGoesOnWhereItStood() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let imapUser = uniqueName("mig-imap"), popUser = uniqueName("mig-pop")
        for user in [imapUser, popUser] {
            try lab.addUser(user)
            for n in 1...2 { try lab.deliver(MailLab.message(id: "\(user)-\(n)@lab.test", subject: "antes \(n)"), to: user) }
        }
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes:
            inboundMailbox("mig-imap", provider: "imaps", port: lab.imapsPort, user: imapUser, lab: lab)
            + inboundMailbox("mig-pop", provider: "pops", port: lab.pop3sPort, user: popUser, lab: lab),
            contractMailboxes: ["mig-imap", "mig-pop"]))
        // Dovecot takes up a new lab user when it next reads its passwd file: wait for that,
        // since `run --once` does not retry a rejected login.
        for mailbox in ["mig-imap", "mig-pop"] {
            #expect(waitUntil(timeout: .seconds(10)) { (try? runCarteiro(["test-mailbox", mailbox, "--config", config]).status) == 0 })
        }
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        let spool = state + "/events"
        func events() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") } }
        #expect(events().count == 4)

        // The state files as the versions before cursors wrote them, from the positions just
        // reached; and no dedupe keys, so that only the position can keep the old messages out.
        func object(_ path: String) throws -> [String: Any] {
            try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        }
        let imapPath = state + "/mailboxes/mig-imap/state.json", popPath = state + "/mailboxes/mig-pop/state.json"
        let imapCursor = try #require((try object(imapPath))["cursor"] as? [String: Any])
        let popCursor = try #require((try object(popPath))["cursor"] as? [String: Any])
        #expect(imapCursor["kind"] as? String == "imap")
        #expect(popCursor["kind"] as? String == "pop3")
        let imapPosition = try #require(imapCursor["position"] as? [String: Any])
        let uidls = try #require((popCursor["position"] as? [String: Any])?["uidls"] as? [String])
        #expect(uidls.count == 2)
        let legacyIMAP: [String: Any] = ["after_fetch_from": imapPosition["after_fetch_from"] ?? 1, "handed_on": 2,
                                         "last_uid": imapPosition["last_uid"] ?? 0, "uidls": [String](),
                                         "uidvalidity": imapPosition["uidvalidity"] ?? 0]
        let legacyPOP: [String: Any] = ["after_fetch_from": 1, "handed_on": 2, "last_uid": 0, "uidls": uidls, "uidvalidity": 0]
        try JSONSerialization.data(withJSONObject: legacyIMAP).write(to: URL(fileURLWithPath: imapPath))
        try JSONSerialization.data(withJSONObject: legacyPOP).write(to: URL(fileURLWithPath: popPath))
        for mailbox in ["mig-imap", "mig-pop"] { unlink(state + "/mailboxes/\(mailbox)/message-keys") }
        for name in events() { unlink(spool + "/" + name) }

        for user in [imapUser, popUser] { try lab.deliver(MailLab.message(id: "\(user)-3@lab.test", subject: "depois"), to: user) }
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        let handed = try events().map { try object(spool + "/" + $0) }.compactMap(\.messageID).sorted()
        #expect(handed == ["<\(imapUser)-3@lab.test>", "<\(popUser)-3@lab.test>"], "only the new messages")
        // The files now hold cursors.
        #expect(((try object(imapPath))["cursor"] as? [String: Any])?["kind"] as? String == "imap")
        #expect(((try object(popPath))["cursor"] as? [String: Any])?["kind"] as? String == "pop3")
        #expect((try object(imapPath))["last_uid"] == nil)
    }
}
