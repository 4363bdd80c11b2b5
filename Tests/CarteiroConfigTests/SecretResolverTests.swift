import Foundation
import Testing
import CarteiroTesting
@testable import CarteiroConfig

struct SecretResolverTests {
    @Test func everySourceResolves() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("pw", "from-file\nsecond line ignored\n", mode: 0o600)
        try directory.write("creds/acme-in", "from-credential", mode: 0o600)
        let resolver = SecretResolver(environment: ["PW": "from-env", "CREDENTIALS_DIRECTORY": directory.path + "/creds"])
        #expect(try resolver.resolve(.file(file)).get().value == "from-file")
        #expect(try resolver.resolve(.environment("PW")).get().value == "from-env")
        #expect(try resolver.resolve(.credential("acme-in")).get().value == "from-credential")
        #expect(try resolver.resolve(.inline(Secret("inline"))).get().value == "inline")
    }

    @Test func failuresSayWhatIsMissing() throws {
        let directory = try TemporaryDirectory()
        let empty = try directory.write("empty", "", mode: 0o600)
        let resolver = SecretResolver(environment: [:])
        func message(_ source: SecretSource) -> String? {
            if case .failure(let failure) = resolver.resolve(source) { return failure.description }
            return nil
        }
        #expect(message(.environment("NOPE")) == "the environment variable NOPE (password_env) is not set")
        #expect(message(.file("/nonexistent/pw")) == "password_file /nonexistent/pw does not exist")
        #expect(message(.file(empty)) == "password_file \(empty) is empty")
        #expect(message(.credential("x"))?.hasPrefix("password_credential x needs systemd's $CREDENTIALS_DIRECTORY") == true)
    }

    @Test func credentialsOutsideTheUnitComeFromBesideTheConfiguration() throws {
        let directory = try TemporaryDirectory()
        let configuration = try directory.write("carteiro.conf", "")
        try directory.write("credentials/acme-in", "from-etc\n", mode: 0o600)
        let resolver = SecretResolver(environment: [:], configurationFile: configuration)
        #expect(try resolver.resolve(.credential("acme-in")).get().value == "from-etc")
        // Missing: the path it looked at, and the line the unit needs.
        guard case .failure(let missing) = resolver.resolve(.credential("beta-in")) else { Issue.record("resolved"); return }
        #expect(missing.description.contains("\(directory.path)/credentials/beta-in does not exist"))
        #expect(missing.description.contains("LoadCredential=beta-in:\(directory.path)/credentials/beta-in"))
    }

    @Test func underTheUnitAMissingCredentialNamesTheLoadCredentialLine() throws {
        let directory = try TemporaryDirectory()
        try directory.write("loaded/other", "x", mode: 0o600)
        let resolver = SecretResolver(environment: ["CREDENTIALS_DIRECTORY": directory.path + "/loaded"], configurationFile: "/etc/carteiro/carteiro.conf")
        guard case .failure(let failure) = resolver.resolve(.credential("acme-in")) else { Issue.record("resolved"); return }
        #expect(failure.description.contains("add LoadCredential=acme-in:/etc/carteiro/credentials/acme-in"))
        #expect(failure.description.contains("check-config --units"))
    }

    @Test func theLoadCredentialLinesOfAConfiguration() throws {
        let text = """
        [daemon]
        system_outbound = "out"
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "h"
        user = "u"
        password_credential = "shared"
        [mailbox.in2]
        type = "inbound"
        provider = "imaps"
        server = "h"
        user = "u"
        password_file = "/x"
        [mailbox.out]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        auth = true
        user = "u"
        password_credential = "smtp"
        [mailbox.out2]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        auth = true
        user = "u"
        password_credential = "shared"
        """
        let outcome = ConfigurationFile.load(text: text, file: "/etc/carteiro/shard-a.conf", environment: [:])
        let configuration = try #require(outcome.configuration, "\(outcome.errors)")
        let lines = SecretResolver(environment: [:], configurationFile: configuration.files.first).loadCredentialLines(configuration)
        #expect(lines == ["LoadCredential=shared:/etc/carteiro/credentials/shared", "LoadCredential=smtp:/etc/carteiro/credentials/smtp"])
    }

    @Test func secretsNeverPrint() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(!"\(SecretSource.inline(secret))".contains("hunter2"))
    }

    @Test func auditWarnsAboutFilesOthersCanRead() throws {
        let directory = try TemporaryDirectory()
        let open = try directory.write("open.password", "pw\n", mode: 0o644)
        let config = try directory.write("c.conf", """
        [daemon]
        system_outbound = "out"
        [mailbox.out]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        auth = true
        user = "u"
        password = "inline-secret"
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "h"
        user = "u"
        password_file = "\(open)"
        [contract.c]
        inbound_mailboxes = ["in"]
        """, mode: 0o644)
        let outcome = ConfigurationFile.load(path: config, environment: [:])
        let configuration = try #require(outcome.configuration)
        let findings = SecretResolver(environment: [:]).audit(configuration).map(\.message)
        #expect(findings.contains { $0.contains("password_file \(open) can be read by every user") })
        #expect(findings.contains { $0.contains("holds a password and every user of this machine can read it") })
        #expect(!findings.joined().contains("inline-secret"))
    }
}
