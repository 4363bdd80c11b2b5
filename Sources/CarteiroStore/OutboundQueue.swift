import CarteiroJSON
import Foundation

/// One queued message: its envelope, and per recipient what the server said so far.
package struct QueuedMessage: Sendable, Equatable {
    package enum RecipientState: String, Sendable { case pending, sent, failed }

    package struct Recipient: Sendable, Equatable {
        package var address: String
        package var state: RecipientState
        package var code: Int?
        package var reply: String?
        package init(address: String, state: RecipientState = .pending, code: Int? = nil, reply: String? = nil) {
            self.address = address
            self.state = state
            self.code = code
            self.reply = reply
        }
    }

    package var id: String
    package var mailbox: String
    package var envelopeFrom: String
    package var recipients: [Recipient]
    package var messageID: String
    package var request: String?
    package var contract: String?
    /// Seconds since 1970.
    package var created: Int64
    package var attempts: Int
    package var nextAttempt: Int64
    package var lastError: String?

    package init(id: String, mailbox: String, envelopeFrom: String, recipients: [String], messageID: String,
                request: String?, contract: String?, created: Int64) {
        self.id = id
        self.mailbox = mailbox
        self.envelopeFrom = envelopeFrom
        self.recipients = recipients.map { Recipient(address: $0) }
        self.messageID = messageID
        self.request = request
        self.contract = contract
        self.created = created
        attempts = 0
        nextAttempt = 0
    }

    package var pending: [String] { recipients.filter { $0.state == .pending }.map(\.address) }
    package var isFinished: Bool { !recipients.contains { $0.state == .pending } }

    /// The entry as JSON, keys sorted (JSONSerialization took a quarter of the outbox's time).
    func json() -> JSONValue {
        var members: [(String, JSONValue)] = [("attempts", .number(Int64(attempts)))]
        if let contract { members.append(("contract", .string(contract))) }
        members.append(("created", .number(created)))
        members.append(("envelope_from", .string(envelopeFrom)))
        members.append(("id", .string(id)))
        if let lastError { members.append(("last_error", .string(lastError))) }
        members.append(("mailbox", .string(mailbox)))
        members.append(("message_id", .string(messageID)))
        members.append(("next_attempt", .number(nextAttempt)))
        members.append(("recipients", .array(recipients.map { r in
            var entry: [(String, JSONValue)] = [("address", .string(r.address))]
            if let code = r.code { entry.append(("code", .number(Int64(code)))) }
            if let reply = r.reply { entry.append(("reply", .string(reply))) }
            entry.append(("state", .string(r.state.rawValue)))
            return .object(entry)
        })))
        if let request { members.append(("request", .string(request))) }
        return .object(members)
    }

    init?(json: JSONValue) {
        guard let id = json["id"]?.string, let mailbox = json["mailbox"]?.string,
              let from = json["envelope_from"]?.string, let messageID = json["message_id"]?.string,
              let recipients = json["recipients"]?.array else { return nil }
        self.id = id
        self.mailbox = mailbox
        envelopeFrom = from
        self.messageID = messageID
        self.recipients = recipients.compactMap { entry in
            guard let address = entry["address"]?.string else { return nil }
            return Recipient(address: address, state: RecipientState(rawValue: entry["state"]?.string ?? "") ?? .pending,
                             code: entry["code"]?.int, reply: entry["reply"]?.string)
        }
        request = json["request"]?.string
        contract = json["contract"]?.string
        created = json["created"]?.int64 ?? 0
        attempts = json["attempts"]?.int ?? 0
        nextAttempt = json["next_attempt"]?.int64 ?? 0
        lastError = json["last_error"]?.string
    }
}

