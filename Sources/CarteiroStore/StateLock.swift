#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The exclusive claim of one process on a state directory: `carteiro run` holds it for its
/// whole life, so two daemons never poll the same mailboxes into the same spool (every event
/// twice) or drain the same queue (every message sent twice). Admin commands that change the
/// queue take it too when no daemon runs, and otherwise ask the daemon.
///
/// An `flock(2)` on `<state>/carteiro.lock`: the kernel drops it when the process ends, however
/// it ends, so a SIGKILLed daemon never leaves a stale lock behind. The file holds the holder's
/// pid, for the message that names it.
package final class StateLock: StoreClaim {
    package enum Failure: Error, CustomStringConvertible {
        /// Another process holds it; its pid when the file says.
        case held(path: String, pid: Int32?)
        case unusable(String)

        package var description: String {
            switch self {
            case .held(let path, let pid):
                let who = pid.map { "carteiro (pid \($0))" } ?? "another carteiro"
                return "\(who) already runs on this state directory (it holds \(path)); stop it first, or give this one a state directory of its own"
            case .unusable(let text): return text
            }
        }
    }

    package let path: String
    private let descriptor: Int32
    package var location: String { path }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    package static func path(stateDirectory: String) -> String { stateDirectory + "/carteiro.lock" }

    /// Takes the lock without waiting, or says who holds it.
    package static func acquire(stateDirectory: String) throws(Failure) -> StateLock {
        do { try DurableFiles.makeDirectory(stateDirectory) } catch { throw .unusable(error.description) }
        let path = path(stateDirectory: stateDirectory)
        var descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o660)
        var writable = true
        if descriptor < 0 && errno == EACCES {
            // Made by another user (root ran a command first): flock needs only a descriptor,
            // so a read-only one still locks; the pid is then not written.
            descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            writable = false
        }
        guard descriptor >= 0 else { throw .unusable("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            let holder = holderPID(descriptor)
            close(descriptor)
            if reason == EWOULDBLOCK { throw .held(path: path, pid: holder) }
            throw .unusable("cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        // The holder's pid, for whoever is refused: written only once the lock is ours.
        let text = Array("\(getpid())\n".utf8)
        if writable && ftruncate(descriptor, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        return StateLock(path: path, descriptor: descriptor)
    }

    /// Whether a process holds the lock now (for `carteiro status`).
    package static func isHeld(stateDirectory: String) -> (held: Bool, pid: Int32?) {
        let descriptor = open(path(stateDirectory: stateDirectory), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return (false, nil) }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return (false, nil)
        }
        return (errno == EWOULDBLOCK, holderPID(descriptor))
    }

    static func holderPID(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text), pid > 0 else { return nil }
        return pid
    }
}
