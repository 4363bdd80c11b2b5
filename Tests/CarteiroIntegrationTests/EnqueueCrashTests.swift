import Foundation
import Testing
import CarteiroConfig
import CarteiroStore
import CarteiroTesting
@testable import CarteiroDaemon

/// The outbound enqueue stopped at every one of its steps: a submission of three messages
/// (ID-1 … ID-3, one per recipient) is taken from the outbox, its queueing dies at step N, and
/// a new service (the next start) takes the outbox again. Every message must be queued exactly
/// once, the submission gone, no temporary file left.
struct EnqueueCrashTests {
    final class Injector: @unchecked Sendable {
        let at: Int?
        private(set) var steps: [String] = []
        init(at: Int?) { self.at = at }
        func step(_ name: String) throws(DurableFiles.Failure) {
            steps.append(name)
            if steps.count == at { throw DurableFiles.Failure(description: "injected stop at step \(steps.count) (\(name))") }
        }
    }

    static func configuration(_ state: String) throws -> Configuration {
        let outcome = ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "out"
            state_dir = "\(state)"
            [mailbox.out]
            type = "outbound"
            server = "127.0.0.1"
            port = 9
            tls = "none"
            sender = "desk@desk.example"
            """, file: "c.conf")
        return try #require(outcome.configuration, "\(outcome.errors)")
    }

    static func run(stopAt step: Int?) throws -> (state: String, steps: [String], directory: TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let configuration = try configuration(state)
        try FileManager.default.createDirectory(atPath: state + "/outbox", withIntermediateDirectories: true)
        try #"{"mailbox": "out", "to": ["a@x.example", "b@x.example", "c@x.example"], "subject": "s", "text": "t"}"#
            .write(toFile: state + "/outbox/three.json", atomically: true, encoding: .utf8)
        let injector = Injector(at: step)
        let first = try OutboundService(configuration: configuration, environment: [:], log: DaemonLog(), queueFaults: injector.step)
        first.takeOutbox()
        Self.stop(first)
        if step != nil {
            // The next start: no faults.
            let second = try OutboundService(configuration: configuration, environment: [:], log: DaemonLog())
            second.takeOutbox()
            Self.stop(second)
        }
        return (state, injector.steps, directory)
    }

    /// Waits until the lanes a scan woke have finished their pass (they try the dead server).
    static func stop(_ service: OutboundService) {
        let group = DispatchGroup()
        group.enter()
        service.stop { group.leave() }
        group.wait()
    }

    static let cleanSteps: [String] = (try? run(stopAt: nil).steps) ?? []

    @Test func theEnqueueHasTheStepsThisTestStopsAt() {
        // Two files written per message, one group sync, a rename per message, a directory sync.
        #expect(Self.cleanSteps.count == 3 * 2 + 1 + 3 + 1, "\(Self.cleanSteps)")
    }

    @Test(arguments: 1...11)
    func stoppedAtStepNThenRestarted(step: Int) throws {
        let (state, steps, directory) = try Self.run(stopAt: step)
        defer { withExtendedLifetime(directory) {} }
        #expect(steps.count == step, "the stop landed during the work: \(steps)")
        let lane = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/queue/out")) ?? []).sorted()
        let entries = lane.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
        let outbox = (FileManager.default.enumerator(atPath: state + "/outbox")?.allObjects as? [String]) ?? []
        #expect(entries.count == 3, "stopped at \(steps.last ?? ""): \(lane) outbox: \(outbox)")
        #expect(Set(entries.map { String($0.dropLast(5).suffix(2)) }) == ["-1", "-2", "-3"], "\(entries)")
        for entry in entries { #expect(lane.contains(String(entry.dropLast(5)) + ".eml")) }
        #expect(!lane.contains { $0.hasSuffix(".tmp") }, "temporary files left: \(lane)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox/.taken")) ?? []).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: state + "/outbox/three.json"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox/rejected")) ?? []).isEmpty)
    }
}
