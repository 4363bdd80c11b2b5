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

    @Flag(name: .long, help: ArgumentHelp("Print the systemd drop-in this configuration needs (its LoadCredential= lines) and exit.", discussion: "For example: carteiro check-config --units > /etc/systemd/system/carteiro.service.d/credentials.conf"))
    var units = false

    func run() throws {
        if reference {
            print(ConfigReference.render(), terminator: "")
            return
        }
        let (configuration, warnings) = try options.load()
        let resolver = SecretResolver(environment: options.environment, configurationFile: configuration.files.first)
        let credentials = resolver.loadCredentialLines(configuration)
        if units {
            print("# The credentials \(options.path) names (password_credential), loaded by systemd for the")
            print("# service: one LoadCredential=NAME:PATH each. Made by `carteiro check-config --units`;")
            print("# made again whenever a password_credential is added. Keep each file chmod 600, root.")
            print("[Service]")
            for line in credentials { print(line) }
            return
        }
        let audit = resolver.audit(configuration)
        for warning in warnings + audit { Output.error(warning.description) }
        print(ConfigSummary.render(configuration), terminator: "")
        if !credentials.isEmpty {
            print("")
            print("systemd credentials (in a drop-in: carteiro check-config --units)")
            for line in credentials { print("  \(line)") }
        }
    }
}
