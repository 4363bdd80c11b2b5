import Foundation
import Testing
import CarteiroTesting

/// `after_fetch = "move:FOLDER"` on a server without MOVE (RFC 6851): UID COPY, then UID STORE
/// \Deleted, then UID EXPUNGE (with UIDPLUS) or EXPUNGE, only once the batch is handed on; a
/// refused COPY deletes nothing and is reported, and the next poll tries again without fetching
/// the messages twice. The lab's Dovecot offers MOVE, so a scripted server plays the old one.
struct MoveFallbackTests {
    /// Two messages in INBOX; records every command after login.
    final class OldIMAPServer: @unchecked Sendable {
        let uidplus: Bool
        private let lock = NSLock()
        private var commands: [String] = []
        var refuseCopy = true
        var server: ScriptedServer!

        static let bodies = (1...2).map {
            MailLab.message(id: "old-\($0)@lab.test", subject: "Pedido \($0)").replacingOccurrences(of: "\n", with: "\r\n")
        }

        init(uidplus: Bool, refuseCopy: Bool) throws {
            self.uidplus = uidplus
            self.refuseCopy = refuseCopy
            server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] old server ready\r\n") { [unowned self] line in
                self.answer(line)
            }
        }

        var recorded: [String] { lock.withLock { commands } }
        func allowCopy() { lock.withLock { refuseCopy = false } }

        func answer(_ line: String) -> String? {
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return nil }
            let tag = words[0], command = String(words[1])
            let upper = command.uppercased()
            lock.withLock { if !upper.hasPrefix("LOGIN") { commands.append(command) } }
            let capabilities = "IMAP4rev1" + (uidplus ? " UIDPLUS" : "")
            if upper.hasPrefix("CAPABILITY") { return "* CAPABILITY \(capabilities)\r\n\(tag) OK done\r\n" }
            if upper.hasPrefix("LOGIN") { return "\(tag) OK logged in\r\n" }
            if upper.hasPrefix("SELECT") || upper.hasPrefix("EXAMINE") {
                return "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 3] ok\r\n\(tag) OK [READ-WRITE] done\r\n"
            }
            if upper.hasPrefix("UID FETCH") && upper.contains("BODY.PEEK[]") {
                let fetches = Self.bodies.enumerated().map { index, body in
                    "* \(index + 1) FETCH (UID \(index + 1) RFC822.SIZE \(body.utf8.count) BODY[] {\(body.utf8.count)}\r\n\(body))\r\n"
                }
                return fetches.joined() + "\(tag) OK done\r\n"
            }
            if upper.hasPrefix("UID FETCH") {
                let fetches = Self.bodies.enumerated().map { "* \($0.offset + 1) FETCH (UID \($0.offset + 1) RFC822.SIZE \($0.element.utf8.count) FLAGS ())\r\n" }
                return fetches.joined() + "\(tag) OK done\r\n"
            }
            if upper.hasPrefix("UID SEARCH") { return "* SEARCH 1 2\r\n\(tag) OK done\r\n" }
            if upper.hasPrefix("UID COPY") {
                return lock.withLock { refuseCopy } ? "\(tag) NO [TRYCREATE] no such mailbox\r\n" : "\(tag) OK copied\r\n"
            }
            if upper.hasPrefix("UID STORE") { return "\(tag) OK stored\r\n" }
            if upper.hasPrefix("UID EXPUNGE") { return uidplus ? "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n\(tag) OK expunged\r\n" : "\(tag) BAD no UIDPLUS\r\n" }
            if upper.hasPrefix("EXPUNGE") { return "* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n\(tag) OK expunged\r\n" }
            if upper.hasPrefix("LOGOUT") { return "* BYE bye\r\n\(tag) OK done\r\n" }
            return "\(tag) BAD unknown\r\n"
        }
    }

    func configuration(port: Int, state: String) -> String {
        daemonConfiguration(state: state, mailboxes: """
            [mailbox.old]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(port)
            user = "u"
            password = "p"
            after_fetch = "move:Processed"
            import_existing = "all"
            timeout = "5s"

            """, contractMailboxes: ["old"])
    }

    func events(_ state: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: state + "/events")) ?? []).filter { $0.hasSuffix(".json") }.count
    }

    @Test(arguments: [true, false])
    func copyStoreExpungeOnlyAfterTheHandOver(uidplus: Bool) throws {
        let old = try OldIMAPServer(uidplus: uidplus, refuseCopy: true)
        defer { old.server.stop() }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", configuration(port: old.server.port, state: state), mode: 0o600)

        // The folder is missing: COPY is refused, so nothing is marked or expunged; the
        // messages are handed on all the same, and the failure is reported.
        let refused = try runCarteiro(["run", "--once", "--config", config])
        #expect(refused.status == 0, "\(refused.stderr)")
        #expect(refused.stderr.contains("after_fetch failed"), "\(refused.stderr)")
        #expect(refused.stderr.contains("TRYCREATE"), "\(refused.stderr)")
        #expect(events(state) == 2)
        let first = old.recorded
        #expect(first.contains { $0.uppercased().hasPrefix("UID COPY 1:2") })
        #expect(!first.contains { $0.uppercased().hasPrefix("UID STORE") || $0.uppercased().contains("EXPUNGE") })
        #expect(!first.contains { $0.uppercased().hasPrefix("UID MOVE") })

        // The folder exists now: the next poll fetches nothing again, and moves the two.
        old.allowCopy()
        let moved = try runCarteiro(["run", "--once", "--config", config])
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(!moved.stderr.contains("after_fetch failed"), "\(moved.stderr)")
        #expect(events(state) == 2)
        let second = Array(old.recorded.dropFirst(first.count)).map { $0.uppercased() }
        #expect(!second.contains { $0.contains("BODY.PEEK[]") }, "nothing fetched twice: \(second) / first: \(first)")
        let copy = try #require(second.firstIndex { $0.hasPrefix("UID COPY 1:2 \"PROCESSED\"") }, "\(second)")
        let store = try #require(second.firstIndex { $0.hasPrefix("UID STORE 1:2 +FLAGS.SILENT (\\DELETED)") }, "\(second)")
        let expunge = try #require(second.firstIndex { $0 == (uidplus ? "UID EXPUNGE 1:2" : "EXPUNGE") }, "\(second)")
        #expect(copy < store && store < expunge)
    }
}
