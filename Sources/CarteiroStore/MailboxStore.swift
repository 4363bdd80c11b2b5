#if canImport(Glibc)
import Glibc
#endif
import CarteiroJSON
import Foundation
import Synchronization

/// A message whose files are written (temporary names, fsynced) but not yet handed on.
package struct StagedMessage: Sendable {
    package var id: String
    /// The key that recognises the same message again (Message-ID, or a hash of the header).
    package var dedupeKey: String
    var renames: [(from: String, to: String)]
    /// Files written where they stay (the raw message, when no file had its name): made
    /// durable with the batch, removed if the message is not committed.
    var written: [String] = []
    /// Attachment files written where they stay: made durable with the batch, but left if the
    /// message is not committed, since another message may already share the file (see
    /// `placeAttachment`).
    var shared: [String] = []
    /// What the log says of it once handed on (type, Message-ID, sender …).
    package var summary: [(String, String)] = []
}

/// One inbound mailbox's durable state and its hand-over of messages (in this order:
/// files durable → state advanced → only then `after_fetch`).
///
/// A batch is committed through an intent file: once it is durable the batch counts as handed
/// on, and a crash after it is finished at the next start (renames redone, state applied).
/// A crash before it leaves only temporary files, which are removed, and the messages are
/// fetched again. Either way each message becomes exactly one event.
package final class MailboxStore: Sendable {
    package let name: String
    let directory: StateDirectory
    let folder: String
    /// What the disk holds, as last committed: the state, the keys of messages handed on (a
    /// new UIDVALIDITY does not re-create old requests), and whether an intent file may be on
    /// disk (at the start, and after a commit that did not get as far as removing its own;
    /// otherwise a poll need not look for one).
    private struct Committed {
        var state = MailboxState()
        var dedupeKeys: Set<String> = []
        var intentMayRemain = true
    }
    private let committed = Mutex(Committed())
    package var state: MailboxState { committed.withLock { $0.state } }
    package var dedupeKeys: Set<String> { committed.withLock { $0.dedupeKeys } }
    private var intentMayRemain: Bool {
        get { committed.withLock { $0.intentMayRemain } }
        set { committed.withLock { $0.intentMayRemain = newValue } }
    }
    /// The directories made or found so far (each is made once).
    private let knownDirectories = Mutex<Set<String>>([])
    /// The directories a poll's batches write into, open while it runs (`pollEnded`).
    let handles: DirectoryHandles
    /// The time given to the last event staged (`reserveStamps`).
    private let lastStamp = Mutex(timespec())

    var statePath: String { folder + "/state.json" }
    var sendersPath: String { folder + "/senders.json" }

    package func senderCounts() -> SenderCounts {
        DurableFiles.read(sendersPath).map { SenderCounts(json: $0) } ?? SenderCounts()
    }

    package func recordSenderCounts(_ counts: SenderCounts) throws(DurableFiles.Failure) {
        try DurableFiles.replace(sendersPath, with: counts.json().renderedCompact())
    }
    var intentPath: String { folder + "/intent.json" }
    var keysPath: String { folder + "/message-keys" }
    var staging: String { folder + "/staging" }

    /// Called before each step of a commit with the step's name: a test stops or fails the
    /// commit at any step (the crash tests); nil in the daemon.
    let faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?

    package init(directory: StateDirectory, mailbox: String,
                faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) throws(DurableFiles.Failure) {
        self.name = mailbox
        self.directory = directory
        self.folder = directory.mailbox(mailbox)
        self.faults = faults
        handles = DirectoryHandles(guarded: [directory.pendingEvents])
        try DurableFiles.makeDirectory(staging)
        try recover()
        load()
    }

    /// Keeps, of the keys, those of messages the server still holds (`present`), keys made
    /// without a Message-ID (a hash of the header, not recomputed here) and the keys older
    /// versions wrote (the Message-ID alone) whose message is still there; the rest, of
    /// messages gone from the server, go. Returns how many were removed. Only between polls.
    package func compactKeys(keeping present: Set<String>) throws(DurableFiles.Failure) -> Int {
        let presentIDs = Set(present.compactMap { key -> String? in key.lastIndex(of: " ").map { String(key[..<$0]) } })
        let kept = dedupeKeys.filter { key in
            if !key.hasPrefix("id:") { return true }
            if present.contains(key) { return true }
            return !key.contains(" ") && presentIDs.contains(key)
        }
        let removed = dedupeKeys.count - kept.count
        guard removed > 0 else { return 0 }
        try DurableFiles.replace(keysPath, with: Array(kept.sorted().map { $0 + "\n" }.joined().utf8))
        committed.withLock { $0.dedupeKeys = kept }
        return removed
    }

    /// The state and the keys as the disk has them.
    private func load() {
        if let data = DurableFiles.read(statePath), let object = JSONValue.parse(data) {
            let loaded = MailboxState(json: object)
            committed.withLock { $0.state = loaded }
        }
        if let data = DurableFiles.read(keysPath) {
            let keys = data.split(separator: 10).lazy.filter { !$0.isEmpty }.map { String(decoding: $0, as: UTF8.self) }
            committed.withLock { $0.dedupeKeys.formUnion(keys) }
        }
    }

    /// A commit that failed after its commit point (a rename, a directory fsync, the state
    /// write) left the batch handed on but not finished: it is finished before anything else is
    /// fetched, in the running daemon as at a start, so the batch is never fetched and handed on
    /// again. Throws while the disk still refuses; the poll then fails without fetching.
    package func finishInterruptedCommit() throws(DurableFiles.Failure) {
        guard intentMayRemain else { return }
        guard DurableFiles.exists(intentPath) else {
            intentMayRemain = false
            return
        }
        try recover()
        load()
    }

    /// Finishes a batch interrupted after its intent was durable; discards one interrupted before.
    func recover() throws(DurableFiles.Failure) {
        if let data = DurableFiles.read(intentPath), let intent = JSONValue.parse(data) {
            let renames = (intent["renames"]?.array ?? []).compactMap(\.strings).filter { $0.count == 2 }
            try makeDirectories(for: renames.map { $0[1] })
            for pair in renames where DurableFiles.exists(pair[0]) {
                try DurableFiles.rename(place(pair[0]), place(pair[1]))
            }
            try syncDirectories(of: renames.map { $0[1] })
            if let keys = intent["keys"]?.strings { try appendKeys(keys) }
            if let stateObject = intent["state"] {
                try DurableFiles.replace(statePath, with: MailboxState(json: stateObject).json().renderedCompact())
            }
            try? FileManager.default.removeItem(atPath: intentPath)
        }
        // Whatever is still staged belongs to a batch that never committed.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [] {
            try? FileManager.default.removeItem(atPath: staging + "/" + entry)
        }
        // `.pending` lies in the spool, which the desk's group can write: its entries are
        // removed by name in the folder's own descriptor, never through a path.
        let prefix = name + "+"
        if let pending = try? SharedFolder(directory.spool).ownFolder(".pending", report: { _ in }) {
            for entry in pending.names() where entry.hasPrefix(prefix) { pending.remove(entry) }
        }
    }

    /// Writes a message's files under temporary names. Nothing is visible yet; `commit` makes
    /// them durable, all of a batch at once, before anything points at them.
    ///
    /// Safe to call from several threads at once for different messages: it touches no state
    /// of the store, and `token` (unique among the messages staged and not yet committed or
    /// discarded) names the temporary files.
    ///
    /// `stamp` is the event file's time (see `reserveStamps`); without one, the next is taken.
    package func stage(id: String, token: String, dedupeKey: String, event: [UInt8], raw: [UInt8], attachments: [(sha256: String, data: [UInt8])],
                      stamp: timespec? = nil, held: Bool = false) throws(DurableFiles.Failure) -> StagedMessage {
        var renames: [(String, String)] = []
        var written: [String] = []
        let rawFinal = directory.raw + "/" + id + ".eml"
        // The raw message goes straight to its place: nothing points at it before the commit,
        // and a later fetch of the same message (after a crash before the commit) finds the
        // name taken and writes beside, to be renamed over it.
        try makeDirectories(for: [rawFinal])
        if try DurableFiles.writeNew(raw, at: place(rawFinal)) {
            written.append(rawFinal)
        } else {
            let rawTemp = staging + "/\(token).eml"
            try DurableFiles.writeUnsynced(raw, to: rawTemp)
            renames.append((rawTemp, rawFinal))
        }
        var shared: [String] = []
        for attachment in attachments {
            let final = directory.root + "/attachments/\(attachment.sha256.prefix(2))/\(attachment.sha256)"
            if renames.contains(where: { $0.1 == final }) || shared.contains(final) { continue }
            try makeDirectories(for: [final])
            switch try Self.placeAttachment(attachment.data, at: place(final)) {
            // Reused too: a file left by a batch that never committed was never made durable.
            case .written, .reused: shared.append(final)
            case .differs:
                let temp = staging + "/\(token)-\(attachment.sha256)"
                try DurableFiles.writeUnsynced(attachment.data, to: temp)
                renames.append((temp, final))
            }
        }
        let fileName = StateDirectory.eventFileName(id)
        let eventTemp = directory.pendingEvents + "/" + fileName
        try DurableFiles.writeUnsynced(event, at: place(eventTemp), stamp: stamp ?? reserveStamps(1))
        // The event last: when the desk sees it, its raw message and attachments are in place.
        renames.append((eventTemp, (held ? directory.quarantine : directory.spool) + "/" + fileName))
        return StagedMessage(id: id, dedupeKey: dedupeKey, renames: renames, written: written, shared: shared)
    }

    enum AttachmentPlace { case written, reused, differs }

    /// Puts an attachment at its name (its SHA-256) when no file has it yet. A file already
    /// there is reused only if it holds these very bytes: one written here by a batch that
    /// never committed (a crash, a duplicate) may be cut short, and is then replaced by a
    /// rename at the commit. A reused file is made fresh, so that the clean-up (which ages
    /// files by their time) leaves it; the clean-up holds `attachmentLock` while it removes.
    static func placeAttachment(_ data: [UInt8], at place: DurableFiles.Place) throws(DurableFiles.Failure) -> AttachmentPlace {
        // Twice at most: a file the clean-up removed between the two steps is made anew.
        for _ in 0..<2 {
            if try DurableFiles.writeNew(data, at: place) { return .written }
            Retention.attachmentLock.lock()
            defer { Retention.attachmentLock.unlock() }
            let fd = openat(place.directory, place.name, O_RDONLY | O_CLOEXEC)
            if fd < 0 && errno == ENOENT { continue }
            guard fd >= 0 else { return .differs }
            defer { close(fd) }
            guard DurableFiles.holds(data, fd: fd) else { return .differs }
            return futimens(fd, nil) == 0 ? .reused : .differs
        }
        return .differs
    }

    /// Removes the temporary files of a staged message that will not be committed (a duplicate).
    package func discard(_ message: StagedMessage) {
        for pair in message.renames {
            let from = place(pair.from)
            unlinkat(from.directory, from.name, 0)
        }
        for path in message.written { unlink(path) }
        // `shared` stays: another message may point at it; unreferenced, the clean-up ages it out.
    }

    /// Hands the staged messages on and records `newState`, durably and in that order.
    package func commit(_ messages: [StagedMessage], newState: MailboxState) throws(DurableFiles.Failure) {
        var advanced = newState
        advanced.handedOn = state.handedOn + messages.count
        let renames = messages.flatMap(\.renames)
        let written = messages.flatMap(\.written)
        let shared = messages.flatMap(\.shared)
        let keys = messages.map(\.dedupeKey)
        let intent = JSONValue.object([
            ("keys", .array(keys.map { .string($0) })),
            ("renames", .array(renames.map { .array([.string($0.from), .string($0.to)]) })),
            ("state", advanced.json()),
        ])
        // Whatever can fail before the commit point fails here, leaving the batch uncommitted:
        // the target directories, then the staged files made durable all at once (group
        // commit), since the intent may only name durable files.
        try faults?("directories")
        try makeDirectories(for: renames.map(\.to))
        if !renames.isEmpty || !written.isEmpty || !shared.isEmpty {
            try faults?("sync")
            try DurableFiles.syncFileSystems(holding: [staging, directory.pendingEvents] + (written.isEmpty ? [] : [directory.raw])
                                                + (shared.isEmpty ? [] : [directory.attachments]),
                                             files: renames.map(\.from) + written + shared)
        }
        // The commit point: once this file is durable, the batch is handed on.
        try faults?("intent")
        intentMayRemain = true
        try DurableFiles.replace(intentPath, with: intent.renderedCompact())
        for (index, pair) in renames.enumerated() {
            try faults?("rename \(index)")
            try DurableFiles.rename(place(pair.from), place(pair.to))
        }
        try faults?("directory sync")
        try syncDirectories(of: renames.map(\.to) + written + shared)
        try faults?("keys")
        try appendKeys(keys)
        try faults?("state")
        try DurableFiles.replace(statePath, with: advanced.json().renderedCompact())
        try faults?("intent removed")
        intentMayRemain = unlink(intentPath) != 0 && errno != ENOENT
        committed.withLock {
            $0.state = advanced
            $0.dedupeKeys.formUnion(keys)
        }
    }

    /// The spool is read oldest first by modification time (the webhook keeps each mailbox's
    /// order by it). Events are written by parallel workers, in no particular order: a batch
    /// takes its times before it is built, `count` increasing ones from the returned one a
    /// microsecond apart, later than any taken before (even if the clock stepped back). Its
    /// n-th message's event gets the n-th, so the spool's order is the batch's.
    package func reserveStamps(_ count: Int) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return lastStamp.withLock { lastStamp in
            if (now.tv_sec, now.tv_nsec) <= (lastStamp.tv_sec, lastStamp.tv_nsec) { now = lastStamp.advanced(byMicroseconds: 1) }
            lastStamp = now.advanced(byMicroseconds: max(count, 1) - 1)
            return now
        }
    }


    /// Records a state change that hands nothing on (a first poll with import_existing = none, a new UIDVALIDITY).
    package func record(_ newState: MailboxState) throws(DurableFiles.Failure) {
        try DurableFiles.replace(statePath, with: newState.json().renderedCompact(), faults: faults)
        committed.withLock { $0.state = newState }
    }

    private func appendKeys(_ keys: [String]) throws(DurableFiles.Failure) {
        guard !keys.isEmpty else { return }
        guard let handle = FileHandle(forUpdatingAtPath: keysPath) ?? {
            _ = FileManager.default.createFile(atPath: keysPath, contents: nil, attributes: [.posixPermissions: 0o640])
            return FileHandle(forUpdatingAtPath: keysPath)
        }() else { throw DurableFiles.Failure(description: "cannot open \(keysPath)") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            // A leading newline: a line cut short by a crash never joins the next key.
            try handle.write(contentsOf: Data([10] + keys.joined(separator: "\n").utf8 + [10]))
            try handle.synchronize()
        } catch {
            throw DurableFiles.Failure(description: "cannot append to \(keysPath): \(error)")
        }
    }

    /// The folders the renames went to, made durable: one by one for a few, by one syncfs(2)
    /// per file system for many (a backlog's attachments alone fill a hundred folders).
    private func syncDirectories(of paths: [String]) throws(DurableFiles.Failure) {
        let directories = Array(Set(paths.map(DurableFiles.parent)))
        let attachments = self.directory.attachments
        let bases = [self.directory.raw, self.directory.spool] + (directories.contains { $0.hasPrefix(attachments + "/") } ? [attachments] : [])
        try DurableFiles.syncFileSystems(holding: bases, files: directories)
    }

    /// A file of a batch as a name in its open directory (attachments: under the one folder).
    private func place(_ path: String) -> DurableFiles.Place {
        path.hasPrefix(directory.attachments + "/") ? handles.place(path, in: directory.attachments) : handles.place(path)
    }

    /// Before a batch is built: the directories open for the poll still are the ones at their paths.
    /// `.pending` is made anew if something else took its place (returned, for the caller to report).
    @discardableResult
    package func prepareBatch() -> [RefusedEntry] {
        let refused = directory.securePending()
        handles.revalidate()
        return refused
    }

    /// After the poll's last batch (nothing staged or committing any more): the directories'
    /// descriptors are closed, so that a mailbox between polls holds none.
    package func pollEnded() { handles.closeAll() }

    /// The directories the renames go to (attachments/xx/ appear as they are first needed),
    /// each created once: the store remembers those it made or found.
    private func makeDirectories(for paths: [String]) throws(DurableFiles.Failure) {
        try knownDirectories.withLock { known throws(DurableFiles.Failure) in
            // Most paths share a directory already made: one parent and one lookup each.
            for path in paths {
                let directory = DurableFiles.parent(path)
                guard !known.contains(directory) else { continue }
                try DurableFiles.makeDirectory(directory)
                known.insert(directory)
            }
        }
    }
}
