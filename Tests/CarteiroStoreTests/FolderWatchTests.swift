import Foundation
import Testing
import CarteiroStore
import CarteiroTesting

/// A folder is listed again when something was added, renamed in or removed, and at least every
/// `forcedEvery` ticks; a quiet folder whose last listing took everything is not.
struct FolderWatchTests {
    @Test func listsOnlyWhenTheFolderChanged() throws {
        let directory = try TemporaryDirectory()
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
        watch.listed(DirectoryStamp(directory.path), quiet: true)
        #expect(unlink(directory.path + "/s.json") == 0)
        let went = watch.shouldList(DirectoryStamp(directory.path))
        #expect(went, "a file went")
    }

    @Test func aQuietFolderIsStillListedNowAndThen() throws {
        let directory = try TemporaryDirectory()
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
