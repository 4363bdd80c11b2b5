import Foundation
import Testing
import CarteiroTesting
@testable import CarteiroStore

/// A batch's files are made by name in their open directory; a directory moved or replaced
/// between batches is found again at its path; nothing stays open after the poll.
struct DirectoryHandlesTests {
    @Test func filesAreMadeInTheDirectoryAtTheirPath() throws {
        let root = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: root.path + "/spool/ab", withIntermediateDirectories: true)
        let handles = DirectoryHandles()
        let place = handles.place(root.path + "/spool/one.json")
        #expect(place.directory >= 0 && place.name == "one.json" && place.path == root.path + "/spool/one.json")
        #expect(try DurableFiles.writeNew(Array("1".utf8), at: place))
        #expect(try !DurableFiles.writeNew(Array("2".utf8), at: place), "a name taken is not written over")
        #expect(DurableFiles.read(root.path + "/spool/one.json") == Array("1".utf8))
        // Under a base: one descriptor for all its folders, the name relative to it.
        let nested = handles.place(root.path + "/spool/ab/cd", in: root.path + "/spool")
        #expect(nested.directory == place.directory && nested.name == "ab/cd")
        try DurableFiles.writeUnsynced(Array("x".utf8), at: nested)
        try DurableFiles.rename(nested, handles.place(root.path + "/spool/two"))
        #expect(DurableFiles.read(root.path + "/spool/two") == Array("x".utf8))
        #expect(handles.count == 1)
        // Paths without a directory part, and paths outside the base, are used as they are.
        #expect(handles.place("relative").directory == AT_FDCWD)
        #expect(handles.place("/top").directory == AT_FDCWD)
        #expect(handles.place(root.path + "/other/x", in: root.path + "/spool").directory == AT_FDCWD)
        // A directory that cannot be opened: the path, and the operation says why.
        let missing = handles.place(root.path + "/nowhere/x")
        #expect(missing.directory == AT_FDCWD)
        #expect(throws: DurableFiles.Failure.self) { try DurableFiles.writeNew([1], at: missing) }
        handles.closeAll()
        #expect(handles.count == 0)
    }

    @Test func aDirectoryReplacedBetweenBatchesIsFoundAgainAtItsPath() throws {
        let root = try TemporaryDirectory()
        let spool = root.path + "/spool"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let handles = DirectoryHandles()
        #expect(try DurableFiles.writeNew([1], at: handles.place(spool + "/before")))
        // An operator moves the spool away and makes a new one.
        try FileManager.default.moveItem(atPath: spool, toPath: root.path + "/moved")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        handles.revalidate()
        #expect(try DurableFiles.writeNew([2], at: handles.place(spool + "/after")))
        #expect(DurableFiles.exists(spool + "/after") && !DurableFiles.exists(root.path + "/moved/after"))
        #expect(DurableFiles.exists(root.path + "/moved/before"))
        // The old descriptor was set aside, not closed under a batch that may use it.
        #expect(handles.count == 2)
        // Removed altogether: the path is used, and fails as it always did.
        try FileManager.default.removeItem(atPath: spool)
        handles.revalidate()
        #expect(throws: DurableFiles.Failure.self) { try DurableFiles.writeNew([3], at: handles.place(spool + "/gone")) }
        handles.closeAll()
        #expect(handles.count == 0)
    }

    /// A guarded directory (one in a folder others can write: `.pending` in the spool) swapped
    /// for a link is never written through: its files fail closed. An unguarded one may be a
    /// link an operator made (raw messages on another disk), and is followed.
    @Test func aGuardedDirectoryIsNeverReachedThroughALink() throws {
        let root = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: root.path + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/pending", withDestinationPath: root.path + "/elsewhere")
        try FileManager.default.createSymbolicLink(atPath: root.path + "/raw", withDestinationPath: root.path + "/elsewhere")
        let handles = DirectoryHandles(guarded: [root.path + "/pending"])
        #expect(throws: DurableFiles.Failure.self) { try DurableFiles.writeNew([1], at: handles.place(root.path + "/pending/x")) }
        #expect(!DurableFiles.exists(root.path + "/elsewhere/x"))
        #expect(try DurableFiles.writeNew([2], at: handles.place(root.path + "/raw/y")))
        #expect(DurableFiles.exists(root.path + "/elsewhere/y"))
        handles.closeAll()
    }
}

