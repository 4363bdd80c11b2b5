import ArgumentParser
import CarteiroConfig
import CarteiroStore
import Foundation

struct Poll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll",
        abstract: "Make the running daemon poll a mailbox (or every one) now, and print what it handed on.",
        discussion: "The poll takes its turn like any other (never two at once of one mailbox). Exit 0 when every poll succeeded, 1 when one failed, 69 when the mailbox is disabled, 75 when the daemon is not running (carteiro run --once polls every mailbox once without it)."
    )

    @Argument(help: "An inbound mailbox; every enabled one when left out.") var mailbox: String?
    @Option(help: ArgumentHelp("How long to wait for the answer, in seconds.", valueName: "seconds")) var timeout: Int = 600
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let (configuration, _) = try options.load()
        try options.actAsStateOwner(configuration, command: "poll")
        if let mailbox, configuration.inbound(mailbox) == nil {
            Output.error("carteiro poll: there is no inbound mailbox named \"\(mailbox)\"" + NearestName.hint(mailbox, among: configuration.inboundMailboxes.map(\.name), quote: { "\"\($0)\"" }))
            throw ExitCode(64)
        }
        if let mailbox, configuration.inbound(mailbox)?.enabled == false {
            Output.error("carteiro poll: mailbox \"\(mailbox)\" is disabled (enabled = false): the daemon does not poll it")
            throw ExitCode(69) // EX_UNAVAILABLE: not a failed poll, no poll at all
        }
        let state = configuration.daemon.stateDirectory
        guard StateLock.isHeld(stateDirectory: state).held else {
            Output.error("carteiro poll: the daemon is not running on \(state); `carteiro run --once` polls every mailbox once")
            throw ExitCode(75)
        }
        let control = QueueControl(stateDirectory: state)
        let name: String
        do {
            name = try control.send(.poll, id: mailbox ?? "*")
        } catch {
            Output.error("carteiro poll: cannot ask the daemon: \(error.description)")
            throw ExitCode(74)
        }
        guard let answer = control.answer(to: name, timeout: .seconds(max(timeout, 1))) else {
            Output.error("carteiro poll: the daemon has not answered within \(timeout)s; the poll is still asked for")
            throw ExitCode(75)
        }
        Output.line(answer.message)
        if !answer.done { throw ExitCode(1) }
    }
}
