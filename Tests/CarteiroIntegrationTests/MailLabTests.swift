import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// The lab's SMTP server does what the outbound tests will rely on: it stores what it accepts,
/// with the envelope, and refuses chosen recipients with the code asked for.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct MailLabTests {
    @Test func refusesChosenRecipientsAndStoresTheRest() throws {
        let lab = try requireLab()
        let endpoint = MailEndpoint(serviceProtocol: .smtp, host: "127.0.0.1", port: lab.smtpStarttlsPort, security: .starttlsRequired,
                                    tls: TLSSettings(caFile: lab.caFile, verify: true), timeout: .seconds(5))
        let session = try MailSession.open(endpoint, credentials: .init(user: "ana", password: Secret(MailLab.password(of: "ana"))))
        let smtp = SMTPClient(session: session)
        let marker = "lab-test-\(UUID().uuidString)"
        #expect(try smtp.run("MAIL FROM:<desk@lab.test>").code == 250)
        #expect(try smtp.run("RCPT TO:<ok@lab.test>").code == 250)
        let refused = try smtp.run("RCPT TO:<550-nobody@lab.test>")
        #expect(refused.code == 550)
        let deferred = try smtp.run("RCPT TO:<451-later@lab.test>")
        #expect(deferred.code == 451)
        #expect(try smtp.run("DATA").code == 354)
        try session.send(Array("Subject: \(marker)\r\n\r\nbody\r\n.\r\n".utf8))
        let accepted = try smtp.readReply(to: ".")
        #expect(accepted.code == 250)
        _ = try? smtp.run("QUIT")

        // Finished files only: the server writes a hidden temporary file first.
        let files = try FileManager.default.contentsOfDirectory(atPath: lab.smtpSpool).filter { $0.hasSuffix(".eml") && !$0.hasPrefix(".") }
        let stored = try files.first { try String(contentsOfFile: lab.smtpSpool + "/" + $0, encoding: .utf8).contains(marker) }
        let name = try #require(stored, "the accepted message is not in the lab's spool")
        let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lab.smtpSpool + "/" + name.replacingOccurrences(of: ".eml", with: ".json")))) as? [String: Any]
        #expect(envelope?["rcpt_tos"] as? [String] == ["ok@lab.test"])
        #expect(envelope?["mail_from"] as? String == "desk@lab.test")
        #expect(envelope?["auth_user"] as? String == "ana")
        #expect(envelope?["tls"] as? Bool == true)
    }

    /// PIPELINING (RFC 2920) as the lanes use it: offered on the plain and implicit-TLS
    /// listeners, not on the STARTTLS one; MAIL, every RCPT and DATA in one write, the replies
    /// read in order, each recipient with its own answer.
    @Test func pipelinedTransactionGetsEveryReplyInOrder() throws {
        let lab = try requireLab()
        func open(_ port: Int, _ security: MailEndpoint.Security) throws -> SMTPClient {
            let endpoint = MailEndpoint(serviceProtocol: .smtp, host: "127.0.0.1", port: port, security: security,
                                        tls: TLSSettings(caFile: lab.caFile, verify: true), timeout: .seconds(5))
            return SMTPClient(session: try MailSession.open(endpoint, credentials: nil))
        }
        let starttls = try open(lab.smtpStarttlsPort, .starttlsRequired)
        #expect(!starttls.offersPipelining)
        _ = try? starttls.run("QUIT")
        #expect(try open(lab.smtpTLSPort, .implicitTLS).offersPipelining)

        let smtp = try open(lab.smtpPlainPort, .plain)
        #expect(smtp.offersPipelining)
        let marker = "pipelined-\(UUID().uuidString)"
        let replies = try smtp.runPipelined(["MAIL FROM:<desk@lab.test>", "RCPT TO:<ok@lab.test>", "RCPT TO:<550-nobody@lab.test>",
                                             "RCPT TO:<451-later@lab.test>", "RCPT TO:<other@lab.test>", "DATA"])
        #expect(replies.map(\.code) == [250, 250, 550, 451, 250, 354])
        try smtp.session.send(Array("Subject: \(marker)\r\n\r\nbody\r\n.\r\n".utf8))
        #expect(try smtp.readReply(to: ".").code == 250)
        // All recipients refused: the server refuses DATA as well, and the session goes on.
        let refused = try smtp.runPipelined(["MAIL FROM:<desk@lab.test>", "RCPT TO:<550-nobody@lab.test>", "DATA"])
        #expect(refused.map(\.code).prefix(2) == [250, 550])
        #expect(refused[2].code >= 500)
        #expect(try smtp.run("RSET").code == 250)
        _ = try? smtp.run("QUIT")
        // Finished files only: the server writes a hidden temporary file first.
        let files = try FileManager.default.contentsOfDirectory(atPath: lab.smtpSpool).filter { $0.hasSuffix(".eml") && !$0.hasPrefix(".") }
        let stored = try files.first { try String(contentsOfFile: lab.smtpSpool + "/" + $0, encoding: .utf8).contains(marker) }
        let name = try #require(stored)
        let envelope = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lab.smtpSpool + "/" + name.replacingOccurrences(of: ".eml", with: ".json")))) as? [String: Any]
        #expect(envelope?["rcpt_tos"] as? [String] == ["ok@lab.test", "other@lab.test"])
    }
}
