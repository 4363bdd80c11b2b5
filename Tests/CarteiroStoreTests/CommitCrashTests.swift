import Foundation
import Testing
import CarteiroTesting
@testable import CarteiroStore

/// The inbound commit protocol stopped at every one of its steps, deterministically: either
/// the process dies there (a new store recovers at the next start), or the step fails in a
/// running daemon (the store finishes the batch before the next poll). Either way the next
/// poll must end with every message handed on exactly once.
struct CommitCrashTests {
    struct Stop: Error {}

    /// Counts the steps and stops the commit at step `at` (1-based); nil never stops.
    final class Injector: @unchecked Sendable {
        let at: Int?
        private(set) var steps = 0
        private(set) var stopped = false
        private(set) var names: [String] = []
        init(at: Int?) { self.at = at }
        func step(_ name: String) throws(DurableFiles.Failure) {
            steps += 1
            names.append(name)
            if steps == at {
                stopped = true
                throw DurableFiles.Failure(description: "injected stop at step \(steps) (\(name))")
            }
        }
    }

    static let messages: [(uid: UInt32, key: String)] = (1...5).map { (UInt32($0), "id:<m\($0)@x.example>") }

    /// One poll as the poller does it: what lies beyond the state's last UID, less what the
    /// keys say was handed on, in batches of two, each committed with its position.
    static func poll(_ store: MailboxStore) throws(DurableFiles.Failure) {
        let pending = messages.filter { $0.uid > store.state.lastUID }
        var index = 0
        while index < pending.count {
            let batch = Array(pending[index..<min(index + 2, pending.count)])
            index += 2
            var staged: [StagedMessage] = []
            for message in batch where !store.dedupeKeys.contains(message.key) {
                staged.append(try store.stage(id: "m/9/\(message.uid)", token: "t\(message.uid)", dedupeKey: message.key,
                                              event: Array("{\"uid\": \(message.uid)}".utf8), raw: Array("Message-ID: <m\(message.uid)>\r\n\r\nx\r\n".utf8),
                                              attachments: [(sha256: "ab\(message.uid)", data: [1, 2, 3])]))
            }
            var next = store.state
            next.uidValidity = 9
            next.lastUID = batch.last?.uid ?? next.lastUID
            try store.commit(staged, newState: next)
        }
    }

    /// The desk: takes every event in the spool (removes it), as it goes, and remembers each.
    final class Desk {
        let spool: String
        var taken: [String] = []
        init(_ root: String) { spool = root + "/events" }
        func take() {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []) where name.hasSuffix(".json") {
                taken.append(name)
                unlink(spool + "/" + name)
            }
        }
    }

    static func check(_ root: String, _ store: MailboxStore, desk: Desk, context: String) {
        desk.take()
        #expect(desk.taken.sorted() == (1...5).map { "m+9+\($0).json" }, "each event exactly once: \(context)")
        let raw = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/raw/m/9")) ?? []).sorted()
        #expect(raw == (1...5).map { "\($0).eml" }, "\(context)")
        for uid in 1...5 {
            #expect(FileManager.default.contents(atPath: root + "/attachments/ab/ab\(uid)") == Data([1, 2, 3]), "attachment \(uid): \(context)")
        }
        #expect(store.state.lastUID == 5, "\(context)")
        #expect(store.state.handedOn == 5, "handed on once each: \(context)")
        #expect(store.dedupeKeys == Set(messages.map(\.key)), "\(context)")
        #expect(!FileManager.default.fileExists(atPath: root + "/mailboxes/m/intent.json"), "\(context)")
        let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/mailboxes/m/staging")) ?? [])
            + ((try? FileManager.default.contentsOfDirectory(atPath: root + "/events/.pending")) ?? [])
        #expect(leftovers.isEmpty, "no temporary file left: \(leftovers) \(context)")
    }

    static func directory(_ path: String) -> StateDirectory {
        let directory = StateDirectory(root: path, spool: path + "/events")
        _ = try? directory.prepare(mailboxes: ["m"])
        return directory
    }

    /// The steps of a clean run: every one of them is a place to stop.
    static let stepNames: [String] = {
        guard let temporary = try? TemporaryDirectory() else { return [] }
        let injector = Injector(at: nil)
        guard let store = try? MailboxStore(directory: directory(temporary.path), mailbox: "m", faults: injector.step) else { return [] }
        try? poll(store)
        return injector.names
    }()
    static var totalSteps: Int { stepNames.count }

    @Test func theProtocolHasTheStepsThisTestStopsAt() {
        // 3 batches; each: directories, sync, intent, its renames (the event of each
        // message: the raw message and the attachment are written in their places), directory
        // sync, keys, state, intent removed.
        #expect(Self.totalSteps == 3 * 7 + (2 + 2 + 1), "\(Self.stepNames)")
    }

    @Test(arguments: 1...(3 * 7 + 5))
    func killedAtStepNThenRestarted(step: Int) throws {
        let temporary = try TemporaryDirectory()
        let injector = Injector(at: step)
        let store = try MailboxStore(directory: Self.directory(temporary.path), mailbox: "m", faults: injector.step)
        let desk = Desk(temporary.path)
        #expect(throws: DurableFiles.Failure.self) { try Self.poll(store) }
        #expect(injector.stopped, "the stop landed during the work")
        desk.take()
        // The process is gone; the next start recovers, and its first poll finishes the work.
        let restarted = try MailboxStore(directory: Self.directory(temporary.path), mailbox: "m")
        try Self.poll(restarted)
        desk.take()
        Self.check(temporary.path, restarted, desk: desk, context: "killed at step \(step)")
    }

    @Test(arguments: 1...(3 * 7 + 5))
    func failingAtStepNInARunningDaemon(step: Int) throws {
        let temporary = try TemporaryDirectory()
        let injector = Injector(at: step)
        let store = try MailboxStore(directory: Self.directory(temporary.path), mailbox: "m", faults: injector.step)
        let desk = Desk(temporary.path)
        #expect(throws: DurableFiles.Failure.self) { try Self.poll(store) }
        #expect(injector.stopped)
        desk.take()
        // The same store polls again, as the running daemon does, after finishing what the
        // failed commit left (never by fetching and handing the batch on again).
        try store.finishInterruptedCommit()
        try Self.poll(store)
        Self.check(temporary.path, store, desk: desk, context: "failed at step \(step)")
    }
}

