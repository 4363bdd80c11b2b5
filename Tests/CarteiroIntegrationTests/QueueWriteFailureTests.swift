import Foundation
import Logging
import Testing
import CarteiroConfig
import CarteiroStore
import CarteiroTesting
@testable import CarteiroDaemon

/// A lane that cannot write what an attempt changed to its queue entry (a full disk) says so at
/// error level, instead of going on in silence (it used to `try?` the write).
struct QueueWriteFailureTests {
    /// Log lines gathered in memory.
    final class Captured: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [(Logger.Level, String, [String: String])] = []
        func add(_ level: Logger.Level, _ message: String, _ metadata: [String: String]) { lock.withLock { lines.append((level, message, metadata)) } }
        var all: [(Logger.Level, String, [String: String])] { lock.withLock { lines } }
    }

    struct Handler: LogHandler {
        let captured: Captured
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            captured.add(event.level, event.message.description, (event.metadata ?? [:]).mapValues { "\($0)" })
        }
    }

    @Test func anAttemptThatCannotBeRecordedIsSaid() throws {
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let configuration = try EnqueueCrashTests.configuration(state)
        try FileManager.default.createDirectory(atPath: state + "/outbox", withIntermediateDirectories: true)
        try #"{"mailbox": "out", "to": ["a@x.example"], "subject": "s", "text": "t"}"#.write(toFile: state + "/outbox/one.json", atomically: true, encoding: .utf8)
        let captured = Captured()
        let log = DaemonLog(logger: Logger(label: "test") { _ in Handler(captured: captured) })
        // The enqueue writes; the update after the attempt (a replace: "write" first) fails.
        let service = try OutboundService(configuration: configuration, environment: [:], log: log, laneFaults: { step throws(DurableFiles.Failure) in
            if step == "write" { throw DurableFiles.Failure(description: "no space left on device (injected)") }
        })
        service.takeOutbox()
        #expect(waitUntil(timeout: .seconds(15)) { captured.all.contains { $0.1 == "cannot record a delivery attempt in the queue" } },
                "\(captured.all.map(\.1))")
        let line = try #require(captured.all.first { $0.1 == "cannot record a delivery attempt in the queue" })
        #expect(line.0 == .error)
        #expect(line.2["reason"]?.contains("no space left on device (injected)") == true, "\(line.2)")
        EnqueueCrashTests.stop(service)
    }
}
