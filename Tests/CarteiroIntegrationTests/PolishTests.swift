import Foundation
import Testing
import CarteiroConfig
import CarteiroDaemon
import CarteiroOutbound
import CarteiroTesting
@testable import carteiro

/// The small things an operator and an integrator meet first.
struct PolishTests {
    @Test func carteiroAloneIsAMistakeWithItsUsage() throws {
        let result = try runCarteiro([])
        #expect(result.status == 64)
        #expect(result.stderr.contains("USAGE: carteiro <subcommand>"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// `carteiro run` goes straight to its command (a faster start); what it cannot take alone
    /// (help, a mistake) is said as the whole command line's parser says it.
    @Test func runSpeaksAsTheWholeCommandLine() throws {
        let help = try runCarteiro(["run", "--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE: carteiro run [--config <path>] [--once]"), "\(help.stdout)")
        let mistake = try runCarteiro(["run", "--bogus"])
        #expect(mistake.status == 64, "\(mistake.stderr)")
        #expect(mistake.stderr.contains("Unknown option '--bogus'") && mistake.stderr.contains("Usage: carteiro run [--config <path>] [--once]"), "\(mistake.stderr)")
        let missing = try runCarteiro(["run", "--once", "--config", "/nonexistent/carteiro.conf"])
        #expect(missing.status == 78 && missing.stderr.contains("/nonexistent/carteiro.conf does not exist"), "\(missing.stderr)")
    }

    /// `carteiro run`'s arguments without the parser: what it takes, the parser reads the same
    /// way; what it leaves, the parser gets (help, mistakes, repeats, values like options).
    @Test func runArgumentsWithoutTheParserReadAsTheParserReadsThem() throws {
        let taken: [[String]] = [
            [], ["--once"], ["--config", "/etc/c.conf"], ["--config=/etc/c.conf"], ["--once", "--config", "a b.conf"],
            ["--config", "c.conf", "--once"], ["--config=-odd.conf"], ["--config=--once"],
        ]
        for arguments in taken {
            let quick = try #require(Run.QuickArguments(arguments), "\(arguments)")
            let parsed = try Run.parse(arguments)
            #expect(quick == Run.QuickArguments(config: parsed.options.config, once: parsed.once), "\(arguments)")
        }
        let left: [[String]] = [
            ["--help"], ["-h"], ["--bogus"], ["--once", "--once"], ["--config", "a", "--config", "b"], ["--config"], ["--config", "--once"],
            ["--config", ""], ["--config="], ["extra"], ["--config", "-x"],
        ]
        for arguments in left { #expect(Run.QuickArguments(arguments) == nil, "\(arguments)") }
    }

    @Test(arguments: ["failed", "corrupt"])
    func aMailboxCannotBeNamedAfterAQueueFolder(_ name: String) {
        let outcome = ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "\(name)"
            [mailbox.\(name)]
            type = "outbound"
            server = "smtp.example"
            sender = "desk@desk.example"
            """, file: "r.conf")
        #expect(outcome.configuration == nil)
        #expect(outcome.errors.contains { $0.message.hasPrefix("\"\(name)\" is reserved") }, "\(outcome.errors)")
    }

    @Test func versionIsPrinted() throws {
        let result = try runCarteiro(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout == CarteiroVersion.string + "\n")
    }

    @Test func aSubmissionThatIsNotJSONSaysWhereItBreaks() {
        func reason(_ text: String) -> String {
            if case .failure(let rejection) = Submission.decode(Data(text.utf8)) { return rejection.description }
            return "accepted"
        }
        #expect(reason("{\"to\": [\"a@b.example\"],\n  \"subject\": }") == "the submission is not valid JSON: unexpected text at line 2, column 14")
        #expect(reason("{\"to\": [\"a@b.example\"") == "the submission is not valid JSON: it ends in the middle of a value (line 1, column 22)")
        #expect(reason("  \n") == "the submission is not valid JSON: the file is empty")
        #expect(reason("{\"to\": \"a@b.example\"}").hasPrefix("the field `to` has the wrong type"))
    }

    @Test func aPasswordFileOfNULsOrADirectoryIsRefusedWithItsReason() throws {
        let directory = try TemporaryDirectory()
        let binary = directory.path + "/binary"
        #expect(FileManager.default.createFile(atPath: binary, contents: Data([0x73, 0x00, 0x00, 0x0A])))
        let resolver = SecretResolver(environment: [:])
        func failure(_ path: String) -> String {
            if case .failure(let failure) = resolver.resolve(.file(path)) { return failure.description }
            return "accepted"
        }
        #expect(failure(binary) == "password_file \(binary) holds NUL bytes: it is not a text file")
        #expect(failure("/dev/zero") == "password_file /dev/zero is a device, not a regular file")
        #expect(failure(directory.path) == "password_file \(directory.path) is a directory")
        #expect(failure(directory.path + "/none") == "password_file \(directory.path)/none does not exist")
    }

    @Test func statusSaysNotPolledYetForAMailboxNeverPolled() throws {
        let directory = try TemporaryDirectory()
        try #"{"pid": 1, "mailboxes": [{"name": "fresh", "consecutive_failures": 0, "handed_on": 0}, {"name": "old", "consecutive_failures": 0, "handed_on": 3, "last_poll": 100, "last_success": 100}]}"#
            .write(toFile: directory.path + "/status.json", atomically: true, encoding: .utf8)
        let text = StatusReport.render(stateDirectory: directory.path, descriptions: ["fresh": "ACME support inbox", "old": ""], now: 130).text
        #expect(text.contains("mailbox fresh (ACME support inbox): not polled yet\n"), "\(text)")
        #expect(text.contains("mailbox old: ok; last poll 30s ago, last success 30s ago, 3 handed on by this run"), "\(text)")
    }

    /// A mailbox outside any contract logs no `contract=` at all (not an empty one).
    @Test func aMailboxOutsideContractsLogsNoEmptyContract() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: """
            [mailbox.loose]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = 9
            user = "u"
            password = "p"
            timeout = "1s"

            """, contractMailboxes: []), mode: 0o600)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("poll failed mailbox=loose"), "\(result.stderr)")
        #expect(!result.stderr.contains("contract=\"\""), "\(result.stderr)")
    }
}
