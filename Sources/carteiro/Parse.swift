import ArgumentParser
import CarteiroConfig
import CarteiroEvents
import CarteiroStore
import Foundation

struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Print the event a raw message (an .eml file) would become, without handing anything on.",
        discussion: "For support and re-processing: the same parsing, classification and threading as the daemon's (with the state directory's threading key when it can be read). Nothing is written. Exit 0, 66 when the file cannot be read."
    )

    @Argument(help: "The raw message (RFC 5322), as received.") var file: String
    @Option(help: "The inbound mailbox it arrived in (its contract applies). Default: the first inbound mailbox.") var mailbox: String?
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let (configuration, _) = try options.load()
        let bytes: [UInt8]
        switch RegularFile.read(file, limit: 1 << 30) {
        case .success(let read): bytes = read
        case .failure(let problem):
            Output.error("carteiro parse: \(file) \(problem)")
            throw ExitCode(66)
        }
        let name = mailbox ?? configuration.inboundMailboxes.first?.name ?? "parse"
        if let mailbox, configuration.inbound(mailbox) == nil {
            Output.error("carteiro parse: there is no inbound mailbox named \"\(mailbox)\"")
            throw ExitCode(64)
        }
        let state = configuration.daemon.stateDirectory
        let secret: [UInt8]
        if let key = DurableFiles.read(state + "/threading.key"), key.count >= 32 {
            secret = key
        } else {
            Output.error("carteiro parse: \(state)/threading.key cannot be read here: replies to Carteiro's own Message-IDs are not recognised (run as root or as the service's user)")
            secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
        }
        let contracts = RequestContracts(stateDirectory: state)
        let builder = EventBuilder(threading: RequestThreading(secret: secret), ownAddresses: Set(configuration.outboundMailboxes.map(\.sender.address)),
                                   contractOfRequest: { contracts.contract(of: $0) })
        let (event, _) = builder.build(.init(mailbox: name, contract: configuration.contract(owning: name)?.id, origin: .imap(uidValidity: 0, uid: 0),
                                             receivedAt: Int64(Date().timeIntervalSince1970), bytes: bytes, size: bytes.count, oversize: false, unreadable: nil))
        FileHandle.standardOutput.write(Data(event.renderedBytes()))
    }
}
