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

    /// A configuration with one inbound mailbox `h` (contract `lab`) on a scripted server.
    static func configuration(state: String, port: Int, provider: String = "imap", password: String = "p", importExisting: String? = nil) -> String {
        daemonConfiguration(state: state, mailboxes: """
            [mailbox.h]
            type = "inbound"
            provider = "\(provider)"
            starttls = false
            server = "127.0.0.1"
            port = \(port)
            user = "u"
            password = "\(password)"
            timeout = "5s"
            \(importExisting.map { "import_existing = \"\($0)\"" } ?? "")

            """, contractMailboxes: ["h"])
    }

    /// `carteiro run --once` against `server` with one IMAP mailbox.
    static func runOnce(_ server: ScriptedServer, importExisting: String = "all") throws -> (ProcessResult, String) {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", Self.configuration(state: state, port: server.port, importExisting: importExisting), mode: 0o600)
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
        let config = try directory.write("carteiro.conf", Self.configuration(state: state, port: server.port, importExisting: "all"), mode: 0o600)
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        renumbered.set()
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("UIDs went backwards"), "\(second.stderr)")
        let events = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/events")) ?? []).filter { $0.hasSuffix(".json") }
        #expect(events.count == 2, "\(events)")
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
