import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// One message a server cannot send must not stop the mailbox; and the environment Carteiro starts in.
extension HostileServerTests {
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
    /// after failing alone poll after poll, is handed on as `message.unreadable`. Once alone,
    /// its failure stops nothing: the poll goes on without it on a new connection (before,
    /// each of its failures ended the poll, and message 3 waited for it to be given up).
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
        // The first poll fails (the batch); the next three give message 2 a strike each and go
        // on (message 3 is handed on in the second); at its third it is handed on as unreadable.
        #expect(run.results.map(\.status) == [1, 0, 0, 0, 0, 0], "\(run.results.map(\.stderr))")
        #expect(run.results[0].stderr.contains("a batch could not be fetched; its messages will be fetched one at a time"))
        #expect(run.results[1].stderr.contains("going on without a message that broke the connection"), "\(run.results[1].stderr)")
        #expect(run.results[3].stderr.contains("message handed on as unreadable"), "\(run.results[3].stderr)")
        let types = run.events.map { ($0["type"] as? String ?? "", ($0["message"] as? [String: Any])?["subject"] as? String ?? "") }.sorted { $0.1 < $1.1 }
        #expect(types.map(\.0).sorted() == ["message.unreadable", "request.new", "request.new"], "\(types)")
        #expect(Set(types.map(\.1)) == ["", "pedido 1", "pedido 3"])
        let unreadable = try #require(run.events.first { $0["type"] as? String == "message.unreadable" })
        #expect(unreadable["id"] as? String == "h/7/2")
        #expect(unreadable["flags"] as? [String] == ["unreadable"])
        let problem = (unreadable["problems"] as? [String])?.first ?? ""
        #expect(problem.contains("failed to send this message 3 times"), "\(unreadable)")
        // The sixth poll finds nothing new: nothing is handed on twice.
        #expect(run.events.count == 3)
    }

    /// Four messages whose RFC822.SIZE says 1,000 bytes but whose bodies are 2 MB (past the
    /// allowance the size gives: the connection is abandoned at each), between two good ones.
    /// Each liar gets its strike in the same poll and the poll goes on: the good ones are handed
    /// on in the second poll and all four liars are given up by the fourth (before: one strike
    /// a poll, the good ones waiting behind them, thirteen polls).
    @Test func eachLyingMessageGetsItsStrikeAndThePollGoesOn() throws {
        let lie = "From: a@b.example\r\nSubject: liar\r\n\r\n" + String(repeating: "x", count: 2 << 20) + "\r\n"
        let good = (5...6).map { "From: a@b.example\r\nSubject: good \($0)\r\nMessage-ID: <good\($0)@b.example>\r\n\r\nbody\r\n" }
        @Sendable func body(_ uid: Int) -> String { uid <= 4 ? lie : good[uid - 5] }
        let server = try Self.imap(exists: 6, uidNext: "7") { tag, command, writer in
            guard command.hasPrefix("UID FETCH ") else { return false }
            let set = command.dropFirst(10).prefix { $0 != " " }
            let uids = Self.uids(set, highest: 6).filter { (1...6).contains($0) }
            if command.contains("BODY.PEEK[]") {
                for uid in uids {
                    let text = body(uid)
                    guard writer.write("* \(uid) FETCH (UID \(uid) BODY[] {\(text.utf8.count)}\r\n\(text))\r\n") else { return true }
                }
                writer.write("\(tag) OK done\r\n")
                return true
            }
            writer.write(uids.map { "* \($0) FETCH (UID \($0) RFC822.SIZE \($0 <= 4 ? 1000 : body($0).utf8.count) FLAGS ())\r\n" }.joined() + "\(tag) OK done\r\n")
            return true
        }
        defer { server.stop() }
        let run = try Self.runPolls(server, provider: "imap", times: 5)
        #expect(run.results.allSatisfy { !$0.crashed })
        #expect(run.results.map(\.status) == [1, 0, 0, 0, 0], "\(run.results.map(\.stderr))")
        #expect(run.results[1].stderr.components(separatedBy: "going on without a message that broke the connection").count - 1 == 4, "\(run.results[1].stderr)")
        #expect(run.results[3].stderr.components(separatedBy: "message handed on as unreadable").count - 1 == 4, "\(run.results[3].stderr)")
        let types = run.events.compactMap { $0["type"] as? String }.sorted()
        #expect(types == ["message.unreadable", "message.unreadable", "message.unreadable", "message.unreadable", "request.new", "request.new"], "\(types)")
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
        // The batch fails the first poll; then message 2 alone gets a strike a poll while the
        // poll goes on (the connection is fine after -ERR), and is given up at the third.
        #expect(run.results.map(\.status) == [1, 0, 0, 0, 0, 0], "\(run.results.map(\.stderr))")
        #expect(run.results[3].stderr.contains("message handed on as unreadable"), "\(run.results[3].stderr)")
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
        let config = try directory.write("carteiro.conf", Self.configuration(state: state, port: server.port, importExisting: "all"), mode: 0o600)
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
}
