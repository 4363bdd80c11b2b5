#if canImport(Glibc)
import Glibc
#endif

/// Who this process is to a state directory. The directory belongs to the user the daemon runs
/// as (`carteiro` under the packaged unit); its group (`carteiro`) is the desk's: members read
/// events, raw messages and attachments, remove the events they have taken, and drop
/// submissions and queue requests, but never write the daemon's own files. Root acting on the
/// service's directory acts as the service (`adopt`), so nothing it leaves belongs to root.
package enum StateAccess: Equatable, Sendable {
    /// This process owns the directory (or it does not exist yet, and this process would make it).
    case owner
    /// Another user: the desk's side only (outbox, control requests, reading).
    case member(owner: String)

    package static func of(_ stateDirectory: String) -> StateAccess {
        var info = stat()
        guard stat(stateDirectory, &info) == 0, info.st_uid != geteuid() else { return .owner }
        return .member(owner: userName(info.st_uid))
    }

    package static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Root, on a state directory that belongs to another user, becomes that user: its uid, its
    /// primary group and its supplementary groups. Called before anything in the directory is
    /// touched; a no-op for any other user or a directory root owns. Returns the user's name
    /// when it switched.
    @discardableResult
    package static func adopt(_ stateDirectory: String) throws(Failure) -> String? {
        guard geteuid() == 0 else { return nil }
        var info = stat()
        guard stat(stateDirectory, &info) == 0, info.st_uid != 0 else { return nil }
        let uid = info.st_uid
        guard let entry = getpwuid(uid) else {
            throw Failure(description: "\(stateDirectory) belongs to uid \(uid), which has no account here; chown it to the service's user")
        }
        let name = String(cString: entry.pointee.pw_name)
        let gid = entry.pointee.pw_gid
        guard initgroups(name, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw Failure(description: "cannot act as \(name), the owner of \(stateDirectory): \(String(cString: strerror(errno)))")
        }
        return name
    }

    /// Whether this process may create files in `directory` (a member's outbox or control).
    package static func canWrite(_ directory: String) -> Bool {
        access(directory, W_OK | X_OK) == 0
    }
}
