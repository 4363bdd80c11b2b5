import ArgumentParser
import CarteiroConfig
import CarteiroEvents
import CarteiroStore
import Foundation

struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Print the event a raw message (an .eml file) would become, without handing anything on.",
        discussion: "For support and re-processing: the same parsing, classification, routing rules and threading as the daemon's (with the state directory's threading key when it can be read). Works without a configuration too (no contract, and Carteiro's own Message-IDs are not recognised). Nothing is written: `raw` is the file read; which routing rules matched (or dropped it) is also said on standard error. Exit 0, 66 when the file cannot be read."
    )

    @Argument(help: "The raw message (RFC 5322), as received.") var file: String
    @Option(help: "The inbound mailbox it arrived in (its contract applies). Default: the first inbound mailbox.") var mailbox: String?
    @OptionGroup var options: ConfigOptions

    func run() throws {
        // Without a configuration (a support machine, a copy of a message): still the event,
        // without a contract and without Carteiro's own Message-IDs recognised. A file named
        // with --config must be there.
        var configuration: Configuration?
        if options.config != nil || FileManager.default.fileExists(atPath: options.path) {
            configuration = try options.load().0
        } else {
            Output.error("carteiro parse: no configuration at \(options.path): the event has no contract, and replies to Carteiro's own Message-IDs are not recognised")
        }
        let bytes: [UInt8]
        switch RegularFile.read(file, limit: 1 << 30) {
        case .success(let read): bytes = read
        case .failure(let problem):
            Output.error("carteiro parse: \(file) \(problem)")
            throw ExitCode(66)
        }
        if let mailbox, let configuration, configuration.inbound(mailbox) == nil {
            Output.error("carteiro parse: there is no inbound mailbox named \"\(mailbox)\"")
            throw ExitCode(64)
        }
        let name = mailbox ?? configuration?.inboundMailboxes.first?.name ?? "parse"
        var secret: [UInt8]?
        var contractOfRequest: @Sendable (String) -> String? = { _ in nil }
        if let state = configuration?.daemon.stateDirectory {
            let path = state + "/threading.key"
            if let key = DurableFiles.read(path), key.count >= 32 {
                secret = key
            } else if access(path, F_OK) != 0 {
                Output.error("carteiro parse: there is no \(path) (no daemon has run on this state directory yet): replies to Carteiro's own Message-IDs are not recognised")
            } else {
                Output.error("carteiro parse: \(path) cannot be read by this user: replies to Carteiro's own Message-IDs are not recognised (run it as the service's user, or as root)")
            }
            let contracts = RequestContracts(stateDirectory: state)
            contractOfRequest = { contracts.contract(of: $0) }
        }
        let builder = EventBuilder(threading: RequestThreading(secret: secret ?? (0..<32).map { _ in UInt8.random(in: 0...255) }),
                                   ownAddresses: Set(configuration?.outboundMailboxes.map(\.sender.address) ?? []),
                                   rules: RoutingRules(configuration?.rules ?? []), contractOfRequest: contractOfRequest)
        var input = EventBuilder.Input(mailbox: name, contract: configuration?.contract(owning: name)?.id, origin: .imap(uidValidity: 0, uid: 0),
                                       receivedAt: Int64(Date().timeIntervalSince1970), bytes: bytes, size: bytes.count, oversize: false, unreadable: nil)
        // The mailbox's trust in its receiving servers applies as in the daemon.
        if let inbound = configuration?.inbound(name) {
            input.authservIDs = Set(inbound.authservIDs)
            input.flagsUnverifiedSender = inbound.senderVerification != .off
        }
        var (event, _) = builder.build(input)
        // Nothing was stored: `raw` is the file that was read (attachments name where the
        // daemon would keep them).
        event.rawPath = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        FileHandle.standardOutput.write(Data(event.renderedBytes()))
        // Which rules matched, for whoever is writing them (the event says so too).
        if let configuration, !configuration.rules.isEmpty {
            let applicable = configuration.rules.filter { $0.applies(to: name, contract: input.contract) }.count
            if let problem = event.routing?.problem {
                Output.error("carteiro parse: \(problem)")
            }
            if let drop = event.routing?.dropped {
                Output.error("carteiro parse: dropped by rule \"\(drop.rule)\" (\(drop.reason)): the daemon would write no event and leave the message on the server")
            } else if let matched = event.routing?.rules, !matched.isEmpty {
                Output.error("carteiro parse: rules matched in mailbox \"\(name)\": " + matched.map { "\"\($0)\"" }.joined(separator: ", "))
            } else if event.routing?.problem == nil {
                Output.error("carteiro parse: no rule matched (\(applicable) of \(configuration.rules.count) apply to mailbox \"\(name)\")")
            }
        }
    }
}
