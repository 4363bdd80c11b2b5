import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// A server that quotes the login back.
extension HostileServerTests {
    // MARK: - Servers that quote the password back

    /// A server that puts the login (and its base64 form) in its refusal: the password must
    /// reach no log line, no status file, no event, and not test-mailbox's output.
    @Test func aServerThatEchoesTheCredentialsNeverGetsThemLogged() throws {
        let password = "hunter2-secret-XYZ"
        let encoded = Data("\0u\0\(password)".utf8).base64EncodedString()
        let server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1] echo\r\n") { line in
            let words = line.split(separator: " ", maxSplits: 1)
            guard words.count == 2 else { return nil }
            let tag = words[0], command = String(words[1])
            if command.uppercased().hasPrefix("CAPABILITY") { return "* CAPABILITY IMAP4rev1\r\n\(tag) OK done\r\n" }
            if command.uppercased().hasPrefix("LOGIN") { return "\(tag) NO [AUTHENTICATIONFAILED] you sent \(command) (\(encoded))\r\n" }
            return "\(tag) BAD\r\n"
        }
        defer { server.stop() }
        let tested = try testMailbox(FakeServerTests.imapMailbox(port: server.port, extra: "starttls = false").replacingOccurrences(of: "plain-secret-123", with: password))
        #expect(tested.failure != nil)
        #expect(tested.text.contains("you sent LOGIN"), "the server's reply is still shown: \(tested.text)")
        #expect(!tested.text.contains(password) && !tested.text.contains(encoded), "\(tested.text)")

        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", Self.configuration(state: state, port: server.port, password: password), mode: 0o600)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("you sent LOGIN"), "\(result.stderr)")
        #expect(!result.stderr.contains(password) && !result.stderr.contains(encoded), "\(result.stderr)")
        let status = (try? String(contentsOfFile: state + "/status.json", encoding: .utf8)) ?? ""
        #expect(status.contains("you sent LOGIN"), "\(status)")
        #expect(!status.contains(password), "\(status)")
    }
}
