#if canImport(Glibc)
import Glibc
#endif
import CFileSync
import Foundation

/// Files written so that a crash leaves either the old content or the new one, never a part:
/// written under a temporary name, fsynced, renamed, and the directory fsynced (Postfix-style).
package enum DurableFiles {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        package init(description: String) { self.description = description }
    }

    static func failure(_ what: String, _ path: String) -> Failure {
        Failure(description: "\(what) \(path): \(String(cString: strerror(errno)))")
    }

    /// `mkdir -p` with mode 0750 (less the umask), failing with the system's own words and the
    /// path ("permission denied" is not "does not exist").
    package static func makeDirectory(_ path: String) throws(Failure) {
        if mkdir(path, 0o750) == 0 { return }
        switch errno {
        case EEXIST:
            var info = stat()
            guard stat(path, &info) == 0 else { throw failure("cannot create", path) }
            guard info.st_mode & S_IFMT == S_IFDIR else { throw Failure(description: "cannot create \(path): something that is not a directory is in the way") }
        case ENOENT:
            let above = parent(path)
            guard above != path, !above.isEmpty, above != "." else { throw failure("cannot create", path) }
            try makeDirectory(above)
            guard mkdir(path, 0o750) == 0 || errno == EEXIST else { throw failure("cannot create", path) }
        default:
            throw failure("cannot create", path)
        }
    }

    /// A directory the desk shares, with the group bits of `mode`: made if missing, set again if
    /// it is this process's own and has drifted (a state directory from an older version). A new
    /// directory inherits the setgid bit of its parent (the state directory's, set by systemd),
    /// so that what a desk user drops there takes the daemon's group; the daemon itself never
    /// sets a setgid bit (the unit's RestrictSUIDSGID= forbids it), so where that cannot be
    /// kept the group bits still are.
    package static func makeDirectory(_ path: String, mode: mode_t) throws(Failure) {
        var info = stat()
        if stat(path, &info) != 0 {
            try makeDirectory(parent(path))
            // The umask (027) would take the group's write bit: 007 for this one mkdir. Files
            // made meanwhile by other threads are unaffected: each names its mode (0640).
            let previous = umask(0o007)
            let made = mkdir(path, mode & 0o777)
            let reason = errno
            umask(previous)
            guard made == 0 || reason == EEXIST else { errno = reason; throw failure("cannot create", path) }
            guard stat(path, &info) == 0 else { throw failure("cannot stat", path) }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw Failure(description: "cannot create \(path): something that is not a directory is in the way") }
        let wanted = mode & 0o777, setgid = mode_t(S_ISGID)
        let current = info.st_mode & 0o777, hasSetgid = info.st_mode & setgid != 0
        guard info.st_uid == geteuid(), current != wanted || (mode & setgid != 0 && !hasSetgid) else { return }
        if chmod(path, mode) == 0 { return }
        // Refused for the setgid bit: the group bits alone, unless that would clear a setgid
        // bit already there (then the directory stays as it is).
        if errno == EPERM && !hasSetgid && chmod(path, wanted) == 0 { return }
        if errno == EPERM { return }
        throw failure("cannot set the mode of", path)
    }

    /// Writes `bytes` to `path` and fsyncs it; no rename.
    package static func writeSynced(_ bytes: [UInt8], to path: String, mode: mode_t = 0o640) throws(Failure) {
        try write(bytes, to: path, mode: mode, sync: true)
    }

    /// Writes `bytes` to `path` without waiting for the disk: for files that a group commit
    /// makes durable together (`syncFileSystems`) before anything points at them.
    /// `stamp`: the file's modification (and access) time.
    package static func writeUnsynced(_ bytes: [UInt8], to path: String, mode: mode_t = 0o640, stamp: timespec? = nil) throws(Failure) {
        try write(bytes, to: path, mode: mode, sync: false, stamp: stamp)
    }

    /// Writes a file that must not exist yet (unsynced): false, with nothing written, when a
    /// file already has the name. A failed write leaves no file behind.
    package static func writeNew(_ bytes: [UInt8], to path: String, mode: mode_t = 0o640) throws(Failure) -> Bool {
        try writeNew(bytes, at: Place(path), mode: mode)
    }

    /// A file's name in a directory open at `directory` (`openat(2)` and kin: the name is
    /// looked up there, not walked from the root), or, with `AT_FDCWD`, a path as it is.
    /// `path` names it in messages, and is where it is when the descriptor is not used.
    package struct Place {
        package var directory: Int32
        package var name: String
        package var path: String

        package init(_ path: String) {
            directory = AT_FDCWD
            name = path
            self.path = path
        }

        package init(directory: Int32, name: String, path: String) {
            self.directory = directory
            self.name = name
            self.path = path
        }
    }

    /// `writeNew` at a place.
    package static func writeNew(_ bytes: [UInt8], at place: Place, mode: mode_t = 0o640) throws(Failure) -> Bool {
        let fd = openat(place.directory, place.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        if fd < 0 && errno == EEXIST { return false }
        guard fd >= 0 else { throw failure("cannot create", place.path) }
        defer { close(fd) }
        do throws(Failure) {
            try writeAll(bytes, to: fd, path: place.path)
        } catch {
            unlinkat(place.directory, place.name, 0)
            throw error
        }
        return true
    }

    /// `writeUnsynced` at a place.
    package static func writeUnsynced(_ bytes: [UInt8], at place: Place, mode: mode_t = 0o640, stamp: timespec? = nil) throws(Failure) {
        try write(bytes, at: place, mode: mode, sync: false, stamp: stamp)
    }

    /// `rename` between places.
    package static func rename(_ from: Place, _ to: Place) throws(Failure) {
        guard renameat(from.directory, from.name, to.directory, to.name) == 0 else { throw failure("cannot rename \(from.path) to", to.path) }
    }

    /// Whether the file open at `fd` holds exactly `bytes` (read from its start).
    static func holds(_ bytes: [UInt8], fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size == off_t(bytes.count) else { return false }
        var buffer = [UInt8](repeating: 0, count: min(max(bytes.count, 1), 1 << 16))
        var offset = 0
        while offset < bytes.count {
            let want = min(buffer.count, bytes.count - offset)
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(offset)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return false }
            let same = buffer.withUnsafeBytes { read in
                bytes.withUnsafeBytes { memcmp(read.baseAddress!, $0.baseAddress! + offset, got) == 0 }
            }
            guard same else { return false }
            offset += got
        }
        return true
    }

    static func writeAll(_ bytes: [UInt8], to fd: Int32, path: String) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("cannot write", path)
            }
            offset += written
        }
    }

    static func write(_ bytes: [UInt8], to path: String, mode: mode_t, sync: Bool, stamp: timespec? = nil) throws(Failure) {
        try write(bytes, at: Place(path), mode: mode, sync: sync, stamp: stamp)
    }

    static func write(_ bytes: [UInt8], at place: Place, mode: mode_t, sync: Bool, stamp: timespec? = nil) throws(Failure) {
        let fd = openat(place.directory, place.name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("cannot create", place.path) }
        defer { close(fd) }
        try writeAll(bytes, to: fd, path: place.path)
        if let stamp {
            var times = [stamp, stamp]
            guard futimens(fd, &times) == 0 else { throw failure("cannot set the time of", place.path) }
        }
        guard !sync || fsync(fd) == 0 else { throw failure("cannot fsync", place.path) }
    }

    /// Below this many files a batch is fsynced file by file: precise, and it leaves other
    /// programs' dirty data on the same file system alone.
    static let syncfsThreshold = 16

    /// Group commit: makes `files` durable. A large batch (a backlog: 200 messages write 600
    /// files) takes one syncfs(2) per file system holding `directories` instead of an fsync per
    /// file (on ext4 each fsync is a journal commit); a small one, the steady state of a few new
    /// messages per poll, is fsynced file by file. Where syncfs is refused, file by file too.
    package static func syncFileSystems(holding directories: [String], files: [String]) throws(Failure) {
        guard files.count >= syncfsThreshold else { return try syncEach(files) }
        var devices: Set<UInt64> = []
        for directory in directories {
            var info = stat()
            guard stat(directory, &info) == 0 else { throw failure("cannot stat", directory) }
            guard devices.insert(UInt64(info.st_dev)).inserted else { continue }
            let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw failure("cannot open directory", directory) }
            defer { close(fd) }
            if carteiro_syncfs(fd) != 0 {
                if errno == ENOSYS || errno == EPERM { return try syncEach(files) }
                throw failure("cannot sync the file system of", directory)
            }
        }
    }

    package static func syncEach(_ files: [String]) throws(Failure) {
        for file in files {
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw failure("cannot open", file) }
            defer { close(fd) }
            guard fsync(fd) == 0 else { throw failure("cannot fsync", file) }
        }
    }

    package static func syncDirectory(_ path: String) throws(Failure) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open directory", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("cannot fsync directory", path) }
    }

    package static func rename(_ from: String, _ to: String) throws(Failure) {
        guard Glibc.rename(from, to) == 0 else { throw failure("cannot rename \(from) to", to) }
    }

    /// Replaces `path` atomically and durably with `bytes`.
    /// `faults`: the crash tests' seam, called before each step with its name.
    package static func replace(_ path: String, with bytes: [UInt8],
                               faults: (@Sendable (String) throws(Failure) -> Void)? = nil) throws(Failure) {
        let temporary = path + ".tmp"
        try faults?("write")
        try writeSynced(bytes, to: temporary)
        try faults?("rename")
        try rename(temporary, path)
        try faults?("directory sync")
        try syncDirectory(parent(path))
    }

    /// The directory part of a path ("/a/b/c" → "/a/b", "c" → "."), without Foundation's
    /// path normalisation, which showed in profiles of every commit.
    package static func parent(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }
}
