#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The layout of the state directory (SPEC §6). Paths in events are relative to `root`.
public struct StateDirectory: Sendable {
    public let root: String
    public let spool: String

    public init(root: String, spool: String) {
        self.root = root
        self.spool = spool
    }

    /// Events being written, not yet handed on; same file system as the spool, for rename.
    public var pendingEvents: String { spool + "/.pending" }
    public var raw: String { root + "/raw" }
    public var attachments: String { root + "/attachments" }
    public func mailbox(_ name: String) -> String { root + "/mailboxes/" + name }

    /// `acme-in/1700000000/42` → `acme-in+1700000000+42.json` (`+` appears in no name).
    public static func eventFileName(_ id: String) -> String {
        String(decoding: id.utf8.map { $0 == UInt8(ascii: "/") ? UInt8(ascii: "+") : $0 }, as: UTF8.self) + ".json"
    }

    /// The modes of the directories the desk shares (its group is the directory's group, `carteiro`
    /// under the packaged unit): it reads the state directory, raw messages and attachments,
    /// removes events from the spool, and writes submissions into the outbox and queue requests
    /// into control. Everything else stays the daemon's (files 0640, directories 0750).
    public enum Modes {
        public static let root: mode_t = 0o2750
        public static let readable: mode_t = 0o2750
        public static let shared: mode_t = 0o2770
    }

    public var outbox: String { root + "/outbox" }
    public var control: String { root + "/control" }

    public func prepare(mailboxes: [String]) throws(DurableFiles.Failure) {
        try DurableFiles.makeDirectory(root, mode: Modes.root)
        try DurableFiles.makeDirectory(spool, mode: Modes.shared)
        try DurableFiles.makeDirectory(pendingEvents)
        try DurableFiles.makeDirectory(raw, mode: Modes.readable)
        try DurableFiles.makeDirectory(attachments, mode: Modes.readable)
        try DurableFiles.makeDirectory(outbox, mode: Modes.shared)
        try DurableFiles.makeDirectory(outbox + "/rejected", mode: Modes.shared)
        try DurableFiles.makeDirectory(control, mode: Modes.shared)
        for name in mailboxes { try DurableFiles.makeDirectory(mailbox(name)) }
    }

    /// The secret that keys Carteiro's Message-IDs: 32 random bytes made on first use, kept
    /// readable by Carteiro alone. Losing it only means old replies thread by subject tag.
    public func threadingSecret() throws(DurableFiles.Failure) -> [UInt8] {
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
    public func writeEvent(id: String, bytes: [UInt8]) throws(DurableFiles.Failure) {
        let name = Self.eventFileName(id)
        let temporary = pendingEvents + "/" + name
        try DurableFiles.writeSynced(bytes, to: temporary)
        try DurableFiles.rename(temporary, spool + "/" + name)
        try DurableFiles.syncDirectory(spool)
    }
}
