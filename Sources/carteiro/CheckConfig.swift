import ArgumentParser
import CarteiroConfig
import CarteiroDaemon

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration and summarise it: contracts, mailboxes, and which mailbox each workflow step sends through.",
        discussion: "Exit status 0 when the configuration is valid (warnings are printed but allowed), 78 with every error as PATH:LINE:COLUMN: message otherwise."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Print the reference of every table and key (from the schema) and exit.")
    var reference = false

    func run() throws {
        if reference {
            print(ConfigReference.render(), terminator: "")
            return
        }
        let (configuration, warnings) = try options.load()
        let audit = SecretResolver(environment: options.environment).audit(configuration)
        for warning in warnings + audit { Output.error(warning.description) }
        print(ConfigSummary.render(configuration), terminator: "")
    }
}
