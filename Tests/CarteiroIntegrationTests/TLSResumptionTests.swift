import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// A second connection to a server resumes the TLS session of the first (libcurl's share of TLS
/// sessions): one round trip and no certificate exchange instead of a full handshake, for every
/// POP3 poll, IDLE reconnection and new SMTP connection. libcurl's notes say whether it did.
/// (Not over STARTTLS: libcurl 7.88 files the session under the upgraded scheme, `imaps`, and
/// looks it up under `imap`, so it never finds it; a full handshake, as before.)
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct TLSResumptionTests {
    @Test(arguments: ["imaps", "pop3s", "smtps"])
    func aSecondConnectionResumesTheSession(_ kind: String) throws {
        let lab = try requireLab()
        let user = "ana"
        let (service, port, security): (MailEndpoint.ServiceProtocol, Int, MailEndpoint.Security) = switch kind {
        case "imaps": (.imap, lab.imapsPort, .implicitTLS)
        case "pop3s": (.pop3, lab.pop3sPort, .implicitTLS)
        default: (.smtp, lab.smtpTLSPort, .implicitTLS)
        }
        let endpoint = MailEndpoint(serviceProtocol: service, host: "127.0.0.1", port: port, security: security,
                                    tls: TLSSettings(caFile: lab.caFile, verify: true), timeout: .seconds(10))
        let credentials = service == .smtp ? nil : MailSession.Credentials(user: user, password: Secret(MailLab.password(of: user)))
        // The first connection stores the server's session (TLS 1.3 sends its tickets after the
        // handshake; the login's replies bring them in).
        let first = try MailSession.open(endpoint, credentials: credentials)
        #expect(first.tlsDescription != nil)
        first.interrupt()
        let second = try MailSession.open(endpoint, credentials: credentials)
        #expect(second.tlsResumed, "the second \(kind) connection did a full TLS handshake")
        second.interrupt()
    }

    @Test func aPlainConnectionHasNothingToResume() throws {
        let lab = try requireLab()
        let endpoint = MailEndpoint(serviceProtocol: .smtp, host: "127.0.0.1", port: lab.smtpPlainPort, security: .plain,
                                    tls: TLSSettings(caFile: nil, verify: true), timeout: .seconds(10))
        let session = try MailSession.open(endpoint, credentials: nil)
        #expect(!session.tlsResumed)
        #expect(session.tlsDescription == nil)
        #expect(!session.readsAhead)
        session.interrupt()
    }

    /// A logged-in IMAPS session of the lab's user ana.
    static func anaOverIMAPS() throws -> MailSession {
        let lab = try requireLab()
        let endpoint = MailEndpoint(serviceProtocol: .imap, host: "127.0.0.1", port: lab.imapsPort, security: .implicitTLS,
                                    tls: TLSSettings(caFile: lab.caFile, verify: true), timeout: .seconds(10))
        return try MailSession.open(endpoint, credentials: MailSession.Credentials(user: "ana", password: Secret(MailLab.password(of: "ana"))))
    }

    /// After the login OpenSSL reads ahead (a message in one or two system calls instead of
    /// ten). Whatever it read ahead must still reach the reader before anyone waits on the
    /// socket: a hundred replies sent together are all read by an event loop that reads every
    /// whole line it can and then waits for the socket, as the IDLE watcher does.
    @Test func tlsReadsAheadAndLosesNoReplyToAnEventLoop() throws {
        let session = try Self.anaOverIMAPS()
        defer { session.interrupt() }
        #expect(session.readsAhead)
        let socket = try #require(session.socket)
        session.expectReply(to: "NOOP", bytes: 1 << 20)
        try session.send(Array((1...100).map { "n\($0) NOOP\r\n" }.joined().utf8))
        var answered = 0
        while answered < 100 {
            while let line = try session.readLineIfReady() {
                if line.hasPrefix("n") { answered += 1 }
            }
            guard answered < 100 else { break }
            // Nothing whole is left with the reader: the rest must still be on its way, so the
            // socket becomes readable (a reply held back by OpenSSL never would).
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 5_000) > 0 else { break }
        }
        #expect(answered == 100, "an event loop saw \(answered) of 100 replies")
    }

    /// Connections that wait send TCP keepalives after a minute of silence (NATs keep them; a
    /// vanished peer is noticed in minutes).
    @Test func connectionsSendKeepalives() throws {
        let session = try Self.anaOverIMAPS()
        defer { session.interrupt() }
        let socket = try #require(session.socket)
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(socket, SOL_SOCKET, SO_KEEPALIVE, &value, &length) == 0)
        #expect(value == 1)
        #expect(getsockopt(socket, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &value, &length) == 0)
        #expect(Int(value) == MailSession.keepaliveIdleSeconds)
    }
}
