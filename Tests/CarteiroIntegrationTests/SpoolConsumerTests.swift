import Foundation
import Testing
import CarteiroStore
import CarteiroTesting
@testable import CarteiroDaemon

/// A sink written for the tests alone: the spool's consumer hands it every event in order per
/// mailbox, removes what it took, holds a mailbox back after a refusal while the others go
/// on, and writes the sink's health under the sink's name.
struct SpoolConsumerTests {
    final class Recorder: EventSink, @unchecked Sendable {
        private let lock = NSLock()
        private var taken: [String] = []
        private var refusals: Set<String>
        init(refusing: Set<String>) { refusals = refusing }
        var kind: String { "recorder" }
        var healthFields: [String: String] { ["target": "memory"] }
        var names: [String] { lock.withLock { taken } }
        func deliver(_ event: [UInt8], named name: String) -> String? {
            lock.withLock {
                if refusals.remove(name) != nil { return "not now" }
                taken.append(name)
                return nil
            }
        }
    }

    @Test func aSecondSinkIsOneTypeAndTheConsumerDoesTheRest() throws {
        let directory = try TemporaryDirectory()
        let spool = directory.path + "/events"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        // Oldest first by modification time, whatever the names say.
        let files = ["a+2.json", "b+1.json", "a+10.json", "b+2.json"]
        for (index, name) in files.enumerated() {
            try Data("{\"n\": \(index)}".utf8).write(to: URL(fileURLWithPath: spool + "/" + name))
            var times = [timespec(tv_sec: 1_700_000_000 + index, tv_nsec: 0), timespec(tv_sec: 1_700_000_000 + index, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, spool + "/" + name, &times, 0) == 0)
        }
        let sink = Recorder(refusing: ["a+2.json"])
        let consumer = SpoolConsumer(spool: spool, sink: sink, log: DaemonLog(), stateDirectory: directory.path)
        consumer.deliverRound()
        #expect(sink.names == ["b+1.json", "b+2.json"], "mailbox a waits behind its refused event; b goes on")
        let health = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory.path + "/recorder.json"))) as? [String: Any])
        #expect(health["target"] as? String == "memory")
        #expect(health["last_error"] as? String == "not now")
        #expect(health["failing_since"] != nil)

        consumer.backoff = [:] // the wait is over
        consumer.deliverRound()
        #expect(sink.names == ["b+1.json", "b+2.json", "a+2.json", "a+10.json"], "a's events in their order")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }.isEmpty)
        let recovered = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory.path + "/recorder.json"))) as? [String: Any])
        #expect(recovered["failing_since"] == nil)
        #expect(recovered["last_success"] != nil)
    }
}