/// The single-file writes (a queue entry's update, a mailbox's state) stopped at each step:
/// the file reads as the old content or the new one, never as neither, and the next write
/// goes through.
struct ReplaceCrashTests {
    final class Stopper: @unchecked Sendable {
        let at: Int
        var steps = 0
        init(at: Int) { self.at = at }
        func step(_ name: String) throws(DurableFiles.Failure) {
            steps += 1
            if steps == at { throw DurableFiles.Failure(description: "stopped at \(name)") }
        }
    }

    @Test(arguments: 1...3)
    func aQueueUpdateStoppedAtStepNLeavesTheOldOrTheNewEntry(step: Int) throws {
        let directory = try TemporaryDirectory()
        let plain = OutboundQueue(stateDirectory: directory.path)
        var item = QueuedMessage(id: "q1", mailbox: "out", envelopeFrom: "a@b.example", recipients: ["c@d.example"], messageID: "<m@x>",
                                 request: "7", contract: "acme", created: 100)
        try plain.enqueue([(item, Array("Subject: x\r\n\r\nbody\r\n".utf8))])
        let stopper = Stopper(at: step)
        let faulty = OutboundQueue(stateDirectory: directory.path, faults: stopper.step)
        item.attempts = 3
        item.lastError = "451 later"
        #expect(throws: DurableFiles.Failure.self) { try faulty.update(item) }
        let read = try #require(plain.message(in: "out", id: "q1"), "the entry must still read")
        #expect(read.attempts == 0 || read.attempts == 3)
        #expect(read.attempts == 3 || read.lastError == nil, "never half of one and half of the other")
        try plain.update(item)
        #expect(plain.message(in: "out", id: "q1")?.attempts == 3)
        #expect(plain.stamps(in: "out").keys.sorted() == ["q1"], "a stale temporary file is no entry")
    }

    @Test(arguments: 1...3)
    func aStateWriteStoppedAtStepNLeavesTheOldOrTheNewState(step: Int) throws {
        let directory = try TemporaryDirectory()
        let layout = StateDirectory(root: directory.path, spool: directory.path + "/events")
        try layout.prepare(mailboxes: ["m"])
        var state = MailboxState()
        state.uidValidity = 7
        state.lastUID = 10
        try MailboxStore(directory: layout, mailbox: "m").record(state)
        let stopper = Stopper(at: step)
        let faulty = try MailboxStore(directory: layout, mailbox: "m", faults: stopper.step)
        state.lastUID = 20
        #expect(throws: DurableFiles.Failure.self) { try faulty.record(state) }
        // The next start reads one state or the other, whole.
        let restarted = try MailboxStore(directory: layout, mailbox: "m")
        #expect(restarted.state.uidValidity == 7)
        #expect(restarted.state.lastUID == 10 || restarted.state.lastUID == 20)
    }
}

