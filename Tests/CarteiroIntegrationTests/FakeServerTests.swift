import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroDaemon
import CarteiroTesting

/// Servers that the real lab cannot play: silent, lying, or lacking STARTTLS or AUTH.
struct FakeServerTests {
    /// An IMAP server without STARTTLS that accepts LOGIN in plain text.
    static func plainIMAPServer() throws -> ScriptedServer {
        try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] fake ready\r\n") { line in
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return nil }
            let tag = words[0], command = words[1].uppercased()
            if command.hasPrefix("CAPABILITY") { return "* CAPABILITY IMAP4rev1\r\n\(tag) OK done\r\n" }
            if command.hasPrefix("LOGIN") { return "\(tag) OK logged in\r\n" }
            if command.hasPrefix("EXAMINE") { return "* 2 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 3] ok\r\n\(tag) OK [READ-ONLY] done\r\n" }
            if command.hasPrefix("UID SEARCH") { return "* SEARCH 2\r\n\(tag) OK done\r\n" }
            if command.hasPrefix("LOGOUT") { return "* BYE bye\r\n\(tag) OK done\r\n" }
            return "\(tag) BAD unknown\r\n"
        }
    }

    static func imapMailbox(port: Int, timeout: String = "2s", extra: String = "") -> String {
        """
        type = "inbound"
        provider = "imap"
        server = "127.0.0.1"
        port = \(port)
        user = "someone"
        password = "plain-secret-123"
        timeout = "\(timeout)"
        \(extra)
        """
    }

    @Test func starttlsDemandedButNotOffered() throws {
        let server = try Self.plainIMAPServer()
        defer { server.stop() }
        let run = try testMailbox(Self.imapMailbox(port: server.port))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .starttlsNotOffered)
        #expect(error.message.contains("does not offer STARTTLS, and this mailbox demands it"))
    }

    @Test func starttlsFalseAllowsPlainTextAndSaysSo() throws {
        let server = try Self.plainIMAPServer()
        defer { server.stop() }
        let run = try testMailbox(Self.imapMailbox(port: server.port, extra: "starttls = false"))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("in PLAIN TEXT") })
        #expect(run.lines.contains("  folder INBOX: 2 messages, 1 unseen; UIDVALIDITY 7, next UID 3"))
        #expect(!run.text.contains("plain-secret-123"))
    }

    @Test func testMailboxShowsTheDescription() throws {
        let server = try Self.plainIMAPServer()
        defer { server.stop() }
        let run = try testMailbox(Self.imapMailbox(port: server.port, extra: "starttls = false\ndescription = \"ACME support inbox\""))
        #expect(run.lines.first?.hasPrefix("mailbox m (ACME support inbox): inbound imap") == true, "\(run.text)")
    }

    /// Implicit TLS configured on a plain-text SMTP port: the hint names the SMTP key
    /// (tls = "starttls"), not the inbound one.
    @Test func implicitTLSOnAPlainSMTPPortHintsTheSMTPKey() throws {
        let server = try ScriptedServer(greeting: "220 plain ESMTP\r\n")
        defer { server.stop() }
        let run = try testMailbox("""
        type = "outbound"
        server = "127.0.0.1"
        port = \(server.port)
        sender = "desk@lab.test"
        tls = "tls"
        timeout = "3s"
        """)
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .tlsFailed, "\(error)")
        #expect(error.message.contains("for STARTTLS use tls = \"starttls\""), "\(error.message)")
        #expect(!error.message.contains("provider"))
    }

    @Test func serverThatAcceptsAndNeverAnswers() throws {
        let server = try ScriptedServer(greeting: nil)
        defer { server.stop() }
        let started = ContinuousClock.now
        let run = try testMailbox(Self.imapMailbox(port: server.port, timeout: "1s"))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .noAnswer)
        #expect(error.message.contains("accepted the connection but did not finish the IMAP greeting"))
        #expect(error.message.contains("it sent nothing at all"))
        // Bounded by the mailbox's timeout, not by libcurl's defaults or the server's patience.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// A greeting in another protocol is recognised at once (not after the whole timeout) and
    /// named: IMAP configured on a POP3 or SMTP port, POP3 on an IMAP port.
    @Test(arguments: [("220 smtp.example ESMTP", "SMTP (or FTP)", "imap"), ("+OK Dovecot ready.", "POP3", "imap"),
                      ("* OK [CAPABILITY IMAP4rev1] Dovecot ready.", "IMAP", "pop"), ("SSH-2.0-OpenSSH_9.2", "SSH", "imap")])
    func serverSpeakingAnotherProtocol(_ greeting: String, _ speaks: String, _ provider: String) throws {
        let server = try ScriptedServer(greeting: greeting + "\r\n")
        defer { server.stop() }
        let started = ContinuousClock.now
        let run = try testMailbox(Self.imapMailbox(port: server.port, timeout: "20s").replacingOccurrences(of: "provider = \"imap\"", with: "provider = \"\(provider)\""))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .protocolViolation, "\(error)")
        #expect(error.message.contains("port \(server.port) of 127.0.0.1 speaks \(speaks), not \(provider == "imap" ? "IMAP" : "POP3")"), "\(error.message)")
        #expect(error.description.contains(greeting))
        #expect(ContinuousClock.now - started < .seconds(10), "waited for the timeout")
    }

    @Test func smtpWithoutAUTHWhenAuthIsRequired() throws {
        let server = try ScriptedServer(greeting: "220 fake ESMTP\r\n") { line in
            let verb = line.split(separator: " ").first?.uppercased() ?? ""
            switch verb {
            case "EHLO": return "250-fake\r\n250 SIZE 1000\r\n"
            case "QUIT": return "221 bye\r\n"
            default: return "502 no\r\n"
            }
        }
        defer { server.stop() }
        let run = try testMailbox("""
        type = "outbound"
        server = "127.0.0.1"
        port = \(server.port)
        sender = "desk@lab.test"
        tls = "none"
        auth = true
        user = "desk"
        password = "smtp-secret-99"
        timeout = "2s"
        """)
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .authNotOffered)
        #expect(!run.text.contains("smtp-secret-99"))
    }

    @Test func unknownMailboxNameSuggestsTheNearest() throws {
        let outcome = ConfigurationFile.load(text: MailLab.configuration(name: "acme-in", mailbox: Self.imapMailbox(port: 1)), file: "x.conf")
        let configuration = try #require(outcome.configuration)
        let tester = MailboxTester(configuration: configuration, secrets: SecretResolver(environment: [:]), report: { _ in })
        guard case .failure(.configuration(let text)) = tester.test("acme-inn") else {
            Issue.record("expected a configuration failure")
            return
        }
        #expect(text.hasPrefix("there is no mailbox named \"acme-inn\"; did you mean \"acme-in\"?"))
    }
}
