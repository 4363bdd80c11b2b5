import Foundation
import Testing
import CarteiroTesting

/// The `carteiro` executable as an operator runs it: exit codes and output format.
struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    @Test func checkConfigAcceptsTheExample() throws {
        let result = try runCarteiro(["check-config", "--config", Self.root + "/etc/carteiro.conf"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix(Self.root + "/etc/carteiro.conf: OK (1 file; 1 contract"))
        #expect(result.stdout.contains("contract acme            → acme-out  (the contract's outbound mailbox)"))
    }

    @Test func checkConfigReportsEveryErrorAndExits78() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("bad.conf", """
        [daemon]
        system_outbound = "nowhere"
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        sever = "x"
        """)
        let result = try runCarteiro(["check-config", "--config", path])
        #expect(result.status == 78)
        #expect(result.stdout.isEmpty)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.contains("\(path):2:19: system_outbound names no mailbox: there is no [mailbox.nowhere]"))
        #expect(lines.contains("\(path):6:1: unknown key `sever` in [mailbox.in]; did you mean `server`?"))
        #expect(lines.contains("\(path):3:1: [mailbox.in] needs a password: set one of `password_credential`, `password_file`, `password_env` or `password`"))
        #expect(lines.contains("\(path):3:1: [mailbox.in] needs `user`: the login name for IMAP"))
        #expect(lines.last == "\(path): 4 errors; the configuration was not accepted", "\(lines)")
    }

    @Test func missingConfigurationExits78() throws {
        let result = try runCarteiro(["check-config", "--config", "/nonexistent/carteiro.conf"])
        #expect(result.status == 78)
        #expect(result.stderr.hasPrefix("/nonexistent/carteiro.conf:1:1: cannot read the configuration: /nonexistent/carteiro.conf does not exist"))
    }

    @Test func configurationDirectoryIsTheDefault() throws {
        let directory = try TemporaryDirectory()
        try directory.write("carteiro.conf", "[daemon]\nsystem_outbound = \"o\"\n[mailbox.o]\ntype = \"outbound\"\nserver = \"h\"\nsender = \"a@b.c\"\n")
        var environment = ProcessInfo.processInfo.environment
        environment["CONFIGURATION_DIRECTORY"] = directory.path
        let result = try runCarteiro(["check-config"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix(directory.path + "/carteiro.conf: OK"))
    }

    @Test func referenceDocumentsTheSchema() throws {
        let result = try runCarteiro(["check-config", "--reference"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("[mailbox.NAME]"))
        #expect(result.stdout.contains("  after_fetch (inbound) = \"keep\", \"seen\", \"delete\" or \"move:FOLDER\"; default: keep"))
    }

    @Test(.enabled(if: labIsAvailable)) func testMailboxExitCodes() throws {
        let lab = try requireLab()
        let config = lab.directory + "/carteiro.conf"
        let ok = try runCarteiro(["test-mailbox", "acme-in", "--config", config])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.hasSuffix("OK\n"))
        let unknown = try runCarteiro(["test-mailbox", "acme-inn", "--config", config])
        #expect(unknown.status == 78)
        #expect(unknown.stderr.hasPrefix("FAILED: there is no mailbox named \"acme-inn\"; did you mean \"acme-in\"?"))
    }

    @Test(.enabled(if: labIsAvailable)) func failedLoginExits1AndNeverPrintsThePassword() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let secret = "Sup3r-Secret-Value"
        let path = try directory.write("c.conf", MailLab.configuration(name: "m", mailbox: """
        type = "inbound"
        provider = "imaps"
        server = "127.0.0.1"
        port = \(lab.imapsPort)
        user = "acme"
        password = "\(secret)"
        ca_file = "\(lab.caFile)"
        """), mode: 0o600)
        let result = try runCarteiro(["test-mailbox", "m", "--config", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("FAILED: imaps://127.0.0.1:\(lab.imapsPort) rejected the login for user \"acme\""))
        #expect(!(result.stdout + result.stderr).contains(secret))
    }
}
