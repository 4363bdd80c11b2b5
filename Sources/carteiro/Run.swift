import ArgumentParser
import CarteiroConfig
import CarteiroDaemon
import CarteiroStore
import CarteiroSystemd
import Foundation
import Logging

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon in the foreground: poll every inbound mailbox and hand each new message on as a request event.",
        discussion: "SIGHUP reloads the configuration (an invalid one is logged and the running one stays). SIGTERM or SIGINT stops it: polling stops, running polls finish, state is saved, exit 0."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Poll every inbound mailbox once, send what is queued once, and exit (1 if a mailbox failed).")
    var once = false

    func run() throws {
        try Self.start(options.location, once: once)
    }

    /// `carteiro run`'s arguments in the forms systemd and scripts use: `--config PATH`,
    /// `--config=PATH` and `--once`, each once, in any order. Anything else (help, an unknown or
    /// repeated option, a value that looks like an option) is nil, and goes to the parser,
    /// which reads these forms the same way (a test holds it to that).
    struct QuickArguments: Equatable {
        var config: String?
        var once = false

        init?(_ arguments: [String]) {
            var index = 0
            var sawConfig = false
            while index < arguments.count {
                let argument = arguments[index]
                if argument == "--once" && !once {
                    once = true
                    index += 1
                } else if argument == "--config" && !sawConfig && index + 1 < arguments.count
                            && !arguments[index + 1].isEmpty && !arguments[index + 1].hasPrefix("-") {
                    config = arguments[index + 1]
                    sawConfig = true
                    index += 2
                } else if argument.hasPrefix("--config=") && !sawConfig && argument.count > 9 {
                    config = String(argument.dropFirst(9))
                    sawConfig = true
                    index += 1
                } else {
                    return nil
                }
            }
        }

        init(config: String?, once: Bool) {
            self.config = config
            self.once = once
        }
    }

    static func start(_ options: ConfigLocation, once: Bool) throws {
        // Before anything else: the daemon's signals are caught from here on (`run --once`
        // keeps the default actions).
        // libdispatch's event thread asks for nice -4 when the first source is made; a user
        // without CAP_SYS_NICE (the service's) is refused, harmlessly: the thread runs at the
        // process's priority, as every other thread does. libdispatch reports the refusal to
        // syslog, a warning in the journal at every start; its own log is off here unless the
        // operator asks for it (Environment=LIBDISPATCH_LOG=stderr).
        setenv("LIBDISPATCH_LOG", "NO", 0)
        if !once { Daemon.catchSignals() }
        let environment = options.environment
        guard let level = Logger.Level(rawValue: (environment["CARTEIRO_LOG_LEVEL"] ?? "info").lowercased()) else {
            Output.error("carteiro: CARTEIRO_LOG_LEVEL=\(environment["CARTEIRO_LOG_LEVEL"] ?? "") is not a level: trace, debug, info, notice, warning, error or critical")
            throw ExitCode(78)
        }
        let journal = JournalLogHandler.stderrIsJournal(environment: environment)
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = journal ? JournalLogHandler(label: label) : StderrLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let (configuration, warnings) = try options.load()
        // Root running the daemon on the service's state directory would leave files the
        // service cannot use, and read passwords the service cannot: refused, with the way.
        if geteuid() == 0, case .member(let owner) = StateAccess.of(configuration.daemon.stateDirectory) {
            Output.error("carteiro: \(configuration.daemon.stateDirectory) belongs to \(owner): start the service (systemctl start carteiro), or run this as that user (runuser -u \(owner) -- carteiro run …)")
            throw ExitCode(77) // EX_NOPERM
        }
        // One process a state directory, before anything in it is read or recovered.
        let lock: any StoreClaim
        do {
            lock = try StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool).claim()
        } catch {
            Output.error("carteiro: cannot start: \(error)")
            if case .held = error { throw ExitCode(75) } // EX_TEMPFAIL: try again once the other one stops
            throw ExitCode(73)
        }
        let log = DaemonLog()
        for warning in warnings { log.log(.warning, "configuration", ["warning": warning.description]) }
        let daemon: Daemon
        do {
            daemon = try Daemon(path: options.path, environment: options.environment, configuration: configuration, lock: lock, log: log)
        } catch {
            Output.error("carteiro: cannot start: \(error)")
            if case .secrets = error { throw ExitCode(78) }
            throw ExitCode(73) // EX_CANTCREAT: the state directory
        }
        Foundation.exit(once ? daemon.runOnce() : daemon.run())
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the daemon's state: each mailbox, the spool's backlog, the webhook, each outbound lane, each OAuth account.",
        discussion: "From what the running daemon last recorded; with a broken configuration too (it says so). --json prints the same as one JSON object (its keys: running, pid, state_dir, configuration, mailboxes, spool, webhook, lanes, failed, oauth; see carteiro(8)). Exit status 0 when the daemon runs, 3 when it does not."
    )

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        umask(0o027)
        let outcome = ConfigurationFile.load(path: options.path, environment: options.environment)
        let inputs: StatusReport.Inputs
        if let configuration = outcome.configuration {
            inputs = StatusReport.Inputs(
                stateDirectory: configuration.daemon.stateDirectory, spool: configuration.events.spool,
                mailboxes: configuration.inboundMailboxes.map { ($0.name, configuration.contract(owning: $0.name)?.id, $0.description, $0.enabled) },
                lanes: configuration.outboundMailboxes.map { ($0.name, $0.maxMessagesPerMinute, $0.maxRecipientsPerDay) },
                webhook: configuration.events.webhook, oauth: StatusReport.oauthAccounts(configuration), configurationProblem: nil)
        } else {
            // A broken configuration: the last recorded state, from where the file says it is
            // (or the default), and the errors said first.
            for diagnostic in outcome.errors { Output.error(diagnostic.description) }
            let state = Self.stateDirectory(inBrokenFile: options.path)
                ?? ConfigurationBuilder.defaultStateDirectory(options.environment, configurationFile: options.path)
            Output.error("carteiro status: \(options.path) has \(outcome.errors.count) error\(outcome.errors.count == 1 ? "" : "s"); showing the last recorded state of \(state)")
            inputs = StatusReport.Inputs(stateDirectory: state, spool: state + "/events", mailboxes: [], lanes: [], webhook: nil, oauth: [],
                                         configurationProblem: "\(outcome.errors.count) errors")
        }
        let report: (text: String, running: Bool)
        if json {
            report = StatusReport.json(inputs)
        } else {
            var text = StatusReport.render(stateDirectory: inputs.stateDirectory,
                                           descriptions: Dictionary(inputs.mailboxes.map { ($0.name, $0.description) }, uniquingKeysWith: { first, _ in first }),
                                           oauth: inputs.oauth, disabled: inputs.mailboxes.filter { !$0.enabled }.map(\.name),
                                           spool: inputs.spool, webhook: inputs.webhook,
                                           limits: Dictionary(inputs.lanes.map { ($0.name, ($0.perMinute, $0.perDay)) }, uniquingKeysWith: { first, _ in first }))
            if inputs.configurationProblem != nil { text.text = "(the configuration is broken: this is the last recorded state)\n" + text.text }
            report = text
        }
        FileHandle.standardOutput.write(Data(report.text.utf8))
        if !report.running { throw ExitCode(3) }
    }

    /// `state_dir = "…"` as written in a file that does not load.
    static func stateDirectory(inBrokenFile path: String) -> String? {
        guard case .success(let bytes) = RegularFile.read(path, limit: 1 << 20) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("state_dir"), let first = trimmed.firstIndex(of: "\""), let last = trimmed.lastIndex(of: "\""), first < last else { continue }
            return String(trimmed[trimmed.index(after: first)..<last])
        }
        return nil
    }
}
