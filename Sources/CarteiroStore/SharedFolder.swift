#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig

/// A folder the desk's group can write into: the event spool, the outbox and its `rejected/`,
/// `control/`. A member of that group can put anything at any name there: a symbolic link to
/// the service's secrets, a FIFO, a hard link, and can swap one for another at any moment. So
/// every file here is reached by its name in the folder's open descriptor, never by a path:
/// read with `O_NOFOLLOW` and checked on the opened descriptor (`fstat`), created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW` under a name nobody can guess, renamed and removed with
/// `renameat`/`unlinkat` (which act on the link itself, never on what it points at). Folders the
/// service keeps inside a shared one (`.taken`, `.pending`) are opened the same way and must be
/// the service's own: anything else found at their name is moved aside.
package final class SharedFolder: Sendable {
    package let path: String
    let descriptor: Int32

    /// Opens the folder itself (its path is the operator's: the state directory or the spool
    /// setting, whose parents the group cannot write).
    package init(_ path: String) throws(DurableFiles.Failure) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DurableFiles.failure("cannot open directory", path) }
        self.path = path
        self.descriptor = descriptor
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// A name as a path, for messages.
    package func path(_ name: String) -> String { path + "/" + name }

    /// The service's own folder `name` inside this one (made with `mode` if missing). Anything
    /// else at its name (a symbolic link, a file, a folder another user made) is moved aside as `NAME.refused-TIME-RANDOM`, `report`ed with
    /// its path, and the folder made anew; what is opened is checked on its descriptor.
    package func ownFolder(_ name: String, mode: mode_t = 0o750, report: (RefusedEntry) -> Void) throws(DurableFiles.Failure) -> SharedFolder {
        for _ in 0..<4 {
            let child = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 {
                var info = stat()
                if fstat(child, &info) == 0, info.st_uid == geteuid() { return SharedFolder(path: path(name), descriptor: child) }
                close(child)
            } else if errno != ENOENT && errno != ELOOP && errno != ENOTDIR {
                throw DurableFiles.failure("cannot open directory", path(name))
            }
            var found = stat()
            if fstatat(descriptor, name, &found, AT_SYMLINK_NOFOLLOW) == 0 {
                let aside = "\(name).refused-\(time(nil))-\(UInt32.random(in: 0...UInt32.max))"
                guard renameat(descriptor, name, descriptor, aside) == 0 else { throw DurableFiles.failure("cannot move aside", path(name)) }
                report(RefusedEntry(path: path(name), reason: "is \(Self.describe(found)), not this service's own folder", action: "moved aside to \(path(aside))"))
            }
            // The umask would take the group's bits of a shared folder: none for this one mkdir
            // (files made meanwhile by other threads name their own modes). A setgid bit of
            // this folder is inherited, as for any mkdir.
            let previous = umask(~mode & 0o777)
            let made = mkdirat(descriptor, name, mode & 0o777)
            let reason = errno
            umask(previous)
            if made != 0 && reason != EEXIST { errno = reason; throw DurableFiles.failure("cannot create", path(name)) }
        }
        throw DurableFiles.Failure(description: "cannot create \(path(name)): something else keeps appearing at its name")
    }

    /// What an entry is, in words (for reports).
    static func describe(_ info: stat) -> String {
        switch info.st_mode & S_IFMT {
        case S_IFLNK: "a symbolic link"
        case S_IFREG: info.st_nlink > 1 ? "a file with \(info.st_nlink) names (a hard link)" : info.st_uid != geteuid() ? "a file of \(StateAccess.userName(info.st_uid))" : "a file"
        case S_IFDIR: "a folder of \(StateAccess.userName(info.st_uid))"
        case S_IFIFO: "a FIFO"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFSOCK: "a socket"
        default: "not a file"
        }
    }

    /// The folder's entries (not `.` and `..`), in no order.
    package func names() -> [String] {
        let copy = dup(descriptor)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            return []
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The entry itself (a link is not followed): nil when there is none.
    package func status(_ name: String) -> stat? {
        var info = stat()
        return fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// A file's bytes: never through a link, checked on the opened descriptor.
    package func read(_ name: String, limit: Int, requirements: RegularFile.Requirements = .init()) -> Result<[UInt8], RegularFile.Problem> {
        RegularFile.read(in: descriptor, name: name, limit: limit, requirements: requirements)
    }

    /// Creates `name`, which must not exist (a link at the name counts as existing, and is not
    /// followed): false when something has the name. Fsynced when `sync`.
    @discardableResult
    /// `group`: the file's group (the folder's, where the folder is not setgid); for commands run
    /// by a member or root, never needed by the daemon (its folders are setgid, its group theirs).
    package func writeNew(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o640, sync: Bool = true, group: gid_t? = nil) throws(DurableFiles.Failure) -> Bool {
        let fd = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd < 0 && errno == EEXIST { return false }
        guard fd >= 0 else { throw DurableFiles.failure("cannot create", path(name)) }
        defer { close(fd) }
        // Only where the file did not get the group already (a setgid folder gives it): the
        // packaged unit's system-call filter (~@privileged) kills a process that calls fchown.
        var made = stat()
        if let group, fstat(fd, &made) == 0, made.st_gid != group { _ = fchown(fd, uid_t.max, group) }
        do throws(DurableFiles.Failure) {
            try DurableFiles.writeAll(bytes, to: fd, path: path(name))
            guard !sync || fsync(fd) == 0 else { throw DurableFiles.failure("cannot fsync", path(name)) }
        } catch {
            unlinkat(descriptor, name, 0)
            throw error
        }
        return true
    }

    /// Puts `bytes` at `name` whatever is there now (a planted link is replaced, not written
    /// through): written under a fresh temporary name made with `O_EXCL`, fsynced, renamed over.
    package func replace(_ name: String, with bytes: [UInt8], mode: mode_t = 0o640, group: gid_t? = nil) throws(DurableFiles.Failure) {
        let temporary = Self.temporaryName(for: name)
        try writeNew(temporary, bytes, mode: mode, group: group)
        guard renameat(descriptor, temporary, descriptor, name) == 0 else {
            let failure = DurableFiles.failure("cannot rename \(path(temporary)) to", path(name))
            unlinkat(descriptor, temporary, 0)
            throw failure
        }
    }

    /// `.NAME.PID.RANDOM.tmp`: a name nobody can have planted a link at in advance.
    package static func temporaryName(for name: String) -> String {
        ".\(name).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
    }

    /// Renames the entry itself (a link moves as a link) into `folder` as `newName`.
    package func move(_ name: String, to folder: SharedFolder, as newName: String) -> Bool {
        renameat(descriptor, name, folder.descriptor, newName) == 0
    }

    /// Removes the entry itself (a link, not what it points at).
    @discardableResult
    package func remove(_ name: String) -> Bool {
        unlinkat(descriptor, name, 0) == 0
    }

    /// Makes the folder's entries durable.
    package func sync() throws(DurableFiles.Failure) {
        guard fsync(descriptor) == 0 else { throw DurableFiles.failure("cannot fsync directory", path) }
    }

    /// The folder's own group.
    package var group: gid_t? {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? info.st_gid : nil
    }
}

/// An entry of a shared folder that was not what belongs there, and what was done with it:
/// for the caller to report once (`shared folder entry refused`).
package struct RefusedEntry: Sendable, Equatable {
    package var path: String
    package var reason: String
    package var action: String
    package init(path: String, reason: String, action: String) {
        self.path = path
        self.reason = reason
        self.action = action
    }

    /// The log message of the report (its journal catalog entry is keyed by it).
    package static let message = "shared folder entry refused"

    /// The log fields of the report.
    package var fields: KeyValuePairs<String, String> { ["path": path, "reason": reason, "action": action] }
}
