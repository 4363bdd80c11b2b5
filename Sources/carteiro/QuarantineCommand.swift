import ArgumentParser
import CarteiroConfig
import CarteiroDaemon
import CarteiroStore
import Foundation

/// `carteiro quarantine`: the events held back because their sender failed authentication
/// (`sender_verification = "quarantine"`).
struct QuarantineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quarantine",
        abstract: "List, release or delete the events held back because their sender failed authentication.",
        subcommands: [List.self, Release.self, Delete.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Every held event: its name, mailbox, sender, subject and verdict.")
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let (configuration, _) = try options.load()
            let held = Quarantine(StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool)).list()
            for entry in held {
                Output.line(PrintableText.escaped("\(entry.name)  \(entry.mailbox)  from \(entry.from ?? "(none)")  \"\(entry.subject ?? "")\"  "
                                                  + "received \(entry.receivedAt ?? "?")  sender \(entry.verdict ?? "unknown")", limit: 2000))
            }
            if held.isEmpty { Output.line("nothing is held") }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Hand a held event to the desk (into the spool), as it is.",
            discussion: "While the daemon runs, it does this; otherwise the command does, under the state directory's lock (as its owner or root).")
        @Argument(help: "The held event's name, as `carteiro quarantine list` shows it.") var name: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            try QuarantineCommand.perform(.release, name: name, options: options)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Remove a held event without handing it on (its raw message goes with retention).",
            discussion: "While the daemon runs, it does this; otherwise the command does, under the state directory's lock (as its owner or root).")
        @Argument(help: "The held event's name, as `carteiro quarantine list` shows it.") var name: String
        @OptionGroup var options: ConfigOptions

        func run() throws {
            try QuarantineCommand.perform(.discard, name: name, options: options)
        }
    }

    static func perform(_ command: QueueCommand, name: String, options: ConfigOptions) throws {
        let (configuration, _) = try options.load()
        let verb = command == .release ? "release" : "delete"
        try options.actAsStateOwner(configuration, command: "quarantine \(verb)")
        let outcome = QueueAdmin.perform(command, id: name, stateDirectory: configuration.daemon.stateDirectory, spool: configuration.events.spool)
        try Queue.report(verb, outcome, command: "quarantine")
    }
}
