import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// Floods and trickles: every reply has an allowance in bytes, and a deadline.
extension HostileServerTests {
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

    // MARK: - The floor: a reply slower than 1 KB/s over `timeout` of waiting fails

    /// Bytes of `pattern`, one every quarter second, until the client goes: never silent for
    /// the 2 s timeout, and far below the floor.
    static func trickle(_ pattern: String, _ writer: ScriptedServer.Writer) {
        for byte in Array(pattern.utf8).cycled(10_000) {
            guard writer.write([byte]) else { return }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }

    /// Before the floor, each of these waited for the reply's own deadline or the poll's
    /// `max_poll_time` (10 minutes): `timeout` bounds only silence.
    static func expectBelowTheFloor(_ body: () throws -> Void) {
        let started = ContinuousClock.now
        do {
            try body()
            Issue.record("a trickled reply was waited for to its end")
        } catch let error as MailConnectionError {
            #expect(error.kind == .tooSlow)
            #expect(error.message.contains("below the floor of 1 KB/s"), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
        // The 2 s timeout of waiting, twice at most (a window starts when the reply does).
        #expect(ContinuousClock.now - started < .seconds(8))
    }

    @Test func anIMAPReplyBelowTheFloorFails() throws {
        let server = try Self.imap { _, command, writer in
            guard command.hasPrefix("UID FETCH") else { return false }
            Self.trickle("* 1 FETCH (UID 1 FLAGS ())\r\n", writer)
            return true
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server, timeout: .seconds(2)))
        Self.expectBelowTheFloor { _ = try client.fetch("UID FETCH 1:* (UID FLAGS)", bytes: 1 << 20) }
    }

    @Test func aPOP3ReplyBelowTheFloorFails() throws {
        let server = try Self.pop3 { command, writer in
            guard command.hasPrefix("UIDL") else { return false }
            Self.trickle("+OK\r\n1 one\r\n", writer)
            return true
        }
        defer { server.stop() }
        let client = POP3Client(session: try Self.session(server, .pop3, timeout: .seconds(2)))
        Self.expectBelowTheFloor { _ = try client.runMultiline("UIDL") }
    }

    @Test func anSMTPReplyBelowTheFloorFails() throws {
        let server = try Self.smtp { command, writer in
            guard command.hasPrefix("MAIL") else { return false }
            Self.trickle("250-ok\r\n", writer)
            return true
        }
        defer { server.stop() }
        // The reply's own deadline (maximumReplyTime) is far: the floor ends it first.
        let client = SMTPClient(session: try Self.session(server, .smtp, timeout: .seconds(2)), maximumReplyTime: .seconds(600))
        Self.expectBelowTheFloor { _ = try client.run("MAIL FROM:<a@b.example>") }
    }

    /// A reply that is slow to start but short (1.5 s of thought with a 2 s timeout, then "OK")
    /// is not held to the floor: only a stretch of `timeout` spent waiting is.
    @Test func aSlowButShortReplyIsNotTooSlow() throws {
        let server = try Self.imap { tag, command, writer in
            guard command.hasPrefix("NOOP") else { return false }
            Thread.sleep(forTimeInterval: 1.5)
            writer.write("\(tag) OK thought about it\r\n")
            return true
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server, timeout: .seconds(2)))
        let reply = try client.run("NOOP")
        #expect(reply.isOK)
    }

    // MARK: - Listings follow the folder's size

    /// A first poll with `import_existing = "unseen"` of a folder of 200,000 unseen messages:
    /// Dovecot answers the SEARCH in one 1.3 MB line, which used to be refused as "a line longer
    /// than 1048576 bytes" (the mailbox could never be polled). Its allowance follows EXISTS.
    @Test func aSearchOf200000UIDsIsOneLongLineAndAccepted() throws {
        let count = 200_000
        let line = "* SEARCH " + (1...count).map(String.init).joined(separator: " ") + "\r\n"
        #expect(line.utf8.count > 1 << 20)
        let listed = LockedFlag()
        let server = try Self.imap(exists: count, uidNext: "\(count + 1)") { tag, command, writer in
            if command.hasPrefix("UID SEARCH") { writer.write(line + "\(tag) OK search done\r\n"); return true }
            if command.hasPrefix("UID FETCH") && command.contains("RFC822.SIZE") {
                // The sizes of the newest two; the listing asked for them all.
                if command.contains("1:\(count)") { listed.set() }
                writer.write("* 199999 FETCH (UID 199999 RFC822.SIZE \(Self.body.utf8.count) FLAGS ())\r\n* 200000 FETCH (UID 200000 RFC822.SIZE \(Self.body.utf8.count) FLAGS ())\r\n\(tag) OK done\r\n")
                return true
            }
            if command.hasPrefix("UID FETCH") {
                writer.write("* 199999 FETCH (UID 199999 BODY[] {\(Self.body.utf8.count)}\r\n\(Self.body))\r\n\(tag) OK done\r\n")
                return true
            }
            return false
        }
        defer { server.stop() }
        let (result, events) = try Self.runOnce(server, importExisting: "unseen")
        #expect(!result.stderr.contains("longer than"), "\(result.stderr)")
        #expect(listed.value, "the sizes of all 200,000 were asked: \(result.stderr)")
        #expect(events.contains("<h1@b.example>"), "\(result.stderr)")
    }

    /// The allowance itself: a server answering a SEARCH of a 10-message folder with a 2 MB
    /// line is still cut (what it announced is what it may send).
    @Test func aSearchFarLongerThanTheFolderIsCut() throws {
        let line = "* SEARCH " + (1...300_000).map(String.init).joined(separator: " ") + "\r\n"
        let server = try Self.imap(exists: 10) { tag, command, writer in
            guard command.hasPrefix("UID SEARCH") else { return false }
            writer.write(line + "\(tag) OK search done\r\n")
            return true
        }
        defer { server.stop() }
        let client = IMAPClient(session: try Self.session(server))
        #expect { _ = try client.search("UID SEARCH UNSEEN", exists: 10) } throws: { ($0 as? MailConnectionError)?.kind == .protocolViolation }
    }
}

