import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// `test-mailbox` against the lab's real SMTP server: STARTTLS, implicit TLS, plain text.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OutboundMailboxTests {
    func outbound(tls: String, port: Int, auth: Bool, password: String? = nil, caFile: Bool = true, sender: String = "desk@lab.test") throws -> String {
        let lab = try requireLab()
        var text = """
        type = "outbound"
        server = "127.0.0.1"
        port = \(port)
        sender = "Desk <\(sender)>"
        tls = "\(tls)"
        timeout = "5s"

        """
        if caFile { text += "ca_file = \"\(lab.caFile)\"\n" }
        if auth {
            text += "auth = true\nuser = \"ana\"\n"
            text += password.map { "password = \"\($0)\"\n" } ?? "password_file = \"\(lab.passwordFile(of: "ana"))\"\n"
        }
        return text
    }

    /// The lab's spool files that mention `address` (other tests send in parallel: only this
    /// test's own sender counts).
    func spoolFiles(mentioning address: String) throws -> Int {
        let lab = try requireLab()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: lab.smtpSpool)) ?? []
        return names.filter { name in
            guard let data = FileManager.default.contents(atPath: lab.smtpSpool + "/" + name) else { return false }
            return String(decoding: data, as: UTF8.self).contains(address)
        }.count
    }

    @Test func starttlsWithAuth() throws {
        let lab = try requireLab()
        let run = try testMailbox(outbound(tls: "starttls", port: lab.smtpStarttlsPort, auth: true))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("with STARTTLS (required) (TLSv1.") })
        #expect(run.lines.contains("  authenticated as ana"))
        #expect(run.lines.contains { $0.hasPrefix("  said goodbye (221)") })
    }

    @Test func implicitTLSWithAuth() throws {
        let lab = try requireLab()
        let run = try testMailbox(outbound(tls: "tls", port: lab.smtpTLSPort, auth: true))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("connected to smtps://127.0.0.1:\(lab.smtpTLSPort) with implicit TLS") })
        #expect(run.lines.contains("  authenticated as ana"))
    }

    @Test func plainTextWithoutAuth() throws {
        let lab = try requireLab()
        let sender = "probe-\(UInt64.random(in: 0...UInt64.max))@lab.test"
        let run = try testMailbox(outbound(tls: "none", port: lab.smtpPlainPort, auth: false, sender: sender))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("in plain text (tls = \"none\")") })
        // A test connects and says goodbye: it never sends a message.
        #expect(try spoolFiles(mentioning: sender) == 0)
    }

    @Test func wrongPassword() throws {
        let lab = try requireLab()
        let run = try testMailbox(outbound(tls: "tls", port: lab.smtpTLSPort, auth: true, password: "wrong-smtp-password-1"))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .loginRejected)
        #expect(error.serverReply?.hasPrefix("535") == true)
        #expect(!run.text.contains("wrong-smtp-password-1"))
    }

    @Test func starttlsDemandedOnAServerWithout() throws {
        let lab = try requireLab()
        let run = try testMailbox(outbound(tls: "starttls", port: lab.smtpPlainPort, auth: false))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .starttlsNotOffered)
    }

    @Test func untrustedCertificate() throws {
        let lab = try requireLab()
        for (tls, port) in [("starttls", lab.smtpStarttlsPort), ("tls", lab.smtpTLSPort)] {
            let run = try testMailbox(outbound(tls: tls, port: port, auth: true, caFile: false))
            let error = try #require(run.connectionError, "\(run.text)")
            #expect(error.kind == .certificateUntrusted)
            #expect(error.message.contains("CN = Carteiro mail lab"))
        }
    }

    @Test func implicitTLSOnTheSTARTTLSPort() throws {
        let lab = try requireLab()
        let run = try testMailbox(outbound(tls: "tls", port: lab.smtpStarttlsPort, auth: false))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .tlsFailed || error.kind == .noAnswer)
    }
}
