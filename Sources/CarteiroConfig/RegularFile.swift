#if canImport(Glibc)
import Glibc
#endif
import CFileSync

/// Reads a file that must be a plain file of bounded size: the configuration, its includes, a
/// password file, a submission. A FIFO, a device or a directory there would block the reader
/// forever or feed it without end, so those are refused by what they are, before any read;
/// and every refusal says why in the words of the error the system gave (EACCES is "permission
/// denied", not "does not exist").
package enum RegularFile {
    package enum Problem: Error, Equatable, CustomStringConvertible {
        case missing
        case notPermitted
        case directory
        case notRegular(String)
        case tooLarge(Int)
        case other(String)
        /// A symbolic link where a file was expected, in a folder others can write (never followed).
        case symbolicLink
        /// A file with more than one name: a hard link, perhaps to a file this process must not hand out.
        case hardLink(Int)
        /// A file that belongs to another user where only this process's own files belong.
        case foreignOwner(String)
        /// A path that leaves the folder it is read from (`..`, an absolute path, a link on the way).
        case outside

        package var description: String {
            switch self {
            case .missing: "does not exist"
            case .notPermitted: "cannot be read (permission denied)"
            case .directory: "is a directory"
            case .notRegular(let kind): "is \(kind), not a regular file"
            case .tooLarge(let limit): "is larger than \(limit) bytes"
            case .other(let text): "cannot be read: \(text)"
            case .symbolicLink: "is a symbolic link (never followed here)"
            case .hardLink(let names): "has \(names) names (a hard link; never read here)"
            case .foreignOwner(let owner): "belongs to \(owner), not to this service"
            case .outside: "leads outside its folder"
            }
        }
    }

    /// What a file read from a folder others can write must be, beyond a regular file.
    package struct Requirements: Sendable {
        /// Exactly one name (no hard link to a file elsewhere).
        package var singleLink: Bool
        /// Owned by this user (files only the service itself makes, such as its events).
        package var owner: uid_t?
        package init(singleLink: Bool = true, owner: uid_t? = nil) {
            self.singleLink = singleLink
            self.owner = owner
        }
        /// A plain read: no demand beyond a regular file.
        package static let none = Requirements(singleLink: false, owner: nil)
    }

    /// The file's bytes, at most `limit` of them (more is `.tooLarge`). Symbolic links are
    /// followed (operators link configuration files), but what they lead to must be a file.
    package static func read(_ path: String, limit: Int) -> Result<[UInt8], Problem> {
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else { return .failure(problem(errno)) }
        defer { close(descriptor) }
        return read(descriptor: descriptor, limit: limit, requirements: .none)
    }

    /// `name` in the folder open at `directory`, never through a symbolic link (`O_NOFOLLOW`),
    /// checked on the opened descriptor (`fstat`), so nothing can be swapped in between.
    package static func read(in directory: Int32, name: String, limit: Int, requirements: Requirements = Requirements()) -> Result<[UInt8], Problem> {
        let descriptor = openat(directory, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)
        guard descriptor >= 0 else { return .failure(errno == ELOOP ? .symbolicLink : problem(errno)) }
        defer { close(descriptor) }
        return read(descriptor: descriptor, limit: limit, requirements: requirements)
    }

    /// `path` (relative, `a/b/c`) beneath the folder at `directory`, with no symbolic link on the
    /// way and no way out (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel
    /// has it, else each component opened with `O_NOFOLLOW` from the one before).
    package static func read(beneath directory: String, path: String, limit: Int, requirements: Requirements = Requirements()) -> Result<[UInt8], Problem> {
        let base = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard base >= 0 else { return .failure(problem(errno)) }
        defer { close(base) }
        switch openBeneath(base, path: path) {
        case .success(let descriptor):
            defer { close(descriptor) }
            return read(descriptor: descriptor, limit: limit, requirements: requirements)
        case .failure(let problem):
            return .failure(problem)
        }
    }

    /// Opens `path` beneath the folder open at `base` for reading, as `read(beneath:)` does.
    /// `walk`: the component-by-component way even where openat2 exists (tests hold both).
    package static func openBeneath(_ base: Int32, path: String, walk: Bool = false) -> Result<Int32, Problem> {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.hasPrefix("/"), !parts.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { return .failure(.outside) }
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY
        if !walk {
            let descriptor = carteiro_openat2_beneath(base, path, flags)
            if descriptor >= 0 { return .success(descriptor) }
            // ENOSYS: no openat2 here; EPERM: a system-call filter refuses it. The walk is as safe.
            if errno != ENOSYS && errno != EPERM {
                return .failure(errno == ELOOP ? .symbolicLink : errno == EXDEV ? .outside : problem(errno))
            }
        }
        var current = dup(base)
        guard current >= 0 else { return .failure(problem(errno)) }
        for (index, part) in parts.enumerated() {
            let last = index == parts.count - 1
            let next = openat(current, String(part), last ? flags | O_NOFOLLOW : O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW)
            let reason = errno
            close(current)
            guard next >= 0 else {
                // A link where a folder was expected fails with ELOOP or, with O_DIRECTORY, ENOTDIR.
                if reason == ELOOP { return .failure(.symbolicLink) }
                if reason == ENOTDIR && !last, isLink(at: base, path: parts[...index].joined(separator: "/")) { return .failure(.symbolicLink) }
                return .failure(problem(reason))
            }
            current = next
        }
        return .success(current)
    }

    private static func isLink(at base: Int32, path: String) -> Bool {
        var info = stat()
        return fstatat(base, path, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// Why a file with this `stat` is not one to read under `requirements`; nil when it is.
    /// (An `lstat` of a link says `.symbolicLink`; an `fstat` of an open file never does.)
    package static func refusal(_ info: stat, requirements: Requirements) -> Problem? {
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK: return .symbolicLink
        case S_IFDIR: return .directory
        case S_IFIFO: return .notRegular("a FIFO")
        case S_IFCHR, S_IFBLK: return .notRegular("a device")
        case S_IFSOCK: return .notRegular("a socket")
        default: return .notRegular("not a file")
        }
        // No link count of 0: a file removed since it was opened is still the file opened.
        if requirements.singleLink && info.st_nlink > 1 { return .hardLink(Int(info.st_nlink)) }
        if let owner = requirements.owner, info.st_uid != owner { return .foreignOwner(userName(info.st_uid)) }
        return nil
    }

    /// Reads an open file: checked first on its descriptor (what it is, its names, its owner).
    static func read(descriptor: Int32, limit: Int, requirements: Requirements) -> Result<[UInt8], Problem> {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(problem(errno)) }
        if let refusal = refusal(info, requirements: requirements) { return .failure(refusal) }
        if info.st_size > limit { return .failure(.tooLarge(limit)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(problem(errno))
            }
            if count == 0 { return .success(bytes) }
            // The file may grow while it is read: the limit holds all the same.
            if bytes.count + count > limit { return .failure(.tooLarge(limit)) }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    static func problem(_ code: Int32) -> Problem {
        switch code {
        case ENOENT, ENOTDIR: .missing
        case EACCES, EPERM: .notPermitted
        case EISDIR: .directory
        default: .other(String(cString: strerror(code)))
        }
    }
}
