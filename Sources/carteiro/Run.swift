import ArgumentParser
import CarteiroConfig
import CarteiroDaemon
import Dispatch
import Foundation

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon in the foreground: poll every inbound mailbox and hand each new message on as a request event.",
        discussion: "SIGTERM or SIGINT stops it: polling stops, running polls finish, state is saved, exit 0."
    )

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Poll every inbound mailbox once, hand on what is new, and exit (1 if a mailbox failed).")
    var once = false

    /// Shorter than the unit's TimeoutStopSec (30 s), so systemd never has to SIGKILL.
    static let stopDeadlineSeconds = 20

    func run() throws {
        let (configuration, warnings) = try options.load()
        let log = DaemonLog()
        for warning in warnings { log.log(.warning, "configuration", ["warning": warning.description]) }
        let service: InboundService
        do {
            service = try InboundService(configuration: configuration, environment: options.environment, log: log)
        } catch {
            Output.error("carteiro: cannot start: \(error)")
            if case .secrets = error { throw ExitCode(78) }
            throw ExitCode(73) // EX_CANTCREAT: the state directory
        }
        if once {
            service.pollOnce { failures in
                log.log(failures == 0 ? .info : .error, "polled once", ["failed": String(failures)])
                Foundation.exit(failures == 0 ? 0 : 1)
            }
            dispatchMain()
        }
        service.start()
        let forwarder = configuration.events.webhook.map { EventForwarder(spool: configuration.events.spool, url: $0, log: log) }
        forwarder?.start()
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let queue = DispatchQueue(label: "carteiro.signals")
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                log.log(.notice, "stopping", ["signal": number == SIGTERM ? "TERM" : "INT"])
                // Polls still running after the deadline are abandoned: their batch never
                // committed, so the next start fetches those messages again. Nothing is lost.
                queue.asyncAfter(deadline: .now() + .seconds(Run.stopDeadlineSeconds)) {
                    log.log(.warning, "stopped with polls still running", ["deadline": "\(Run.stopDeadlineSeconds)s"])
                    Foundation.exit(0)
                }
                forwarder?.stop {}
                service.stop {
                    log.log(.notice, "stopped", [:])
                    Foundation.exit(0)
                }
            }
            source.resume()
            sources.append(source)
        }
        withExtendedLifetime(sources) { dispatchMain() }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each inbound mailbox's health as the running daemon last recorded it.",
        discussion: "Exit status 0 when the daemon runs, 3 when it does not."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let (configuration, _) = try options.load()
        let report = StatusReport.render(stateDirectory: configuration.daemon.stateDirectory)
        FileHandle.standardOutput.write(Data(report.text.utf8))
        if !report.running { throw ExitCode(3) }
    }
}
