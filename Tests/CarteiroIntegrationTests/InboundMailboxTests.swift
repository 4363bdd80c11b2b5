import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// `test-mailbox` against the lab's real Dovecot, over every inbound listener.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct InboundMailboxTests {
    func inbound(provider: String, port: Int, user: String = "acme", extra: String = "") throws -> String {
        let lab = try requireLab()
        return """
        type = "inbound"
        provider = "\(provider)"
        server = "127.0.0.1"
        port = \(port)
        user = "\(user)"
        password_file = "\(lab.passwordFile(of: user))"
        timeout = "5s"
        \(extra)
        """
    }

    @Test func imapsWithPrivateCA() throws {
        let lab = try requireLab()
        let run = try testMailbox(inbound(provider: "imaps", port: lab.imapsPort, extra: "ca_file = \"\(lab.caFile)\""))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("connected to imaps://127.0.0.1:\(lab.imapsPort) with implicit TLS (TLSv1.") && $0.contains("certificate verified") })
        #expect(run.lines.contains("  logged in as acme"))
        #expect(run.lines.contains { $0.hasPrefix("  folder INBOX: ") && $0.contains("UIDVALIDITY") })
    }

    @Test func imapWithSTARTTLSDemanded() throws {
        let lab = try requireLab()
        let run = try testMailbox(inbound(provider: "imap", port: lab.imapPort, extra: "ca_file = \"\(lab.caFile)\""))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("with STARTTLS (required) (TLSv1.") })
    }

    @Test func popsAndPopWithSTARTTLS() throws {
        let lab = try requireLab()
        for (provider, port) in [("pops", lab.pop3sPort), ("pop", lab.pop3Port)] {
            let run = try testMailbox(inbound(provider: provider, port: port, user: "beta", extra: "ca_file = \"\(lab.caFile)\""))
            #expect(run.failure == nil, "\(run.text)")
            #expect(run.lines.contains { $0.hasPrefix("  mailbox holds ") })
            #expect(run.lines.contains("  the server offers UIDL: messages are tracked without deleting them"))
        }
    }

    @Test func wrongPasswordIsALoginRejection() throws {
        let lab = try requireLab()
        for (provider, port) in [("imaps", lab.imapsPort), ("pops", lab.pop3sPort)] {
            let run = try testMailbox("""
            type = "inbound"
            provider = "\(provider)"
            server = "127.0.0.1"
            port = \(port)
            user = "acme"
            password = "not-the-password-4711"
            ca_file = "\(lab.caFile)"
            """)
            let error = try #require(run.connectionError, "\(run.text)")
            #expect(error.kind == .loginRejected)
            #expect(!error.isTransient)
            #expect(error.message.contains("rejected the login for user \"acme\""))
            #expect(error.serverReply != nil)
            #expect(!run.text.contains("not-the-password-4711"))
        }
    }

    @Test func implicitTLSOnAPlainPortExplainsThePort() throws {
        let lab = try requireLab()
        let run = try testMailbox(inbound(provider: "imaps", port: lab.imapPort, extra: "ca_file = \"\(lab.caFile)\""))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .tlsFailed)
        #expect(error.message.contains("does not seem to speak TLS from the first byte"))
    }

    @Test func closedPortIsRefused() throws {
        let run = try testMailbox(inbound(provider: "imaps", port: 1))
        let error = try #require(run.connectionError)
        #expect(error.kind == .connectionRefused)
        #expect(error.isTransient)
        #expect(error.message == "127.0.0.1 refused the connection on port 1: nothing listens there, or a firewall rejects it; check `server` and `port`")
    }

    @Test func unknownHostIsNotResolved() throws {
        let run = try testMailbox("""
        type = "inbound"
        provider = "imaps"
        server = "no-such-host.invalid"
        user = "acme"
        password = "x"
        timeout = "5s"
        """)
        let error = try #require(run.connectionError)
        #expect(error.kind == .nameNotResolved)
        #expect(error.message.contains("no-such-host.invalid could not be resolved"))
    }

    @Test func untrustedCertificateNamesItsSubject() throws {
        let lab = try requireLab()
        for (provider, port) in [("imaps", lab.imapsPort), ("imap", lab.imapPort), ("pops", lab.pop3sPort)] {
            let run = try testMailbox(inbound(provider: provider, port: port))
            let error = try #require(run.connectionError, "\(run.text)")
            #expect(error.kind == .certificateUntrusted)
            #expect(error.message.contains("CN = Carteiro mail lab"), "\(error.message)")
            #expect(error.message.contains("self-signed"))
            #expect(error.message.contains("set ca_file"))
        }
    }

    @Test func tlsVerifyFalseIsAnExplicitOptOut() throws {
        let lab = try requireLab()
        let run = try testMailbox(inbound(provider: "imaps", port: lab.imapsPort, extra: "tls_verify = false"))
        #expect(run.failure == nil, "\(run.text)")
        #expect(run.lines.contains { $0.contains("certificate NOT verified (tls_verify = false)") })
    }

    @Test func missingFolderListsTheFoldersThereAre() throws {
        let lab = try requireLab()
        let run = try testMailbox(inbound(provider: "imaps", port: lab.imapsPort, extra: "ca_file = \"\(lab.caFile)\"\nfolder = \"Procesed\""))
        let error = try #require(run.connectionError, "\(run.text)")
        #expect(error.kind == .folderMissing)
        #expect(error.message.contains("the folder \"Procesed\" cannot be opened"))
        #expect(error.message.contains("did you mean \"Processed\"?"))
    }

    @Test func moveTargetMustExist() throws {
        let lab = try requireLab()
        let ok = try testMailbox(inbound(provider: "imaps", port: lab.imapsPort, extra: "ca_file = \"\(lab.caFile)\"\nafter_fetch = \"move:Processed\""))
        #expect(ok.failure == nil, "\(ok.text)")
        let missing = try testMailbox(inbound(provider: "imaps", port: lab.imapsPort, extra: "ca_file = \"\(lab.caFile)\"\nafter_fetch = \"move:Arquivo/Março\""))
        let error = try #require(missing.connectionError)
        #expect(error.kind == .folderMissing)
        #expect(error.message.contains("\"Arquivo/Março\", which does not exist"))
    }

    @Test func unreadablePasswordIsAConfigurationFailure() throws {
        let run = try testMailbox("""
        type = "inbound"
        provider = "imaps"
        server = "127.0.0.1"
        user = "acme"
        password_env = "CARTEIRO_TEST_UNSET_VARIABLE"
        """)
        guard case .configuration(let text)? = run.failure else {
            Issue.record("expected a configuration failure, got \(run.text)")
            return
        }
        #expect(text == "mailbox \"m\": the environment variable CARTEIRO_TEST_UNSET_VARIABLE (password_env) is not set")
    }
}