/// The outbound queue, Postfix-style directories: `queue/LANE/ID.eml` holds the
/// message, `queue/LANE/ID.json` its envelope and state; a message is queued once its .json is
/// renamed into place (both durable first). `queue/failed/` keeps what was given up.
package struct OutboundQueue: Sendable {
    package let root: String
    /// Called before each step of `enqueue` with its name: the crash tests stop it at any step.
    let faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?

    package let stateDirectory: String

    package init(stateDirectory: String, faults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil) {
        self.stateDirectory = stateDirectory
        root = stateDirectory + "/queue"
        self.faults = faults
    }

    package var failedDirectory: String { root + "/failed" }
    package func lane(_ mailbox: String) -> String { root + "/" + mailbox }

    /// Queues every message, durably, before returning.
    package func enqueue(_ items: [(QueuedMessage, [UInt8])]) throws(DurableFiles.Failure) {
        var directories: Set<String> = []
        var written: [String] = []
        for (item, bytes) in items {
            let directory = lane(item.mailbox)
            if directories.insert(directory).inserted { try DurableFiles.makeDirectory(directory) }
            try faults?("write \(item.id).eml")
            try DurableFiles.writeUnsynced(bytes, to: directory + "/" + item.id + ".eml")
            try faults?("write \(item.id).json.tmp")
            try DurableFiles.writeUnsynced(item.json().renderedCompact(), to: directory + "/." + item.id + ".json.tmp")
            written += [directory + "/" + item.id + ".eml", directory + "/." + item.id + ".json.tmp"]
        }
        // Group commit: every file of the batch durable at once (one syncfs, not two fsyncs a message).
        try faults?("sync")
        try DurableFiles.syncFileSystems(holding: Array(directories), files: written)
        for directory in directories { try DurableFiles.syncDirectory(directory) }
        // The renames make the messages visible to the lanes.
        for (item, _) in items {
            let directory = lane(item.mailbox)
            try faults?("rename \(item.id)")
            try DurableFiles.rename(directory + "/." + item.id + ".json.tmp", directory + "/" + item.id + ".json")
        }
        try faults?("directory sync")
        for directory in directories { try DurableFiles.syncDirectory(directory) }
    }

    /// The messages of a lane, oldest first.
    package func messages(in mailbox: String) -> [QueuedMessage] {
        Self.load(directory: lane(mailbox))
    }

    package func failedMessages() -> [QueuedMessage] { Self.load(directory: failedDirectory) }

    /// A lane's entries by id with their modification time (ns), without reading them: a lane
    /// re-reads only the files that changed, so a large deferred backlog costs a listing, not a
    /// parse of every entry at every tick.
    package func stamps(in mailbox: String) -> [String: Int64] {
        let directory = lane(mailbox)
        var result: [String: Int64] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0 else { continue }
            result[String(name.dropLast(5))] = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        }
        return result
    }

    package func message(in mailbox: String, id: String) -> QueuedMessage? {
        guard let data = FileManager.default.contents(atPath: lane(mailbox) + "/" + id + ".json"),
              let object = JSONValue.parse(Array(data)) else { return nil }
        return QueuedMessage(json: object)
    }

    /// Every lane's name (the outbound mailboxes with something queued).
    package func lanes() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != "failed" && $0 != "corrupt" && !$0.hasPrefix(".") }.sorted()
    }

    static func load(directory: String) -> [QueuedMessage] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: directory + "/" + name),
                  let object = JSONValue.parse(Array(data)) else { return nil }
            return QueuedMessage(json: object)
        }.sorted { ($0.created, $0.id) < ($1.created, $1.id) }
    }

    /// The ids of every queued and failed message.
    package func allIDs() -> Set<String> {
        var ids: Set<String> = []
        for directory in lanes().map(lane) + [failedDirectory] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") && !name.hasPrefix(".") {
                ids.insert(String(name.dropLast(5)))
            }
        }
        return ids
    }

    package var corruptDirectory: String { root + "/corrupt" }

    /// An entry that cannot be read (damaged JSON, a hand-edited file): moved with its message
    /// to `queue/corrupt/`, Postfix-style, so that it is neither retried for ever nor lost.
    /// Returns where it went.
    package func setAside(_ id: String, in mailbox: String) throws(DurableFiles.Failure) -> String {
        try DurableFiles.makeDirectory(corruptDirectory)
        let target = corruptDirectory + "/" + mailbox + "+" + id
        for suffix in [".eml", ".json"] where DurableFiles.exists(lane(mailbox) + "/" + id + suffix) {
            try DurableFiles.rename(lane(mailbox) + "/" + id + suffix, target + suffix)
        }
        return target + ".json"
    }

    /// Whether the lane of `mailbox` holds the entry `id`.
    package func holds(_ id: String, in mailbox: String) -> Bool {
        DurableFiles.exists(lane(mailbox) + "/" + id + ".json")
    }

    package func messageBytes(_ item: QueuedMessage) -> [UInt8]? {
        DurableFiles.read(lane(item.mailbox) + "/" + item.id + ".eml")
    }

    package func update(_ item: QueuedMessage) throws(DurableFiles.Failure) {
        try DurableFiles.replace(lane(item.mailbox) + "/" + item.id + ".json", with: item.json().renderedCompact(), faults: faults)
    }

    /// Delivered to everyone: gone from the queue.
    package func remove(_ item: QueuedMessage) {
        unlink(lane(item.mailbox) + "/" + item.id + ".json")
        unlink(lane(item.mailbox) + "/" + item.id + ".eml")
    }

    /// Given up: moved to `failed/` with its final state.
    package func fail(_ item: QueuedMessage) throws(DurableFiles.Failure) {
        try DurableFiles.makeDirectory(failedDirectory)
        if DurableFiles.exists(lane(item.mailbox) + "/" + item.id + ".eml") {
            try DurableFiles.rename(lane(item.mailbox) + "/" + item.id + ".eml", failedDirectory + "/" + item.id + ".eml")
        }
        try DurableFiles.replace(failedDirectory + "/" + item.id + ".json", with: item.json().renderedCompact())
        unlink(lane(item.mailbox) + "/" + item.id + ".json")
    }

    /// `carteiro queue retry ID`: due now; a failed message goes back to its lane with its
    /// failed recipients pending again.
    package func retry(id: String) throws(DurableFiles.Failure) -> Bool {
        for lane in lanes() {
            if var item = messages(in: lane).first(where: { $0.id == id }) {
                item.nextAttempt = 0
                try update(item)
                return true
            }
        }
        guard var item = failedMessages().first(where: { $0.id == id }) else { return false }
        for index in item.recipients.indices where item.recipients[index].state == .failed { item.recipients[index].state = .pending }
        item.nextAttempt = 0
        item.created = Int64(Date().timeIntervalSince1970)
        let bytes = DurableFiles.read(failedDirectory + "/" + id + ".eml") ?? []
        try enqueue([(item, bytes)])
        unlink(failedDirectory + "/" + id + ".json")
        unlink(failedDirectory + "/" + id + ".eml")
        return true
    }

    package func delete(id: String) -> Bool {
        for directory in lanes().map(lane) + [failedDirectory] where DurableFiles.exists(directory + "/" + id + ".json") {
            unlink(directory + "/" + id + ".json")
            unlink(directory + "/" + id + ".eml")
            return true
        }
        return false
    }
}
