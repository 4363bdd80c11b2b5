import Foundation

/// What Carteiro remembers about one inbound mailbox between polls.
public struct MailboxState: Sendable, Equatable {
    /// IMAP: the folder's UIDVALIDITY when `lastUID` was recorded.
    public var uidValidity: UInt32?
    /// IMAP: the highest UID handed on.
    public var lastUID: UInt32 = 0
    /// IMAP: every UID from this one to `lastUID` was handed on (older ones may predate
    /// Carteiro, with import_existing = unseen or none), so after_fetch may be applied to them.
    public var afterFetchFrom: UInt32 = 1
    /// POP3: the UIDLs handed on that the server still lists.
    public var uidls: [String] = []
    /// Messages handed on since the state was created.
    public var handedOn: Int = 0

    public init() {}

    func json() -> [String: Any] {
        var object: [String: Any] = ["last_uid": Int(lastUID), "after_fetch_from": Int(afterFetchFrom), "uidls": uidls, "handed_on": handedOn]
        if let uidValidity { object["uidvalidity"] = Int(uidValidity) }
        return object
    }

    init(json: [String: Any]) {
        uidValidity = (json["uidvalidity"] as? Int).map { UInt32(truncatingIfNeeded: $0) }
        lastUID = UInt32(truncatingIfNeeded: json["last_uid"] as? Int ?? 0)
        afterFetchFrom = UInt32(truncatingIfNeeded: json["after_fetch_from"] as? Int ?? 1)
        uidls = json["uidls"] as? [String] ?? []
        handedOn = json["handed_on"] as? Int ?? 0
    }
}

/// A message whose files are written (temporary names, fsynced) but not yet handed on.
public struct StagedMessage: Sendable {
    public var id: String
    /// The key that recognises the same message again (Message-ID, or a hash of the header).
    public var dedupeKey: String
    var renames: [(from: String, to: String)]
}

/// One inbound mailbox's durable state and its hand-over of messages (SPEC §3's order:
/// files durable → state advanced → only then `after_fetch`).
///
/// A batch is committed through an intent file: once it is durable the batch counts as handed
/// on, and a crash after it is finished at the next start (renames redone, state applied).
/// A crash before it leaves only temporary files, which are removed, and the messages are
/// fetched again. Either way each message becomes exactly one event.
public final class MailboxStore {
    public let name: String
    let directory: StateDirectory
    let folder: String
    public private(set) var state = MailboxState()
    /// Keys of messages handed on: a new UIDVALIDITY does not re-create old requests.
    public private(set) var dedupeKeys: Set<String> = []
    private var stagedCount = 0

    var statePath: String { folder + "/state.json" }
    var intentPath: String { folder + "/intent.json" }
    var keysPath: String { folder + "/message-keys" }
    var staging: String { folder + "/staging" }

