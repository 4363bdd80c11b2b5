import Foundation
import Testing
import CarteiroConfig
import CarteiroStore
import CarteiroTesting
@testable import CarteiroDaemon

/// A source written for the tests alone (`MemorySource`) runs through the daemon's own
/// scheduler, pipeline, commit and `after_fetch`: every message becomes exactly one event
/// whatever step fails, in the source or in the store, and whether the process dies there
/// (a new service on the same state directory) or goes on.
struct MemorySourceTests {
    static func configuration(_ state: String) throws -> Configuration {
        let outcome = ConfigurationFile.load(text: daemonConfiguration(state: state, mailboxes: """
            [mailbox.mem]
            type = "inbound"
            provider = "imap"
            server = "127.0.0.1"
            port = 9
            user = "u"
            password = "p"
            after_fetch = "delete"
            idle = false

            """, contractMailboxes: ["mem"]), file: "c.conf")
        return try #require(outcome.configuration, "\(outcome.errors)")
    }

    static func service(_ configuration: Configuration, _ server: MemoryServer,
                        faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) throws -> InboundService {
        try InboundService(configuration: configuration, environment: [:], log: DaemonLog(), sources: { mailbox, log, kept in
            mailbox.name == "mem" ? MemorySource(mailbox: mailbox, server: server) : InboundService.builtInSource(mailbox, log, kept)
        }, storeFaults: faults)
    }

    /// One poll of every mailbox through the scheduler; the number that failed.
    static func pollOnce(_ service: InboundService) -> Int {
        let done = DispatchSemaphore(value: 0)
        let failed = Failed()
        service.pollOnce { count in
            failed.count = count
            done.signal()
        }
        done.wait()
        return failed.count
    }

    final class Failed: @unchecked Sendable { var count = 0 }

    static func stop(_ service: InboundService) {
        let done = DispatchSemaphore(value: 0)
        service.stop { done.signal() }
        done.wait()
    }

    /// Stops the commits at step `at` (1-based), once; nil never stops.
    final class Injector: @unchecked Sendable {
        let at: Int?
        private let lock = NSLock()
        private var names: [String] = []
        init(at: Int?) { self.at = at }
        var steps: [String] { lock.withLock { names } }
        func step(_ name: String) throws(DurableFiles.Failure) {
            let count = lock.withLock { names.append(name); return names.count }
            if count == at { throw DurableFiles.Failure(description: "injected stop at step \(count) (\(name))") }
        }
    }