/// The raw message is written straight to its place when no file has its name: a message not
/// committed (a duplicate) takes its raw file away with it, and one whose name is taken (UIDs
/// reused by a server that renumbered its folder) is written beside and never touches the
/// file already there unless it is committed.
struct RawInPlaceTests {
    @Test func aDiscardedMessageLeavesNoRawAndNeverTheRawOfAnother() throws {
        let temporary = try TemporaryDirectory()
        let directory = CommitCrashTests.directory(temporary.path)
        let store = try MailboxStore(directory: directory, mailbox: "m")
        let first = Array("Message-ID: <a@x>\r\n\r\nfirst\r\n".utf8)
        let committed = try store.stage(id: "m/9/1", token: "a", dedupeKey: "id:<a@x>", event: Array("{}".utf8), raw: first, attachments: [])
        var next = store.state
        next.uidValidity = 9
        next.lastUID = 1
        try store.commit([committed], newState: next)
        let rawPath = temporary.path + "/raw/m/9/1.eml"
        #expect(FileManager.default.contents(atPath: rawPath) == Data(first))

        // The same name again, for another message that is then discarded: the first stays.
        let other = try store.stage(id: "m/9/1", token: "b", dedupeKey: "id:<b@x>", event: Array("{}".utf8),
                                    raw: Array("Message-ID: <b@x>\r\n\r\nother\r\n".utf8), attachments: [])
        #expect(FileManager.default.contents(atPath: rawPath) == Data(first), "not overwritten before a commit")
        store.discard(other)
        #expect(FileManager.default.contents(atPath: rawPath) == Data(first))

        // A fresh name, discarded: nothing left in raw/ nor in staging.
        let fresh = try store.stage(id: "m/9/2", token: "c", dedupeKey: "id:<c@x>", event: Array("{}".utf8),
                                    raw: Array("Message-ID: <c@x>\r\n\r\nfresh\r\n".utf8), attachments: [])
        #expect(FileManager.default.fileExists(atPath: temporary.path + "/raw/m/9/2.eml"))
        store.discard(fresh)
        #expect(!FileManager.default.fileExists(atPath: temporary.path + "/raw/m/9/2.eml"))
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: temporary.path + "/mailboxes/m/staging")) ?? []
        #expect(staging.isEmpty, "\(staging)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: temporary.path + "/raw/m/9")) ?? []) == ["1.eml"])
    }
}

/// Attachments are written straight to their names (their SHA-256) too, but they are shared:
/// a file found there is reused only when it holds the very bytes (a batch that never
/// committed may have left it cut short), and a message not committed never removes one.
struct AttachmentInPlaceTests {
    static func stage(_ store: MailboxStore, uid: UInt32, attachment: [UInt8], sha: String = "cd01") throws -> StagedMessage {
        try store.stage(id: "m/9/\(uid)", token: "t\(uid)", dedupeKey: "id:<\(uid)@x>", event: Array("{}".utf8),
                        raw: Array("Message-ID: <\(uid)@x>\r\n\r\nx\r\n".utf8), attachments: [(sha256: sha, data: attachment)])
    }

    static func commit(_ store: MailboxStore, _ staged: [StagedMessage], last: UInt32) throws {
        var next = store.state
        next.uidValidity = 9
        next.lastUID = last
        try store.commit(staged, newState: next)
    }

