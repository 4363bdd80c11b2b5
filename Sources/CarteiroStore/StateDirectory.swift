#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The layout of the state directory (the README's "State directory layout"). Paths in events
/// are relative to `root`.
package struct StateDirectory: Sendable {
    package let root: String
    package let spool: String

    package init(root: String, spool: String) {
        self.root = root
        self.spool = spool
    }

    /// Events being written, not yet handed on; same file system as the spool, for rename.
    package var pendingEvents: String { spool + "/.pending" }
    /// Events held back (a sender that failed authentication, under `sender_verification =
    /// "quarantine"`) until someone releases them into the spool: beside it, so that a release
    /// is a rename; a dot folder, which the desk does not take events from.
    package var quarantine: String { spool + "/.quarantine" }
    package var raw: String { root + "/raw" }
    package var attachments: String { root + "/attachments" }
    package func mailbox(_ name: String) -> String { root + "/mailboxes/" + name }

    /// `acme-in/1700000000/42` → `acme-in+1700000000+42.json` (`+` appears in no name).
    package static func eventFileName(_ id: String) -> String {
        String(decoding: id.utf8.map { $0 == UInt8(ascii: "/") ? UInt8(ascii: "+") : $0 }, as: UTF8.self) + ".json"
    }

    /// The modes of the directories the desk shares (its group is the directory's group, `carteiro`
    /// under the packaged unit): it reads the state directory, raw messages and attachments,
    /// removes events from the spool, and writes submissions into the outbox and queue requests
    /// into control. Everything else stays the daemon's (files 0640, directories 0750).
    package enum Modes {
        package static let root: mode_t = 0o2750
        package static let readable: mode_t = 0o2750
        package static let shared: mode_t = 0o2770
    }

    package var outbox: String { root + "/outbox" }
    package var control: String { root + "/control" }

    /// Makes the directories. The service's own folders inside shared ones (`.pending` in the
    /// spool, `rejected` in the outbox) are taken only if they are its own folders: a link or
    /// anything else a member put at their name is moved aside and returned, for the caller to
    /// report.
    @discardableResult
    package func prepare(mailboxes: [String]) throws(DurableFiles.Failure) -> [RefusedEntry] {
        var refused: [RefusedEntry] = []
        try DurableFiles.makeDirectory(root, mode: Modes.root)
        try DurableFiles.makeDirectory(spool, mode: Modes.shared)
        _ = try SharedFolder(spool).ownFolder(".pending") { refused.append($0) }
        _ = try SharedFolder(spool).ownFolder(".quarantine", mode: Modes.readable) { refused.append($0) }
        try DurableFiles.makeDirectory(raw, mode: Modes.readable)
        try DurableFiles.makeDirectory(attachments, mode: Modes.readable)
        try DurableFiles.makeDirectory(outbox, mode: Modes.shared)
        _ = try SharedFolder(outbox).ownFolder("rejected", mode: Modes.shared) { refused.append($0) }
        try DurableFiles.makeDirectory(outbox + "/rejected", mode: Modes.shared)
        try DurableFiles.makeDirectory(control, mode: Modes.shared)
        for name in mailboxes { try DurableFiles.makeDirectory(mailbox(name)) }
        return refused
    }

    /// Before each batch of a poll: `.pending` in the spool (which the group can write) is still
    /// the service's own folder; anything else there is moved aside, a new one made, and returned.
    package func securePending() -> [RefusedEntry] {
        var refused: [RefusedEntry] = []
        guard let spoolFolder = try? SharedFolder(spool) else { return [] }
        _ = try? spoolFolder.ownFolder(".pending") { refused.append($0) }
        _ = try? spoolFolder.ownFolder(".quarantine", mode: Modes.readable) { refused.append($0) }
        return refused
    }

    /// The secret that keys Carteiro's Message-IDs: 32 random bytes made on first use, kept
    /// readable by Carteiro alone. Losing it only means old replies thread by subject tag.
    package func threadingSecret() throws(DurableFiles.Failure) -> [UInt8] {
        let path = root + "/threading.key"
        if let existing = DurableFiles.read(path), existing.count >= 32 { return existing }
        var bytes = [UInt8](repeating: 0, count: 32)
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom"), let data = try? random.read(upToCount: 32), data.count == 32 else {
            throw DurableFiles.Failure(description: "cannot read /dev/urandom to make \(path)")
        }
        try? random.close()
        bytes = [UInt8](data)
        // `carteiro send` and the daemon may both make it at once: each writes its own
        // temporary file and link(2)s it into place, which fails if the key exists. The loser
        // takes the winner's key; a rename would let the last one replace a key already used.
        let temporary = "\(path).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        try DurableFiles.writeSynced(bytes, to: temporary, mode: 0o600)
        defer { unlink(temporary) }
        if link(temporary, path) != 0 {
            let reason = errno
            guard reason == EEXIST else { throw DurableFiles.Failure(description: "cannot create \(path): \(String(cString: strerror(reason)))") }
            if let existing = DurableFiles.read(path), existing.count >= 32 { return existing }
            // A damaged key (cut short): replaced, as a missing one would be.
            try DurableFiles.rename(temporary, path)
        }
        try DurableFiles.syncDirectory(root)
        return bytes
    }
}

extension StateDirectory {
    /// Writes an event that has no mailbox batch behind it (a mailbox alert): to the pending
    /// area, fsynced, then renamed into the spool.
    package func writeEvent(id: String, bytes: [UInt8]) throws(DurableFiles.Failure) {
        let name = Self.eventFileName(id)
        let spoolFolder = try SharedFolder(spool)
        let pending = try spoolFolder.ownFolder(".pending") { _ in }
        pending.remove(name)
        guard try pending.writeNew(name, bytes) else { throw DurableFiles.Failure(description: "cannot create \(pending.path(name)): it exists") }
        guard pending.move(name, to: spoolFolder, as: name) else { throw DurableFiles.failure("cannot rename \(pending.path(name)) to", spoolFolder.path(name)) }
        try spoolFolder.sync()
    }
}