    /// Every message of `1...count` is exactly one event, the server kept only `kept`, and no
    /// temporary file is left.
    static func check(_ configuration: Configuration, _ server: MemoryServer, count: Int, kept: [Int] = [], _ context: String) {
        let spool = configuration.events.spool
        let events = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }
        #expect(events.sorted() == (1...count).map { "mem+\($0).json" }.sorted(), "each message exactly one event: \(context)")
        #expect(server.present == kept, "after_fetch for every message handed on: \(context)")
        let root = configuration.daemon.stateDirectory
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/mailboxes/mem/staging")) ?? [])
            + ((try? FileManager.default.contentsOfDirectory(atPath: spool + "/.pending")) ?? [])
        #expect(leftovers.isEmpty, "no temporary file left: \(leftovers) \(context)")
    }

    @Test func everyMessageIsOneEventThroughTheScheduler() throws {
        let directory = try TemporaryDirectory()
        let configuration = try Self.configuration(directory.path + "/state")
        let server = MemoryServer()
        server.deliver(1...260)
        let service = try Self.service(configuration, server)
        #expect(Self.pollOnce(service) == 0)
        Self.check(configuration, server, count: 260, "first poll")
        server.deliver(261...263)
        #expect(Self.pollOnce(service) == 0)
        Self.check(configuration, server, count: 263, "second poll")
        Self.stop(service)
        let stored = try MailboxStore(directory: StateDirectory(root: configuration.daemon.stateDirectory, spool: configuration.events.spool), mailbox: "mem")
        #expect(stored.state.cursor == SourceCursor(kind: "memory", MemorySource.Cursor(last: 263)))
        #expect(stored.state.handedOn == 263)
    }

    /// 30 messages come in two batches (25, then 5).
    static let messages = 30

    static func run(stopAt step: Int?) throws -> (Configuration, MemoryServer, [String], TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let configuration = try Self.configuration(directory.path + "/state")
        let server = MemoryServer()
        server.deliver(1...messages)
        let injector = Injector(at: step)
        let first = try Self.service(configuration, server, faults: injector.step)
        _ = Self.pollOnce(first)
        Self.stop(first)
        return (configuration, server, injector.steps, directory)
    }

    static let cleanSteps = (try? run(stopAt: nil).2) ?? []

    /// The steps of a clean first poll, as the store names them: the new position recorded
    /// (3 steps), then each batch's commit (7 steps and a rename per message).
    static let stepCount = 3 + (7 + 25) + (7 + 5)

    @Test func theCommitHasTheStepsThisTestStopsAt() {
        #expect(Self.cleanSteps.count == Self.stepCount, "\(Self.cleanSteps)")
    }

    @Test(arguments: 1...stepCount)
    func killedAtCommitStepNThenRestarted(step: Int) throws {
        let (configuration, server, steps, directory) = try Self.run(stopAt: step)
        defer { withExtendedLifetime(directory) {} }
        #expect(steps.count == step, "the stop landed in the commit: \(steps)")
        // The next start: a new service on the same state directory, no faults.
        let second = try Self.service(configuration, server)
        #expect(Self.pollOnce(second) == 0)
        Self.stop(second)
        Self.check(configuration, server, count: Self.messages, "stopped at step \(step) (\(steps.last ?? ""))")
    }

    @Test(arguments: 1...stepCount)
    func failingAtCommitStepNInARunningDaemon(step: Int) throws {
        let directory = try TemporaryDirectory()
        let configuration = try Self.configuration(directory.path + "/state")
        let server = MemoryServer()
        server.deliver(1...Self.messages)
        let injector = Injector(at: step)
        let service = try Self.service(configuration, server, faults: injector.step)
        #expect(Self.pollOnce(service) == 1, "the failed step fails the poll")
        #expect(Self.pollOnce(service) == 0, "the next poll finishes the batch and goes on")
        Self.stop(service)
        Self.check(configuration, server, count: Self.messages, "failed at step \(step)")
    }

    /// A step of the source fails, once or for good; polls follow until one goes through.
    struct SourceFailure: CustomTestStringConvertible, Sendable {
        let step: String
        let broken: Bool
        let times: Int
        var testDescription: String { "\(step) \(broken ? "breaks the connection" : "refused") \(times == .max ? "always" : "\(times)×")" }
    }

    static let sourceFailures: [SourceFailure] = [
        .init(step: "connect", broken: true, times: 1),
        .init(step: "list", broken: false, times: 1),
        .init(step: "list", broken: true, times: 2),
        .init(step: "fetch 30", broken: false, times: 1),
        .init(step: "fetch 30", broken: true, times: 1),
        .init(step: "fetch 30", broken: true, times: 2),
        .init(step: "fetch 1", broken: false, times: 1),
        .init(step: "fetch 30", broken: false, times: 3),
        .init(step: "fetch 26", broken: true, times: 1),
        .init(step: "after_fetch", broken: false, times: 1),
        .init(step: "after_fetch", broken: true, times: 1),
    ]

    @Test(arguments: sourceFailures)
    func aSourceStepThatFailsLosesAndDoublesNothing(_ failure: SourceFailure) throws {
        let directory = try TemporaryDirectory()
        let configuration = try Self.configuration(directory.path + "/state")
        let server = MemoryServer()
        server.deliver(1...Self.messages)
        let counter = Injector(at: nil)
        server.fail { name in
            guard name == failure.step else { return nil }
            try? counter.step(name)
            return counter.steps.count <= failure.times ? (failure.broken, "injected") : nil
        }
        let service = try Self.service(configuration, server)
        var polls = 0
        while polls < 6 {
            polls += 1
            if Self.pollOnce(service) == 0 && server.present.isEmpty { break }
        }
        Self.stop(service)
        #expect(polls <= failure.times + 2, "recovered in \(polls) polls")
        Self.check(configuration, server, count: Self.messages, failure.testDescription)
    }

    @Test func aMessageThatNeverComesIsHandedOnAsUnreadableAndLeftOnTheServer() throws {
        let directory = try TemporaryDirectory()
        let configuration = try Self.configuration(directory.path + "/state")
        let server = MemoryServer()
        server.deliver(1...Self.messages)
        server.fail { $0 == "fetch 30" ? (true, "the server drops the connection on this message") : nil }
        let service = try Self.service(configuration, server)
        // The first poll fails its batch (26…30), which makes them suspects; each next poll
        // fetches them alone and strikes 30, until its last strike hands it on as unreadable.
        for _ in 0...MailboxState.Strike.limit { _ = Self.pollOnce(service) }
        Self.stop(service)
        Self.check(configuration, server, count: Self.messages, kept: [30], "message 30 given up")
        let event = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configuration.events.spool + "/mem+30.json"))) as? [String: Any]
        #expect(event?["type"] as? String == "message.unreadable")
    }
}
