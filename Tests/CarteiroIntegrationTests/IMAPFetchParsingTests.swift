import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// The IMAP FETCH reader against a scripted server that sends the shapes real servers send
/// (and some they should not): literals, quoted strings, NIL, nested lists, odd item order.
struct IMAPFetchParsingTests {
    static func session(replying fetchReply: String) throws -> (ScriptedServer, IMAPClient) {
        let server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] fake\r\n") { line in
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return nil }
            let tag = words[0], command = words[1].uppercased()
            if command.hasPrefix("CAPABILITY") { return "* CAPABILITY IMAP4rev1\r\n\(tag) OK done\r\n" }
            if command.hasPrefix("LOGIN") { return "\(tag) OK logged in\r\n" }
            if command.hasPrefix("UID FETCH") { return fetchReply.replacingOccurrences(of: "TAG", with: String(tag)) }
            return "\(tag) OK\r\n"
        }
        let endpoint = MailEndpoint(serviceProtocol: .imap, host: "127.0.0.1", port: server.port, security: .starttlsOptional,
                                    tls: TLSSettings(), timeout: .seconds(3))
        let session = try MailSession.open(endpoint, credentials: .init(user: "u", password: Secret("p")))
        return (server, IMAPClient(session: session))
    }

    @Test func literalsQuotedStringsListsAndNIL() throws {
        let body = "Subject: oi\r\n\r\nolá (com parênteses) e {chaves}\r\n"
        let size = body.utf8.count
        let reply = "* 1 FETCH (UID 7 RFC822.SIZE \(size) FLAGS (\\Seen \\Answered) BODY[] {\(size)}\r\n\(body))\r\n"
            + "* 2 FETCH (BODY[] \"quoted \\\"body\\\"\" UID 8 FLAGS ())\r\n"
            + "* 3 FETCH (UID 9 BODY[] NIL)\r\n"
            + "* 4 EXISTS\r\n"
            + "TAG OK done\r\n"
        let (server, client) = try Self.session(replying: reply)
        defer { server.stop() }
        let (responses, status) = try client.fetch("UID FETCH 7:9 (UID RFC822.SIZE BODY.PEEK[])", bytes: 1 << 20)
        #expect(status.isOK)
        #expect(responses.map(\.uid) == [7, 8, 9])
        #expect(responses[0].items["BODY[]"]?.bytes == Array(body.utf8))
        #expect(responses[0].items["RFC822.SIZE"]?.number == UInt64(size))
        if case .list(let flags)? = responses[0].items["FLAGS"] { #expect(flags.count == 2) } else { Issue.record("FLAGS is not a list") }
        #expect(responses[1].items["BODY[]"]?.bytes == Array("quoted \"body\"".utf8))
        if case .nil_? = responses[2].items["BODY[]"] {} else { Issue.record("NIL was not read as NIL") }
        #expect(status.untagged == ["* 4 EXISTS"])
    }

    @Test func aLiteralLargerThanAllowedIsRefusedNotRead() throws {
        let (server, client) = try Self.session(replying: "* 1 FETCH (UID 7 BODY[] {999999999999}\r\n")
        defer { server.stop() }
        client.maximumFetchLiteral = 1 << 20
        do {
            _ = try client.fetch("UID FETCH 7 (UID BODY.PEEK[])", bytes: 1 << 20)
            Issue.record("a 1 TB literal was accepted")
        } catch {
            #expect(error.kind == .protocolViolation)
            #expect(error.message.contains("999999999999-byte literal"))
        }
    }

    @Test func aResponseCutShortIsAnErrorNotAHang() throws {
        let (server, client) = try Self.session(replying: "* 1 FETCH (UID 7 BODY[] {100}\r\nonly a few bytes")
        defer { server.stop() }
        let started = ContinuousClock.now
        #expect(throws: MailConnectionError.self) { _ = try client.fetch("UID FETCH 7 (UID BODY.PEEK[])", bytes: 1 << 20) }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
