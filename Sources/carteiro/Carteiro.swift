import ArgumentParser
import CarteiroConfig
import CarteiroDaemon
import CarteiroStore
import Foundation

@main
struct Carteiro: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carteiro",
        abstract: "The e-mail channel of a service desk: inbound mailboxes become request events, notifications leave through the right mailbox.",
        version: CarteiroVersion.string,
        subcommands: [CheckConfig.self, TestMailbox.self, Authorize.self, Run.self, Send.self, Queue.self, QuarantineCommand.self, Status.self, Parse.self, Poll.self]
    )

    /// `carteiro run …`, as systemd and scripts start the daemon, goes straight to `Run`: the
    /// parser then reflects on that command alone, not on every subcommand (that was a third
    /// of the start's CPU). Anything `Run` alone cannot parse (help, a mistake) takes the full
    /// parser, which says what the root command would.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // The forms systemd and scripts use (`--config PATH`, `--once`) need no parser at all.
        if arguments.first == "run", let quick = Run.QuickArguments(Array(arguments.dropFirst())) {
            do {
                try Run.start(ConfigLocation(config: quick.config), once: quick.once)
            } catch {
                exit(withError: error)
            }
            return
        }
        if arguments.first == "run", let command = try? Run.parse(Array(arguments.dropFirst())) {
            do {
                try command.run()
            } catch {
                exit(withError: error)
            }
            return
        }
        main(nil)
    }

    /// `carteiro` alone is a mistaken invocation: the usage on stderr, exit 64 (EX_USAGE).
    func run() throws {
        Output.error(Self.helpMessage())
        throw ExitCode(64)
    }
}

/// Options every subcommand shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The configuration file.", discussion: "Default: $CONFIGURATION_DIRECTORY/carteiro.conf, else /etc/carteiro/carteiro.conf.", valueName: "path"))
    var config: String?

    var location: ConfigLocation { ConfigLocation(config: config) }
    var environment: [String: String] { location.environment }
    var path: String { location.path }

    /// Loads and validates the configuration; on errors prints each one and exits 78 (EX_CONFIG).
    func load() throws -> (Configuration, [Diagnostic]) { try location.load() }
}

/// Where the configuration is (`--config`, else the default) and how it is loaded: what the
/// options give every subcommand, and what `carteiro run` gets without the parser.
struct ConfigLocation {
    let config: String?
    /// Read once: each read of the process's environment builds a dictionary anew.
    let environment: [String: String]

    init(config: String?) {
        self.config = config
        environment = ProcessInfo.processInfo.environment
    }

    var path: String { ConfigPath.resolve(config, environment: environment) }

    /// Loads and validates the configuration; on errors prints each one and exits 78 (EX_CONFIG).
    func load() throws -> (Configuration, [Diagnostic]) {
        // Whatever umask Carteiro was started with (000 included), nothing it writes is open to
        // every user: events and raw messages are for its group (the desk) at most.
        umask(0o027)
        let outcome = ConfigurationFile.load(path: path, environment: environment)
        guard let configuration = outcome.configuration else {
            for diagnostic in outcome.diagnostics { Output.error(diagnostic.description) }
            let count = outcome.errors.count
            Output.error("\(path): \(count) error\(count == 1 ? "" : "s"); the configuration was not accepted")
            throw ExitCode(78)
        }
        return (configuration, outcome.warnings)
    }
}

extension ConfigOptions {
    /// Root acting on the service's state directory acts as the service's user, so the queue
    /// entries, submissions and requests it leaves are the daemon's to process.
    func actAsStateOwner(_ configuration: Configuration, command: String) throws {
        do {
            try StateAccess.adopt(configuration.daemon.stateDirectory)
        } catch {
            Output.error("carteiro \(command): \(error)")
            throw ExitCode(77) // EX_NOPERM
        }
    }
}

enum Output {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
