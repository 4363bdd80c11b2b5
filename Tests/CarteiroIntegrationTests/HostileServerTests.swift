import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// Servers that lie, flood or trickle. Each case must end the poll (or the reply) with an
/// error that says what the server did, in bounded memory and time, and never trap.
struct HostileServerTests {
    /// An IMAP server that logs in and opens INBOX (one message, UID 1), and answers the
    /// other commands with `misbehave` (which returns false to let the default answer).
    static func imap(exists: Int = 1, uidNext: String = "2",
                     _ misbehave: @escaping @Sendable (_ tag: String, _ command: String, _ writer: ScriptedServer.Writer) -> Bool) throws -> ScriptedServer {
        try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] hostile\r\n") { line, writer in
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return }
            let tag = String(words[0]), command = words[1].uppercased()
            if command.hasPrefix("CAPABILITY") { writer.write("* CAPABILITY IMAP4rev1\r\n\(tag) OK done\r\n"); return }
            if command.hasPrefix("LOGIN") { writer.write("\(tag) OK logged in\r\n"); return }
            if command.hasPrefix("LOGOUT") { writer.write("* BYE bye\r\n\(tag) OK done\r\n"); return }
            if misbehave(tag, command, writer) { return }
            if command.hasPrefix("EXAMINE") || command.hasPrefix("SELECT") {
                writer.write("* \(exists) EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT \(uidNext)] ok\r\n\(tag) OK done\r\n")
                return
            }
            writer.write("\(tag) OK nothing\r\n")
        }
    }

    static let body = "From: a@b.example\r\nSubject: hostile\r\nMessage-ID: <h1@b.example>\r\n\r\nbody\r\n"

    static func session(_ server: ScriptedServer, _ service: MailEndpoint.ServiceProtocol = .imap, timeout: Duration = .seconds(5)) throws -> MailSession {
        let endpoint = MailEndpoint(serviceProtocol: service, host: "127.0.0.1", port: server.port,
                                    security: service == .smtp ? .plain : .starttlsOptional, tls: TLSSettings(), timeout: timeout)
        return try MailSession.open(endpoint, credentials: service == .smtp ? nil : .init(user: "u", password: Secret("p")))
    }

    /// `carteiro run --once` against `server` with one IMAP mailbox.
    static func runOnce(_ server: ScriptedServer, importExisting: String = "all") throws -> (ProcessResult, String) {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            import_existing = "\(importExisting)"
            timeout = "5s"

            """, contractMailboxes: ["h"]), mode: 0o600)
        let result = try runCarteiro(["run", "--once", "--config", config])
        let events = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/events")) ?? []).filter { $0.hasSuffix(".json") }
        let text = events.compactMap { try? String(contentsOfFile: state + "/events/" + $0, encoding: .utf8) }.joined(separator: "\n")
        return (result, text)
    }

    // MARK: - Impossible numbers, through the daemon

    @Test(arguments: ["4294967296", "-1", "0", "99999999999999999999999"])
    func aSearchUIDThatCannotBeOneFailsThePollNotTheDaemon(_ uid: String) throws {
        let server = try Self.imap { tag, command, writer in
            guard command.hasPrefix("UID SEARCH") else { return false }
            writer.write("* SEARCH 1 \(uid)\r\n\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let (result, _) = try Self.runOnce(server, importExisting: "unseen")
        #expect(!result.crashed, "the daemon died of signal \(result.status): \(result.stderr)")
        #expect(result.status == 1)
        #expect(result.stderr.contains("which cannot be a UID"), "\(result.stderr)")
    }

    @Test(arguments: ["4294967297", "0", "18446744073709551616"])
    func aListedUIDThatCannotBeOneFailsThePollNotTheDaemon(_ uid: String) throws {
        let server = try Self.imap { tag, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            writer.write("* 1 FETCH (UID \(uid) RFC822.SIZE 10 FLAGS ())\r\n\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let (result, _) = try Self.runOnce(server)
        #expect(!result.crashed, "the daemon died of signal \(result.status): \(result.stderr)")
        #expect(result.status == 1)
        #expect(result.stderr.contains("with a UID that cannot be one"), "\(result.stderr)")
    }

    /// RFC822.SIZE near 2^63 or 2^64 − 1 once trapped converting to Int; now such a message is
    /// oversize: its header is fetched and it is handed on, flagged.
    @Test(arguments: ["9223372036854775807", "18446744073709551615", "99999999999999999999999"])
    func anImpossibleSizeMakesTheMessageOversize(_ size: String) throws {
        let body = Self.body
        let server = try Self.imap { tag, command, writer in
            if command.contains("BODY.PEEK[HEADER]") {
                let header = String(body.prefix { $0 != "\r\n" }) + "\r\n"
                writer.write("* 1 FETCH (UID 1 BODY[HEADER] {\(header.utf8.count)}\r\n\(header))\r\n\(tag) OK done\r\n")
                return true
            }
            if command.contains("BODY.PEEK[]") {
                writer.write("\(tag) NO must not fetch the whole message\r\n")
                return true
            }
            guard command.hasPrefix("UID FETCH") else { return false }
            writer.write("* 1 FETCH (UID 1 RFC822.SIZE \(size) FLAGS ())\r\n\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let (result, events) = try Self.runOnce(server)
        #expect(!result.crashed, "the daemon died of signal \(result.status): \(result.stderr)")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(events.contains("\"oversize\""), "\(events)")
    }

    @Test func uidsThatGoBackwardsUnderOneUIDVALIDITYAreNotMissed() throws {
        // First poll: UID 50 handed on. Then the server renumbers (UIDNEXT 3, same
        // UIDVALIDITY) and holds a new message at UID 2: it must still become an event.
        let renumbered = LockedFlag()
        let server = try Self.imap(uidNext: "51") { tag, command, writer in
            let late = renumbered.value
            if command.hasPrefix("EXAMINE") {
                writer.write("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT \(late ? 3 : 51)] ok\r\n\(tag) OK done\r\n")
                return true
            }
            let uid = late ? 2 : 50
            let body = late ? Self.body.replacingOccurrences(of: "<h1@", with: "<h2@") : Self.body
            if command.contains("BODY.PEEK[]") {
                writer.write("* 1 FETCH (UID \(uid) RFC822.SIZE \(body.utf8.count) BODY[] {\(body.utf8.count)}\r\n\(body))\r\n\(tag) OK done\r\n")
                return true
            }
            guard command.hasPrefix("UID FETCH") else { return false }
            // "n:*" always includes the highest UID (RFC 3501 §6.4.8), as a real server does.
            writer.write("* 1 FETCH (UID \(uid) RFC822.SIZE \(body.utf8.count) FLAGS ())\r\n\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            import_existing = "all"
            timeout = "5s"

            """, contractMailboxes: ["h"]), mode: 0o600)
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        renumbered.set()
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("UIDs went backwards"), "\(second.stderr)")
        let events = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/events")) ?? []).filter { $0.hasSuffix(".json") }
        #expect(events.count == 2, "\(events)")
    }

    // MARK: - Duplicates that are not duplicates

    static func runPolls(_ server: ScriptedServer, provider: String, times: Int, between: () -> Void = {}) throws -> (state: String, events: [[String: Any]], results: [ProcessResult], directory: TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "\(provider)"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            import_existing = "all"
            timeout = "5s"

            """, contractMailboxes: ["h"]), mode: 0o600)
        var results: [ProcessResult] = []
        for index in 0..<times {
            if index > 0 { between() }
            results.append(try runCarteiro(["run", "--once", "--config", config]))
        }
        let spool = state + "/events"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }
        let events = names.compactMap { name in
            (try? Data(contentsOf: URL(fileURLWithPath: spool + "/" + name))).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
        return (state, events, results, directory)
    }

    /// Three different messages under one Message-ID are three events, and stay three when
    /// the folder gets a new UIDVALIDITY (each is still recognised).
    @Test func differentMessagesSharingAMessageIDAreNotSwallowed() throws {
        let bodies = (1...3).map { "From: a@b.example\r\nSubject: pedido \($0)\r\nMessage-ID: <same@b.example>\r\n\r\nbody \($0)\r\n" }
        let validity = LockedFlag()
        let server = try Self.imap(exists: 3, uidNext: "4") { tag, command, writer in
            if command.hasPrefix("EXAMINE") {
                writer.write("* 3 EXISTS\r\n* OK [UIDVALIDITY \(validity.value ? 8 : 7)] ok\r\n* OK [UIDNEXT 4] ok\r\n\(tag) OK done\r\n")
                return true
            }
            guard command.hasPrefix("UID FETCH") else { return false }
            let withBodies = command.contains("BODY.PEEK[]")
            writer.write(bodies.enumerated().map { index, body in
                "* \(index + 1) FETCH (UID \(index + 1) RFC822.SIZE \(body.utf8.count)" + (withBodies ? " BODY[] {\(body.utf8.count)}\r\n\(body))\r\n" : " FLAGS ())\r\n")
            }.joined() + "\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let run = try Self.runPolls(server, provider: "imap", times: 2) { validity.set() }
        #expect(run.results.allSatisfy { $0.status == 0 }, "\(run.results.map(\.stderr))")
        let subjects = run.events.compactMap { ($0["message"] as? [String: Any])?["subject"] as? String }.sorted()
        #expect(subjects == ["pedido 1", "pedido 2", "pedido 3"])
    }

    /// A POP3 server that repeats a UIDL: each message is still one event with its own raw
    /// file, and the next poll takes none of them again.
    @Test func repeatedPOP3UIDLsAreEachAMessage() throws {
        let bodies = (1...3).map { "From: a@b.example\r\nSubject: copy \($0)\r\nMessage-ID: <pop\($0)@b.example>\r\n\r\nbody \($0)\r\n" }
        let server = try Self.pop3 { command, writer in
            if command.hasPrefix("UIDL") { writer.write("+OK\r\n1 dup\r\n2 dup\r\n3 other\r\n.\r\n"); return true }
            if command.hasPrefix("LIST") { writer.write("+OK\r\n" + bodies.enumerated().map { "\($0.offset + 1) \($0.element.utf8.count)\r\n" }.joined() + ".\r\n"); return true }
            if command.hasPrefix("RETR "), let number = Int(command.dropFirst(5)), (1...3).contains(number) {
                writer.write("+OK\r\n" + bodies[number - 1] + ".\r\n")
                return true
            }
            return false
        }
        defer { server.stop() }
        let run = try Self.runPolls(server, provider: "pop", times: 2)
        #expect(run.results.allSatisfy { $0.status == 0 }, "\(run.results.map(\.stderr))")
        #expect(run.results[0].stderr.contains("the same UIDL for different messages"), "\(run.results[0].stderr)")
        let subjects = run.events.compactMap { ($0["message"] as? [String: Any])?["subject"] as? String }.sorted()
        #expect(subjects == ["copy 1", "copy 2", "copy 3"])
        let raws = Set(run.events.compactMap { $0["raw"] as? String })
        #expect(raws.count == 3)
        for raw in raws {
            let text = (try? String(contentsOfFile: run.state + "/" + raw, encoding: .utf8)) ?? ""
            let subject = run.events.first { $0["raw"] as? String == raw }.flatMap { ($0["message"] as? [String: Any])?["subject"] as? String } ?? "?"
            #expect(text.contains("Subject: \(subject)"), "the event points at its own message")
        }
    }

    // MARK: - One bad message

    /// The UIDs of an IMAP set ("1:3,5", "2:*") in a folder whose highest UID is `highest`.
    static func uids(_ set: Substring, highest: Int) -> [Int] {
        set.split(separator: ",").flatMap { part -> [Int] in
            let ends = part.split(separator: ":").map { $0 == "*" ? highest : Int($0) ?? 0 }
            guard let first = ends.first, let last = ends.last else { return [] }
            return Array(min(first, last)...max(first, last))
        }
    }

    /// The server drops the connection whenever it is asked for message 2's body (as Dovecot
    /// does with a message it cannot read). The others must still be handed on; message 2,
    /// after failing alone poll after poll, is handed on as `message.unreadable`.
    @Test func aMessageTheServerCannotSendStopsNothingElse() throws {
        let bodies = (1...3).map { "From: a@b.example\r\nSubject: pedido \($0)\r\nMessage-ID: <bad\($0)@b.example>\r\n\r\nbody\r\n" }
        let server = try Self.imap(exists: 3, uidNext: "4") { tag, command, writer in
            guard command.hasPrefix("UID FETCH ") else { return false }
            let set = command.dropFirst(10).prefix { $0 != " " }
            let uids = Self.uids(set, highest: 3).filter { (1...3).contains($0) }
            if command.contains("BODY.PEEK[]") {
                if uids.contains(2) { writer.hangUp(); return true }
                writer.write(uids.map { uid in
                    let body = bodies[uid - 1]
                    return "* \(uid) FETCH (UID \(uid) RFC822.SIZE \(body.utf8.count) BODY[] {\(body.utf8.count)}\r\n\(body))\r\n"
                }.joined() + "\(tag) OK done\r\n")
                return true
            }
            writer.write(uids.map { "* \($0) FETCH (UID \($0) RFC822.SIZE \(bodies[$0 - 1].utf8.count) FLAGS ())\r\n" }.joined() + "\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let run = try Self.runPolls(server, provider: "imap", times: 6)
        #expect(run.results.allSatisfy { !$0.crashed })
        // Four polls fail (the batch, then message 2 alone three times); then it is given up.
        #expect(run.results.map(\.status) == [1, 1, 1, 1, 0, 0], "\(run.results.map(\.stderr))")
        #expect(run.results[0].stderr.contains("a batch could not be fetched; its messages will be fetched one at a time"))
        #expect(run.results[4].stderr.contains("message handed on as unreadable"), "\(run.results[4].stderr)")
        let types = run.events.map { ($0["type"] as? String ?? "", ($0["message"] as? [String: Any])?["subject"] as? String ?? "") }.sorted { $0.1 < $1.1 }
        #expect(types.map(\.0).sorted() == ["message.unreadable", "request.new", "request.new"], "\(types)")
        #expect(Set(types.map(\.1)) == ["", "pedido 1", "pedido 3"])
        let unreadable = try #require(run.events.first { $0["type"] as? String == "message.unreadable" })
        #expect(unreadable["id"] as? String == "h/7/2")
        #expect(unreadable["flags"] as? [String] == ["unreadable"])
        #expect(((unreadable["problems"] as? [String])?.first ?? "").contains("failed to send this message 3 times"), "\(unreadable)")
        // The sixth poll finds nothing new: nothing is handed on twice.
        #expect(run.events.count == 3)
    }

    /// A POP3 server that refuses one RETR (`-ERR`): the same, through POP3.
    @Test func aRETRRefusedForOneMessageStopsNothingElse() throws {
        let bodies = (1...3).map { "From: a@b.example\r\nSubject: pop \($0)\r\nMessage-ID: <popbad\($0)@b.example>\r\n\r\nbody\r\n" }
        let server = try Self.pop3 { command, writer in
            if command.hasPrefix("UIDL") { writer.write("+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n"); return true }
            if command.hasPrefix("LIST") { writer.write("+OK\r\n" + bodies.enumerated().map { "\($0.offset + 1) \($0.element.utf8.count)\r\n" }.joined() + ".\r\n"); return true }
            if command.hasPrefix("RETR "), let number = Int(command.dropFirst(5)), (1...3).contains(number) {
                writer.write(number == 2 ? "-ERR cannot read message 2\r\n" : "+OK\r\n" + bodies[number - 1] + ".\r\n")
                return true
            }
            return false
        }
        defer { server.stop() }
        let run = try Self.runPolls(server, provider: "pop", times: 6)
        #expect(run.results.allSatisfy { !$0.crashed })
        #expect(run.results.last?.status == 0, "\(run.results.map(\.stderr))")
        let types = run.events.compactMap { $0["type"] as? String }.sorted()
        #expect(types == ["message.unreadable", "request.new", "request.new"], "\(run.results.map(\.stderr))")
        #expect(run.events.first { $0["type"] as? String == "message.unreadable" }?["id"] as? String == "h/uidl/u2")
    }

    // MARK: - The environment

    /// Started with umask 000, Carteiro still writes nothing that every user may change.
    @Test func umask000LeavesNothingWorldWritable() throws {
        let body = Self.body
        let server = try Self.imap { tag, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            let withBody = command.contains("BODY.PEEK[]")
            writer.write("* 1 FETCH (UID 1 RFC822.SIZE \(body.utf8.count)" + (withBody ? " BODY[] {\(body.utf8.count)}\r\n\(body))\r\n" : " FLAGS ())\r\n") + "\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "p"
            import_existing = "all"

            """, contractMailboxes: ["h"]), mode: 0o600)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "umask 000; exec \"$0\" run --once --config \"$1\"", carteiroExecutable(), config]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        var checked = 0
        let walker = FileManager.default.enumerator(atPath: state)
        while let relative = walker?.nextObject() as? String {
            var info = stat()
            guard lstat(state + "/" + relative, &info) == 0 else { continue }
            #expect(info.st_mode & 0o002 == 0, "\(relative) is world-writable (mode \(String(info.st_mode & 0o777, radix: 8)))")
            #expect(info.st_mode & 0o020 == 0 || (info.st_mode & S_IFMT) == S_IFDIR, "\(relative) is group-writable")
            checked += 1
        }
        #expect(checked > 5, "the run wrote its state")
        #expect(FileManager.default.fileExists(atPath: state + "/mailboxes/h/message-keys"))
    }

    // MARK: - Servers that quote the password back

    /// A server that puts the login (and its base64 form) in its refusal: the password must
    /// reach no log line, no status file, no event, and not test-mailbox's output.
    @Test func aServerThatEchoesTheCredentialsNeverGetsThemLogged() throws {
        let password = "hunter2-secret-XYZ"
        let encoded = Data("\0u\0\(password)".utf8).base64EncodedString()
        let server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] echo\r\n") { line in
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return nil }
            let tag = words[0], command = String(words[1])
            if command.uppercased().hasPrefix("CAPABILITY") { return "* CAPABILITY IMAP4rev1\r\n\(tag) OK done\r\n" }
            if command.uppercased().hasPrefix("LOGIN") { return "\(tag) NO [AUTHENTICATIONFAILED] you sent \(command) (\(encoded))\r\n" }
            return "\(tag) BAD\r\n"
        }
        defer { server.stop() }
        let tested = try testMailbox(FakeServerTests.imapMailbox(port: server.port, extra: "starttls = false").replacingOccurrences(of: "plain-secret-123", with: password))
        #expect(tested.failure != nil)
        #expect(tested.text.contains("you sent LOGIN"), "the server's reply is still shown: \(tested.text)")
        #expect(!tested.text.contains(password) && !tested.text.contains(encoded), "\(tested.text)")

        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(server.port)
            user = "u"
            password = "\(password)"
            timeout = "5s"

            """, contractMailboxes: ["h"]), mode: 0o600)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("you sent LOGIN"), "\(result.stderr)")
        #expect(!result.stderr.contains(password) && !result.stderr.contains(encoded), "\(result.stderr)")
        let status = (try? String(contentsOfFile: state + "/status.json", encoding: .utf8)) ?? ""
        #expect(status.contains("you sent LOGIN"), "\(status)")
        #expect(!status.contains(password), "\(status)")
    }

    // MARK: - Floods: every reply has an allowance

    @Test func endlessUntaggedLinesAreCutAtTheAllowance() throws {
        let server = try Self.imap { _, command, writer in
            guard command.hasPrefix("NOOP") else { return false }
            let chunk = String(repeating: "* OK flood flood flood flood flood flood\r\n", count: 2000)
            while writer.write(chunk) {}
            return true
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server))
        do {
            _ = try client.run("NOOP")
            Issue.record("an endless reply was read to its end")
        } catch {
            #expect(error.kind == .tooLarge)
            #expect(error.message.contains("more than \(IMAPClient.maximumResponseBytes) bytes in answer to NOOP"), "\(error.message)")
        }
    }

    @Test func endlessFetchResponsesAreCutAtTheAllowance() throws {
        let server = try Self.imap { _, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            var n = 0
            while true {
                let chunk = (0..<500).map { "* \(n + $0) FETCH (UID \(n + $0 + 1) FLAGS ())\r\n" }.joined()
                n += 500
                if !writer.write(chunk) { return true }
            }
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server))
        #expect { _ = try client.fetch("UID FETCH 1:* (UID FLAGS)", bytes: 1 << 20) } throws: { ($0 as? MailConnectionError)?.kind == .tooLarge }
    }

    @Test func aChainOfLiteralsIsCutAtTheAllowance() throws {
        let server = try Self.imap { _, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            let literal = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
            _ = writer.write("* OK [ALERT] {\(1 << 20)}\r\n")
            while writer.write(literal) && writer.write(" {\(1 << 20)}\r\n") {}
            return true
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server))
        #expect { _ = try client.fetch("UID FETCH 1 (UID BODY.PEEK[])", bytes: 4 << 20) } throws: { ($0 as? MailConnectionError)?.kind == .tooLarge }
    }

    static func pop3(_ misbehave: @escaping @Sendable (_ command: String, _ writer: ScriptedServer.Writer) -> Bool) throws -> ScriptedServer {
        try ScriptedServer(greeting: "+OK hostile POP3\r\n") { line, writer in
            let command = line.uppercased()
            if misbehave(command, writer) { return }
            if command.hasPrefix("CAPA") { writer.write("+OK\r\nUSER\r\nUIDL\r\n.\r\n"); return }
            if command.hasPrefix("QUIT") { writer.write("+OK bye\r\n"); return }
            writer.write("+OK\r\n")
        }
    }

    @Test func aRETRThatNeverEndsIsCutAtTheAllowance() throws {
        let server = try Self.pop3 { command, writer in
            guard command.hasPrefix("RETR") else { return false }
            _ = writer.write("+OK message follows\r\n")
            let chunk = String(repeating: "Received: from flood\r\n", count: 5000)
            while writer.write(chunk) {}
            return true
        }
        defer { server.stop() }
        let client = POP3Client(session: try Self.session(server, .pop3))
        #expect { _ = try client.retrieve("RETR 1", bytes: 2 << 20) } throws: { ($0 as? MailConnectionError)?.kind == .tooLarge }
    }

    @Test func aUIDLThatNeverEndsIsCutAtTheAllowance() throws {
        let server = try Self.pop3 { command, writer in
            guard command.hasPrefix("UIDL") else { return false }
            _ = writer.write("+OK\r\n")
            var n = 0
            while true {
                let chunk = (0..<2000).map { "\(n + $0 + 1) uidl-\(n + $0)\r\n" }.joined()
                n += 2000
                if !writer.write(chunk) { return true }
            }
        }
        defer { server.stop() }
        let client = POP3Client(session: try Self.session(server, .pop3))
        #expect { _ = try client.runMultiline("UIDL") } throws: { ($0 as? MailConnectionError)?.kind == .tooLarge }
    }

    static func smtp(_ misbehave: @escaping @Sendable (_ command: String, _ writer: ScriptedServer.Writer) -> Bool) throws -> ScriptedServer {
        try ScriptedServer(greeting: "220 hostile ESMTP\r\n") { line, writer in
            let command = line.uppercased()
            if command.hasPrefix("EHLO") { writer.write("250-hostile\r\n250 8BITMIME\r\n"); return }
            if misbehave(command, writer) { return }
            if command.hasPrefix("QUIT") { writer.write("221 bye\r\n"); return }
            writer.write("250 ok\r\n")
        }
    }

    @Test func anSMTPReplyThatNeverEndsIsCutAtTheAllowance() throws {
        let server = try Self.smtp { command, writer in
            guard command.hasPrefix("MAIL") else { return false }
            let chunk = String(repeating: "250-still going\r\n", count: 1000)
            while writer.write(chunk) {}
            return true
        }
        defer { server.stop() }
        let client = SMTPClient(session: try Self.session(server, .smtp))
        #expect { _ = try client.run("MAIL FROM:<a@b.example>") } throws: { ($0 as? MailConnectionError)?.kind == .tooLarge }
    }

    // MARK: - Trickles: every reply and every poll has a deadline

    @Test func anSMTPReplyTrickledOneByteAtATimeMeetsItsDeadline() throws {
        let server = try Self.smtp { command, writer in
            guard command.hasPrefix("MAIL") else { return false }
            for byte in Array("250-ok\r\n".utf8).cycled(200) {
                guard writer.write([byte]) else { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return true
        }
        defer { server.stop() }
        // Each byte comes well within the 5 s timeout; only the reply's own deadline ends it.
        let client = SMTPClient(session: try Self.session(server, .smtp), maximumReplyTime: .seconds(2))
        let started = ContinuousClock.now
        #expect { _ = try client.run("MAIL FROM:<a@b.example>") } throws: { ($0 as? MailConnectionError)?.kind == .tooSlow }
        #expect(ContinuousClock.now - started < .seconds(15))
    }

    @Test func aPollTrickledOneByteAtATimeMeetsItsDeadline() throws {
        let server = try Self.imap { _, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            for byte in Array("* 1 FETCH (UID 1 FLAGS ())\r\n".utf8).cycled(1000) {
                guard writer.write([byte]) else { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return true
        }
        defer { server.stop() }
        let session = try Self.session(server)
        session.sessionDeadline = ContinuousClock.now + .seconds(2)
        let client = IMAPClient(session: session)
        let started = ContinuousClock.now
        do {
            _ = try client.fetch("UID FETCH 1:* (UID FLAGS)", bytes: 1 << 20)
            Issue.record("a trickled reply was waited for to its end")
        } catch {
            #expect(error.kind == .tooSlow)
            #expect(error.message.contains("the poll did not finish in the time allowed"), "\(error.message)")
        }
        #expect(ContinuousClock.now - started < .seconds(15))
    }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

extension Array {
    func cycled(_ times: Int) -> [Element] { (0..<times).flatMap { _ in self } }
}
