import Foundation
import Testing
import CarteiroStore
import CarteiroTesting

/// A folder is listed again when something was added, renamed in or removed, and at least every
/// `forcedEvery` ticks; a quiet folder whose last listing took everything is not. A change less
/// than a second old is not trusted: the file system's coarse clock may stamp the next one the same.
struct FolderWatchTests {
    /// Dates the folder's last change `seconds` back, as if it had been quiet since.
    func age(_ path: String, seconds: Int = 10) {
        var times = [timespec(tv_sec: time(nil) - seconds, tv_nsec: 0), timespec(tv_sec: time(nil) - seconds, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    @Test func listsOnlyWhenTheFolderChanged() throws {
        let directory = try TemporaryDirectory()
        age(directory.path)
        var watch = FolderWatch()
        var stamp = DirectoryStamp(directory.path)
        #expect(stamp != nil)
        let first = watch.shouldList(stamp)
        #expect(first)
        watch.listed(stamp, quiet: true)
        let unchanged = watch.shouldList(DirectoryStamp(directory.path))
        #expect(!unchanged, "nothing changed")
        // A submission renamed in, as the desk drops one.
        _ = try directory.write("s.json.tmp", "{}")
        #expect(rename(directory.path + "/s.json.tmp", directory.path + "/s.json") == 0)
        stamp = DirectoryStamp(directory.path)
        let arrived = watch.shouldList(stamp)
        #expect(arrived, "a file arrived")
        // A listing that left something behind (a full batch) is not quiet: the next tick lists.
        watch.listed(stamp, quiet: false)
        let leftBehind = watch.shouldList(DirectoryStamp(directory.path))
        #expect(leftBehind)
        age(directory.path)
        watch.listed(DirectoryStamp(directory.path), quiet: true)
        #expect(unlink(directory.path + "/s.json") == 0)
        let went = watch.shouldList(DirectoryStamp(directory.path))
        #expect(went, "a file went")
    }

    @Test func aChangeTooRecentToTrustIsListedAgain() throws {
        let directory = try TemporaryDirectory()
        _ = try directory.write("s.json", "{}")
        var watch = FolderWatch()
        let fresh = DirectoryStamp(directory.path)
        #expect(fresh?.settled == false)
        _ = watch.shouldList(fresh)
        watch.listed(fresh, quiet: true)
        // The same stamp, but a file written now could carry it too: listed again.
        let again = watch.shouldList(DirectoryStamp(directory.path))
        #expect(again)
        age(directory.path)
        let settled = DirectoryStamp(directory.path)
        #expect(settled?.settled == true)
        _ = watch.shouldList(settled)
        watch.listed(settled, quiet: true)
        let quiet = watch.shouldList(DirectoryStamp(directory.path))
        #expect(!quiet)
    }

    @Test func aQuietFolderIsStillListedNowAndThen() throws {
        let directory = try TemporaryDirectory()
        age(directory.path)
        var watch = FolderWatch()
        let stamp = DirectoryStamp(directory.path)
        _ = watch.shouldList(stamp)
        watch.listed(stamp, quiet: true)
        let listings = (0..<(FolderWatch.forcedEvery * 2)).filter { _ in watch.shouldList(stamp) }.count
        #expect(listings == 2)
        // A folder that cannot be looked at is always listed (the listing reports why).
        let missing = watch.shouldList(DirectoryStamp(directory.path + "/missing"))
        #expect(missing)
    }
}

/// The control folder's requests: one that is gone by the time it is read (answered meanwhile
/// by the daemon, which removes a request once its answer is written) is skipped, never answered
/// as unreadable over the real answer; one that is there but not a request is answered as such.
struct ControlRequestTests {
    @Test func aRequestGoneSinceTheListingIsNotAnsweredAgain() throws {
        let state = try TemporaryDirectory()
        let control = QueueControl(stateDirectory: state.path)
        try FileManager.default.createDirectory(atPath: control.directory, withIntermediateDirectories: true)
        // A link (here one that leads nowhere) is no request: removed unread, reported, not answered.
        try FileManager.default.createSymbolicLink(atPath: control.directory + "/gone.request", withDestinationPath: control.directory + "/nowhere")
        try Data("not json".utf8).write(to: URL(fileURLWithPath: control.directory + "/broken.request"))
        let name = try control.send(.retry, id: "abc")
        let pending = control.pending()
        #expect(pending.requests.map(\.name) == [name])
        #expect(pending.refused.map(\.path) == [control.directory + "/gone.request"])
        #expect(pending.refused.first?.reason == "is a symbolic link (never followed here)")
        #expect(!FileManager.default.fileExists(atPath: control.directory + "/gone.answer"))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: control.directory + "/gone.request")) == nil)
        #expect(control.answer(to: "broken", timeout: .seconds(1))?.message == "the request could not be read")
    }

    /// A link planted where the daemon writes an answer (or its temporary file) is replaced, never
    /// written through: the file it points at keeps its bytes.
    @Test func answersNeverWriteThroughPlantedLinks() throws {
        let state = try TemporaryDirectory()
        let control = QueueControl(stateDirectory: state.path)
        try FileManager.default.createDirectory(atPath: control.directory, withIntermediateDirectories: true)
        let secret = try state.write("threading.key", "SECRET-KEY-BYTES")
        try FileManager.default.createSymbolicLink(atPath: control.directory + "/n1.answer", withDestinationPath: secret)
        try FileManager.default.createSymbolicLink(atPath: control.directory + "/.n1.answer.tmp", withDestinationPath: secret)
        try Data(#"{"command":"retry","id":"x"}"#.utf8).write(to: URL(fileURLWithPath: control.directory + "/n1.request"))
        control.respond(to: "n1", QueueCommand.Answer(done: true, message: "in: 0 handed on"))
        #expect(try String(contentsOfFile: secret, encoding: .utf8) == "SECRET-KEY-BYTES")
        var info = stat()
        #expect(lstat(control.directory + "/n1.answer", &info) == 0 && info.st_mode & S_IFMT == S_IFREG)
        #expect(control.answer(to: "n1", timeout: .seconds(1))?.message == "in: 0 handed on")
    }

    /// Answers nobody collected are removed after `answerLifetime`; fresh ones stay.
    @Test func uncollectedAnswersAreSwept() throws {
        let state = try TemporaryDirectory()
        let control = QueueControl(stateDirectory: state.path)
        try FileManager.default.createDirectory(atPath: control.directory, withIntermediateDirectories: true)
        for index in 0..<30 {
            try Data(#"{"command":"retry","id":"x"}"#.utf8).write(to: URL(fileURLWithPath: control.directory + "/r\(index).request"))
            control.respond(to: "r\(index)", QueueCommand.Answer(done: true, message: "m"))
        }
        #expect(control.sweep() == 0)
        let later = Int64(time(nil)) + QueueControl.answerLifetime + 1
        #expect(control.sweep(now: later) == 30)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: control.directory)) ?? []).isEmpty)
    }
}
