import ArgumentParser
import CarteiroConfig
import CarteiroDaemon

struct TestMailbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-mailbox",
        abstract: "Connect to a mailbox's server, negotiate TLS, log in, and open the folder (inbound) or greet the SMTP server (outbound), without fetching or sending anything.",
        discussion: "Exit status 0 when everything works, 1 when the server or the network fails, 78 when the configuration is wrong."
    )

    @Argument(help: "The mailbox's name, as in [mailbox.NAME].")
    var name: String

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let (configuration, _) = try options.load()
        let tester = MailboxTester(configuration: configuration, secrets: SecretResolver(environment: options.environment, configurationFile: configuration.files.first), report: Output.line)
        switch tester.test(name) {
        case .success:
            Output.line("OK")
        case .failure(let failure):
            Output.error("FAILED: \(failure)")
            if case .configuration = failure { throw ExitCode(78) }
            throw ExitCode(1)
        }
    }
}
