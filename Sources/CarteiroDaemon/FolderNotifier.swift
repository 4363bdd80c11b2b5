import Dispatch
import Glibc

/// Calls `changed` on `queue` when a file is created, written or renamed into one of a few
/// folders (Linux inotify), so that a waiting daemon looks at its outbox when something arrives
/// instead of checking it five times a second. The events themselves are not trusted for
/// content: `changed` only says "look now", and the caller lists the folder as it would at a
/// tick. What inotify can miss (a queue overflow, a folder replaced under its watch) is caught
/// by the caller's slower tick, which also calls `rewatch` to follow a replaced folder.
final class FolderNotifier: @unchecked Sendable {
    private let descriptor: Int32
    private let source: DispatchSourceRead
    private let paths: [String]
    // On `queue` only: the watch of each path, and the folder (device, inode) it watches.
    private var watched: [String: (watch: Int32, device: UInt64, inode: UInt64)] = [:]

    static let mask = UInt32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)

    /// Nil when inotify is not available (the caller then ticks as often as before).
    init?(paths: [String], queue: DispatchQueue, changed: @escaping @Sendable () -> Void) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else { return nil }
        self.descriptor = descriptor
        self.paths = paths
        source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [descriptor] in
            // Drained whole: one look serves every event that arrived together.
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            var any = false
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                any = true
            }
            if any { changed() }
        }
        source.setCancelHandler { [descriptor] in close(descriptor) }
        for path in paths { watch(path) }
        source.resume()
    }

    /// Watches each folder again if it was replaced (or could not be watched before).
    func rewatch() {
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            if let current = watched[path], current.device == UInt64(info.st_dev), current.inode == UInt64(info.st_ino) { continue }
            watch(path)
        }
    }

    func cancel() {
        source.cancel()
    }

    private func watch(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        let watch = inotify_add_watch(descriptor, path, Self.mask)
        guard watch >= 0 else { return }
        watched[path] = (watch, UInt64(info.st_dev), UInt64(info.st_ino))
    }
}
