#if canImport(Glibc)
import Glibc
#endif
import CarteiroJSON
import Foundation

/// Removes what the state directory no longer needs: raw messages and attachments older than
/// their keep time that no waiting event points at, and given-up messages in `queue/failed/`.
/// Attachments are shared by content (one file per SHA-256); a message staged meanwhile touches
/// the file it reuses under `attachmentLock`, so a clean-up never removes one an event is about
/// to point at.
package enum Retention {
    /// Held by staging (reuse of an attachment file) and by the clean-up (its removal).
    package static let attachmentLock = NSLock()

    package struct Outcome: Sendable, Equatable {
        package var raw = 0
        package var attachments = 0
        package var failed = 0
        package var bytes: Int64 = 0
        package init() {}
    }

    package static func clean(_ directory: StateDirectory, keepRaw: Duration?, keepAttachments: Duration?, keepFailed: Duration?,
                             now: Int64 = Int64(Date().timeIntervalSince1970)) -> Outcome {
        var outcome = Outcome()
        let referenced = referencedFiles(directory)
        if let keepRaw {
            removeOld(under: directory.raw, olderThan: now - keepRaw.components.seconds, keeping: referenced, root: directory.root) { size in
                outcome.raw += 1
                outcome.bytes += size
            }
        }
        if let keepAttachments {
            attachmentLock.lock()
            removeOld(under: directory.attachments, olderThan: now - keepAttachments.components.seconds, keeping: referenced, root: directory.root) { size in
                outcome.attachments += 1
                outcome.bytes += size
            }
            attachmentLock.unlock()
        }
        if let keepFailed {
            removeOld(under: directory.root + "/queue/failed", olderThan: now - keepFailed.components.seconds, keeping: [], root: directory.root) { size in
                outcome.failed += 1
                outcome.bytes += size
            }
        }
        return outcome
    }

    /// The raw and attachment paths (relative to the state directory) of every event still
    /// waiting in the spool, being written, or held in the quarantine.
    static func referencedFiles(_ directory: StateDirectory) -> Set<String> {
        var paths: Set<String> = []
        // The spool is shared with the desk's group: its entries are read by name in the
        // folder's descriptor, never through a link, and only the service's own files (a FIFO
        // planted there would block the clean-up for ever; a link would have it read anything).
        guard let spool = try? SharedFolder(directory.spool) else { return paths }
        let pending = try? spool.ownFolder(".pending", report: { _ in })
        // A held event's message stays as long as it is held: someone may release it.
        let held = try? spool.ownFolder(".quarantine", mode: StateDirectory.Modes.readable, report: { _ in })
        for folder in [spool] + (pending.map { [$0] } ?? []) + (held.map { [$0] } ?? []) {
            for name in folder.names() where name.hasSuffix(".json") {
                guard case .success(let bytes) = folder.read(name, limit: 256 << 20, requirements: .init(singleLink: true, owner: geteuid())),
                      let event = JSONValue.parse(bytes) else { continue }
                if let raw = event["raw"]?.string { paths.insert(raw) }
                for attachment in event["message"]?["attachments"]?.array ?? [] {
                    if let path = attachment["path"]?.string { paths.insert(path) }
                }
            }
        }
        return paths
    }

    /// Every regular file under `folder` last modified before `cutoff` and not in `keeping`.
    static func removeOld(under folder: String, olderThan cutoff: Int64, keeping: Set<String>, root: String, removed: (Int64) -> Void) {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return }
        while let relative = walker.nextObject() as? String {
            let path = folder + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            guard Int64(info.st_mtim.tv_sec) < cutoff else { continue }
            let fromRoot = String(path.dropFirst(root.count + 1))
            guard !keeping.contains(fromRoot) else { continue }
            if unlink(path) == 0 { removed(Int64(info.st_size)) }
        }
    }
}
