#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Descriptors of the few directories a poll's batches write into (the raw messages' folder,
/// the pending events, the spool, the attachments), so that each of a message's files is
/// created and renamed by its name in its directory (`openat`, `renameat`) rather than by a
/// path walked from `/` every time: on a deep state directory the walks were several per cent
/// of an import's CPU.
///
/// Open for one poll: `closeAll` runs once the poll's batches are done, so that an idle
/// mailbox holds no descriptor. A descriptor found stale by `revalidate` (its path now names
/// another directory, or none) is set aside, never closed while a batch may still be using
/// it, and closed with the rest. Safe from several threads.
final class DirectoryHandles: Sendable {
    /// Directories that lie in a folder the desk's group can write (`.pending` in the spool):
    /// opened without following a link at their name, and only if they are this user's own.
    /// The others (the raw messages, the attachments, the spool itself) are opened as their
    /// paths say: an operator may have made one a link to another disk.
    private let guarded: Set<String>
    /// The descriptors open by path, and those set aside until `closeAll`.
    private let table = Mutex<(open: [String: Int32], retired: [Int32])>(([:], []))

    init(guarded: Set<String> = []) {
        self.guarded = guarded
    }

    deinit { closeAll() }

    /// `path` as a name in its directory, opened the first time; the path itself when the
    /// directory cannot be opened (the operation then says why, as it always did).
    func place(_ path: String) -> DurableFiles.Place {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.utf8.startIndex else { return .init(path) }
        return place(path, in: String(path[..<slash]))
    }

    /// `path`, which lies under `base`, as its name relative to `base` (for the attachments,
    /// which are spread over 256 folders: one descriptor for them all).
    func place(_ path: String, in base: String) -> DurableFiles.Place {
        guard path.utf8.count > base.utf8.count + 1, path.hasPrefix(base + "/") else { return .init(path) }
        let name = String(decoding: path.utf8.dropFirst(base.utf8.count + 1), as: UTF8.self)
        guard let fd = descriptor(base) else { return .init(path) }
        return .init(directory: fd, name: name, path: path)
    }

    /// A guarded directory is opened without following a link at its own name and must be
    /// this user's: one that is not fails closed (`-1`, which every operation on it refuses)
    /// rather than be reached by path.
    private func descriptor(_ directory: String) -> Int32? {
        let guarded = guarded.contains(directory)
        return table.withLock { table -> Int32? in
            if let fd = table.open[directory] { return fd }
            guard guarded else {
                let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard fd >= 0 else { return nil }
                table.open[directory] = fd
                return fd
            }
            let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return errno == ELOOP || errno == ENOTDIR ? -1 : nil }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_uid == geteuid() else {
                close(fd)
                return -1
            }
            table.open[directory] = fd
            return fd
        }
    }

    /// Before each batch: a descriptor whose path no longer names the same directory (moved,
    /// replaced, removed) is set aside, and the path opened again when next needed.
    func revalidate() {
        let guarded = guarded
        table.withLock { table in
            for (path, fd) in table.open {
                var byPath = stat(), byDescriptor = stat()
                let found = guarded.contains(path) ? lstat(path, &byPath) : stat(path, &byPath)
                if found == 0, fstat(fd, &byDescriptor) == 0,
                   byPath.st_dev == byDescriptor.st_dev, byPath.st_ino == byDescriptor.st_ino { continue }
                table.open[path] = nil
                table.retired.append(fd)
            }
        }
    }

    /// Once nothing uses them: every descriptor closed.
    func closeAll() {
        table.withLock { table in
            for fd in table.open.values { close(fd) }
            for fd in table.retired { close(fd) }
            table = ([:], [])
        }
    }

    /// How many are open (for tests).
    var count: Int { table.withLock { $0.open.count + $0.retired.count } }
}
