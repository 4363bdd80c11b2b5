import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// Messages that look alike but are not, and servers that repeat or renumber.
extension HostileServerTests {
    // MARK: - Duplicates that are not duplicates

    static func runPolls(_ server: ScriptedServer, provider: String, times: Int, between: () -> Void = {}) throws -> (state: String, events: [[String: Any]], results: [ProcessResult], directory: TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", Self.configuration(state: state, port: server.port, provider: provider, importExisting: "all"), mode: 0o600)
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
}
