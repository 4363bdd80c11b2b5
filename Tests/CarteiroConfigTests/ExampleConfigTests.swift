import Foundation
import Testing
@testable import CarteiroConfig

/// `etc/carteiro.conf` is the operator's documentation: it must be accepted, and it must
/// mention every key of the schema (set, or commented with its default).
struct ExampleConfigTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../etc/carteiro.conf").standardized.path

    @Test func exampleIsAccepted() throws {
        let outcome = ConfigurationFile.load(path: Self.path, environment: [:])
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
        #expect(outcome.warnings.isEmpty, "\(outcome.warnings)")
        let configuration = try #require(outcome.configuration)
        #expect(configuration.contracts.map(\.id) == ["acme"])
        #expect(configuration.daemon.stateDirectory == "/var/lib/carteiro")
    }

    @Test func exampleDocumentsEveryKey() throws {
        let text = try String(contentsOfFile: Self.path, encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for table in ConfigSchema.tables {
            for key in table.keys {
                let written = lines.contains { $0.hasPrefix("\(key.key) = ") || $0.hasPrefix("# \(key.key) = ") }
                let mentioned = written || lines.contains { $0.hasPrefix("#") && $0.contains("\(key.key)") }
                #expect(mentioned, "etc/carteiro.conf does not document `\(key.key)` of \(table.title)")
            }
        }
    }

    @Test func anInstanceConfigurationHasAStateDirectoryOfItsOwn() throws {
        let text = "[daemon]\nsystem_outbound = \"o\"\n[mailbox.o]\ntype = \"outbound\"\nserver = \"h\"\nsender = \"a@b.c\"\n"
        for (file, state) in [("/etc/carteiro/carteiro.conf", "/var/lib/carteiro"), ("/etc/carteiro/shard-a.conf", "/var/lib/carteiro-shard-a"),
                              ("/etc/carteiro/odd name.conf", "/var/lib/carteiro"), ("/etc/carteiro/noext", "/var/lib/carteiro")] {
            let configuration = try #require(ConfigurationFile.load(text: text, file: file, environment: [:]).configuration)
            #expect(configuration.daemon.stateDirectory == state, "\(file)")
        }
        // Under the unit, systemd's directory wins.
        let unit = try #require(ConfigurationFile.load(text: text, file: "/etc/carteiro/shard-a.conf", environment: ["STATE_DIRECTORY": "/var/lib/x"]).configuration)
        #expect(unit.daemon.stateDirectory == "/var/lib/x")
    }

    @Test func defaultStateDirectoryFollowsSystemd() throws {
        let outcome = ConfigurationFile.load(text: "[daemon]\nsystem_outbound = \"o\"\n[mailbox.o]\ntype = \"outbound\"\nserver = \"h\"\nsender = \"a@b.c\"\n",
                                             file: "s.conf", environment: ["STATE_DIRECTORY": "/var/lib/carteiro:/var/lib/other"])
        let configuration = try #require(outcome.configuration)
        #expect(configuration.daemon.stateDirectory == "/var/lib/carteiro")
        #expect(configuration.events.spool == "/var/lib/carteiro/events")
    }
}
