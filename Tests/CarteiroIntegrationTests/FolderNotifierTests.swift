@testable import CarteiroDaemon
import CarteiroTesting
import Dispatch
import Foundation
import Testing

/// The outbox's inotify watch: a file renamed or written into the folder says "look now", and a
/// folder replaced under the watch is followed once `rewatch` runs (the outbox's slow tick).
struct FolderNotifierTests {
    final class Calls: @unchecked Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        func wait() -> Bool { semaphore.wait(timeout: .now() + 10) == .success }
    }

    @Test func aFileArrivingSaysLookNowAndAReplacedFolderIsFollowed() throws {
        let directory = try TemporaryDirectory()
        let outbox = directory.path + "/outbox"
        #expect(mkdir(outbox, 0o700) == 0)
        let queue = DispatchQueue(label: "test.notifier")
        let calls = Calls()
        let notifier = try #require(FolderNotifier(paths: [outbox], queue: queue) { calls.semaphore.signal() })
        defer { notifier.cancel() }
        // As the desk drops a submission: written aside, renamed in.
        _ = try directory.write("s.json.tmp", "{}")
        #expect(rename(directory.path + "/s.json.tmp", outbox + "/s.json") == 0)
        #expect(calls.wait(), "a renamed-in file is noticed")
        // Written in place.
        _ = try directory.write("outbox/t.json", "{}")
        #expect(calls.wait(), "a file written in place is noticed")
        // The folder replaced: the old watch is gone; the tick's rewatch finds the new folder.
        #expect(rename(outbox, directory.path + "/old-outbox") == 0)
        #expect(mkdir(outbox, 0o700) == 0)
        queue.sync { notifier.rewatch() }
        while calls.semaphore.wait(timeout: .now()) == .success {}
        _ = try directory.write("outbox/u.json", "{}")
        #expect(calls.wait(), "a file in the replacing folder is noticed")
    }

    @Test func aFolderThatCannotBeWatchedMeansNoNotifier() throws {
        let directory = try TemporaryDirectory()
        // The caller then ticks as it would without inotify.
        let notifier = FolderNotifier(paths: [directory.path, directory.path + "/missing"], queue: DispatchQueue(label: "test.notifier")) {}
        #expect(notifier == nil)
    }
}
