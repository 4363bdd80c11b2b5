import Dispatch
import Glibc
import Synchronization

/// Calls `changed` on `queue` when a file is created, written or renamed into one of a few
/// folders (Linux inotify), so that a waiting daemon looks at its outbox when something arrives
/// instead of checking it five times a second. The events themselves are not trusted for
/// content: `changed` only says "look now", and the caller lists the folder as it would at a
/// tick. What inotify can miss (a queue overflow, a folder replaced under its watch) is caught
/// by the caller's slower tick, which also calls `rewatch` to follow a replaced folder.
final class FolderNotifier: Sendable {
    private let descriptor: Int32
    /// The read source (libdispatch's, not marked Sendable by the overlay), reached only to cancel it.
    private let source: Mutex<DispatchSourceRead>
    private let paths: [String]
    /// The watch of each path, and the folder (device, inode) it watches (changed on `queue`).
    private let watched: Mutex<[String: (watch: Int32, device: UInt64, inode: UInt64)]>

    static let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)

    /// Nil when inotify is not available, or a folder cannot be watched at the start (the limit
    /// on watches reached, say): the caller then ticks as often as it would without inotify.
    init?(paths: [String], queue: DispatchQueue, changed: @escaping @Sendable () -> Void) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { return nil }
        var watched: [String: (watch: Int32, device: UInt64, inode: UInt64)] = [:]
        for path in paths {
            guard let watch = Self.watch(path, with: descriptor) else {
                close(descriptor)
                return nil
            }
            watched[path] = watch
        }
        self.descriptor = descriptor
        self.paths = paths
        self.watched = Mutex(watched)
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [descriptor] in
            // Drained (up to 1 MB a wake-up; more wakes the source again): one look serves every
            // event that arrived together, and a folder filling without pause still gets looked at.
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var any = false
            for _ in 0..<64 {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                any = true
            }
            if any { changed() }
        }
        source.setCancelHandler { [descriptor] in close(descriptor) }
        source.resume()
        self.source = Mutex(source)
    }

    /// Watches each folder again if it was replaced (or could not be watched before).
    func rewatch() {
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            if let current = watched.withLock({ $0[path] }), current.device == UInt64(info.st_dev), current.inode == UInt64(info.st_ino) { continue }
            watch(path)
        }
    }

    func cancel() {
        source.withLock { $0.cancel() }
    }

    private func watch(_ path: String) {
        if let watch = Self.watch(path, with: descriptor) { watched.withLock { $0[path] = watch } }
    }

    private static func watch(_ path: String, with descriptor: Int32) -> (watch: Int32, device: UInt64, inode: UInt64)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let watch = inotify_add_watch(descriptor, path, mask)
        guard watch >= 0 else { return nil }
        return (watch, UInt64(info.st_dev), UInt64(info.st_ino))
    }
}