    @Test func aFileCutShortIsReplacedAndAWholeOneReused() throws {
        let temporary = try TemporaryDirectory()
        let store = try MailboxStore(directory: CommitCrashTests.directory(temporary.path), mailbox: "m")
        let path = temporary.path + "/attachments/cd/cd01"
        let data = Array(repeating: UInt8(7), count: 5000)
        // What a crash can leave: the name taken, the content short (or of the right size but wrong).
        try FileManager.default.createDirectory(atPath: temporary.path + "/attachments/cd", withIntermediateDirectories: true)
        for torn in [Array(data.prefix(100)), Array(repeating: UInt8(0), count: 5000)] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data(torn)))
            let staged = try Self.stage(store, uid: 1, attachment: data)
            #expect(FileManager.default.contents(atPath: path) == Data(torn), "nothing replaced before the commit")
            try Self.commit(store, [staged], last: 1)
            #expect(FileManager.default.contents(atPath: path) == Data(data), "replaced at the commit")
        }
        // Whole: reused as it is, and made fresh for the clean-up.
        var old = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &old, 0) == 0)
        let staged = try Self.stage(store, uid: 2, attachment: data)
        #expect(staged.renames.count == 1, "only the event is renamed: \(staged.renames)")
        try Self.commit(store, [staged], last: 2)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mtim.tv_sec > 1_000_000)
        #expect(FileManager.default.contents(atPath: path) == Data(data))
    }

    @Test func aDiscardedMessageLeavesTheAttachmentAnotherSharesAndItsOwn() throws {
        let temporary = try TemporaryDirectory()
        let store = try MailboxStore(directory: CommitCrashTests.directory(temporary.path), mailbox: "m")
        let path = temporary.path + "/attachments/cd/cd01"
        let data = Array("logo".utf8)
        let duplicate = try Self.stage(store, uid: 1, attachment: data)
        let kept = try Self.stage(store, uid: 2, attachment: data)
        store.discard(duplicate)
        try Self.commit(store, [kept], last: 2)
        #expect(FileManager.default.contents(atPath: path) == Data(data))
        // Left by a message never committed, the file is still there for the next one to reuse.
        let alone = try Self.stage(store, uid: 3, attachment: Array("other".utf8), sha: "ef02")
        store.discard(alone)
        #expect(FileManager.default.contents(atPath: temporary.path + "/attachments/ef/ef02") == Data("other".utf8))
    }
}

/// Events get their times when their batch is built: each batch a run of increasing times,
/// after every time given before, so that the spool's order (by time) is the mailbox's.
struct EventStampTests {
    @Test func batchesTakeRunsOfTimesThatNeverOverlap() throws {
        let temporary = try TemporaryDirectory()
        let store = try MailboxStore(directory: CommitCrashTests.directory(temporary.path), mailbox: "m")
        var previousLast: (Int, Int) = (0, 0)
        for count in [1, 200, 3, 0, 50] {
            let first = store.reserveStamps(count)
            let last = first.advanced(byMicroseconds: max(count, 1) - 1)
            #expect((first.tv_sec, first.tv_nsec) > previousLast, "batch of \(count)")
            previousLast = (last.tv_sec, last.tv_nsec)
        }
        let carried = timespec(tv_sec: 10, tv_nsec: 999_999_500).advanced(byMicroseconds: 2_000_001)
        #expect(carried.tv_sec == 13 && carried.tv_nsec == 500, "\(carried)")
    }

    @Test func theEventFileHasItsTimeWhenStaged() throws {
        let temporary = try TemporaryDirectory()
        let store = try MailboxStore(directory: CommitCrashTests.directory(temporary.path), mailbox: "m")
        let stamp = timespec(tv_sec: 1_900_000_000, tv_nsec: 123_000)
        let staged = try store.stage(id: "m/9/1", token: "a", dedupeKey: "id:<a@x>", event: Array("{}".utf8),
                                     raw: Array("Message-ID: <a@x>\r\n\r\nx\r\n".utf8), attachments: [], stamp: stamp)
        var next = store.state
        next.uidValidity = 9
        next.lastUID = 1
        try store.commit([staged], newState: next)
        var info = stat()
        #expect(stat(temporary.path + "/events/m+9+1.json", &info) == 0)
        #expect(info.st_mtim.tv_sec == stamp.tv_sec && info.st_mtim.tv_nsec == stamp.tv_nsec)
    }
}

/// The position these tests give a mailbox: a cursor of their own kind, as a source would.
struct TestPosition: Codable, Equatable {
    var validity: UInt32?
    var last: UInt32 = 0
}

extension MailboxState {
    private var position: TestPosition {
        get { cursor?.decode(TestPosition.self, kind: "test") ?? TestPosition() }
        set { cursor = SourceCursor(kind: "test", newValue) }
    }
    var uidValidity: UInt32? {
        get { position.validity }
        set { position.validity = newValue }
    }
    var lastUID: UInt32 {
        get { position.last }
        set { position.last = newValue }
    }
}