    public init(directory: StateDirectory, mailbox: String) throws(DurableFiles.Failure) {
        self.name = mailbox
        self.directory = directory
        self.folder = directory.mailbox(mailbox)
        try DurableFiles.makeDirectory(staging)
        try recover()
        if let data = DurableFiles.read(statePath), let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] {
            state = MailboxState(json: object)
        }
        if let data = DurableFiles.read(keysPath) {
            for line in data.split(separator: 10) where !line.isEmpty { dedupeKeys.insert(String(decoding: line, as: UTF8.self)) }
        }
    }

    /// Finishes a batch interrupted after its intent was durable; discards one interrupted before.
    func recover() throws(DurableFiles.Failure) {
        if let data = DurableFiles.read(intentPath),
           let intent = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] {
            let renames = intent["renames"] as? [[String]] ?? []
            for pair in renames where pair.count == 2 && DurableFiles.exists(pair[0]) {
                try DurableFiles.makeDirectory((pair[1] as NSString).deletingLastPathComponent)
                try DurableFiles.rename(pair[0], pair[1])
            }
            try syncDirectories(of: renames.compactMap { $0.count == 2 ? $0[1] : nil })
            if let keys = intent["keys"] as? [String] { try appendKeys(keys) }
            if let stateObject = intent["state"] as? [String: Any] {
                try DurableFiles.replace(statePath, with: try Self.encode(stateObject))
            }
            try? FileManager.default.removeItem(atPath: intentPath)
        }
        // Whatever is still staged belongs to a batch that never committed.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? [] {
            try? FileManager.default.removeItem(atPath: staging + "/" + entry)
        }
        let prefix = name + "+"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory.pendingEvents)) ?? [] where entry.hasPrefix(prefix) {
            try? FileManager.default.removeItem(atPath: directory.pendingEvents + "/" + entry)
        }
    }

    /// Writes a message's files under temporary names and fsyncs them. Nothing is visible yet.
    public func stage(id: String, dedupeKey: String, event: [UInt8], raw: [UInt8], attachments: [(sha256: String, data: [UInt8])]) throws(DurableFiles.Failure) -> StagedMessage {
        stagedCount += 1
        var renames: [(String, String)] = []
        let rawFinal = directory.raw + "/" + id + ".eml"
        let rawTemp = staging + "/\(stagedCount).eml"
        try DurableFiles.writeSynced(raw, to: rawTemp)
        renames.append((rawTemp, rawFinal))
        for attachment in attachments {
            let final = directory.root + "/attachments/\(attachment.sha256.prefix(2))/\(attachment.sha256)"
            if DurableFiles.exists(final) || renames.contains(where: { $0.1 == final }) { continue }
            let temp = staging + "/\(stagedCount)-\(attachment.sha256)"
            try DurableFiles.writeSynced(attachment.data, to: temp)
            renames.append((temp, final))
        }
        let fileName = StateDirectory.eventFileName(id)
        let eventTemp = directory.pendingEvents + "/" + fileName
        try DurableFiles.writeSynced(event, to: eventTemp)
        // The event last: when the desk sees it, its raw message and attachments are in place.
        renames.append((eventTemp, directory.spool + "/" + fileName))
        return StagedMessage(id: id, dedupeKey: dedupeKey, renames: renames)
    }

    /// Hands the staged messages on and records `newState`, durably and in that order.
    public func commit(_ messages: [StagedMessage], newState: MailboxState) throws(DurableFiles.Failure) {
        var advanced = newState
        advanced.handedOn = state.handedOn + messages.count
        let renames = messages.flatMap { $0.renames.map { [$0.from, $0.to] } }
        let keys = messages.map(\.dedupeKey)
        let intent: [String: Any] = ["renames": renames, "keys": keys, "state": advanced.json()]
        // The commit point: once this file is durable, the batch is handed on.
        try DurableFiles.replace(intentPath, with: try Self.encode(intent))
        for pair in renames {
            try DurableFiles.makeDirectory((pair[1] as NSString).deletingLastPathComponent)
            try DurableFiles.rename(pair[0], pair[1])
        }
        try syncDirectories(of: renames.map { $0[1] })
        try appendKeys(keys)
        try DurableFiles.replace(statePath, with: try Self.encode(advanced.json()))
        try? FileManager.default.removeItem(atPath: intentPath)
        state = advanced
        dedupeKeys.formUnion(keys)
    }

    /// Records a state change that hands nothing on (a first poll with import_existing = none, a new UIDVALIDITY).
    public func record(_ newState: MailboxState) throws(DurableFiles.Failure) {
        try DurableFiles.replace(statePath, with: try Self.encode(newState.json()))
        state = newState
    }

    static func encode(_ object: [String: Any]) throws(DurableFiles.Failure) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            throw DurableFiles.Failure(description: "cannot encode the mailbox state")
        }
        return [UInt8](data)
    }

    private func appendKeys(_ keys: [String]) throws(DurableFiles.Failure) {
        guard !keys.isEmpty else { return }
        guard let handle = FileHandle(forUpdatingAtPath: keysPath) ?? {
            _ = FileManager.default.createFile(atPath: keysPath, contents: nil)
            return FileHandle(forUpdatingAtPath: keysPath)
        }() else { throw DurableFiles.Failure(description: "cannot open \(keysPath)") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(keys.joined(separator: "\n").utf8 + [10]))
            try handle.synchronize()
        } catch {
            throw DurableFiles.Failure(description: "cannot append to \(keysPath): \(error)")
        }
    }

    private func syncDirectories(of paths: [String]) throws(DurableFiles.Failure) {
        for directory in Set(paths.map { ($0 as NSString).deletingLastPathComponent }) {
            try DurableFiles.syncDirectory(directory)
        }
    }
}
