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
        // Listed, then gone: a name whose file no longer resolves.
        try FileManager.default.createSymbolicLink(atPath: control.directory + "/gone.request", withDestinationPath: control.directory + "/nowhere")
        try Data("not json".utf8).write(to: URL(fileURLWithPath: control.directory + "/broken.request"))
        let name = try control.send(.retry, id: "abc")
        let pending = control.pending()
        #expect(pending.map(\.name) == [name])
        #expect(!FileManager.default.fileExists(atPath: control.directory + "/gone.answer"))
        #expect(control.answer(to: "broken", timeout: .seconds(1))?.message == "the request could not be read")
    }
}
