import CarteiroConfig
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Dispatch
import Foundation

/// Results filled in by concurrent workers, one slot each.
final class BuildResults: @unchecked Sendable {
    typealias Built = (id: String, key: String, json: [UInt8], attachments: [(sha256: String, data: [UInt8])])
    private var slots: [Built?]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Built) { lock.lock(); slots[index] = value; lock.unlock() }
    func get(_ index: Int) -> Built? { lock.lock(); defer { lock.unlock() }; return slots[index] }
}

/// The part of a poll that does not depend on the protocol: a fetched message becomes an
/// event, staged durably, unless this mailbox handed the same message on before.
struct InboundIngest {
    let mailbox: InboundMailbox
    let contract: String?
    let builder: EventBuilder
    let store: MailboxStore
    let log: DaemonLog

    struct Fetched {
        var origin: MessageOrigin
        var bytes: [UInt8]
        var size: Int
        var oversize: Bool
    }

    /// The Message-ID, or for a message without one a hash of its header (SPEC §3).
    static func dedupeKey(_ event: RequestEvent, bytes: [UInt8]) -> String {
        if let id = event.message?.messageID, !id.isEmpty { return "id:" + id }
        let (_, bodyStart) = HeaderBlock.parse(bytes[...])
        return "sha256:" + Digest.hex(Digest.sha256(Array(bytes[..<bodyStart])))
    }

    /// Stages each message not seen before; returns what to commit and how many were duplicates.
    func stage(_ messages: [Fetched], seenInBatch: inout Set<String>) throws(PollFailure) -> (staged: [StagedMessage], duplicates: Int) {
        var staged: [StagedMessage] = []
        var duplicates = 0
        let now = Int64(Date().timeIntervalSince1970)
        // Parsing and rendering are pure and independent: spread them over the cores.
        let built = BuildResults(count: messages.count)
        DispatchQueue.concurrentPerform(iterations: messages.count) { index in
            let message = messages[index]
            let (event, attachments) = builder.build(.init(mailbox: mailbox.name, contract: contract, origin: message.origin,
                                                           receivedAt: now, bytes: message.bytes, size: message.size, oversize: message.oversize))
            built.set(index, (event.id, Self.dedupeKey(event, bytes: message.bytes), event.json().renderedBytes(), attachments))
        }
        for (index, message) in messages.enumerated() {
            guard let (id, key, json, attachments) = built.get(index) else { continue }
            if store.dedupeKeys.contains(key) || seenInBatch.contains(key) {
                duplicates += 1
                continue
            }
            seenInBatch.insert(key)
            do {
                staged.append(try store.stage(id: id, dedupeKey: key, event: json, raw: message.bytes, attachments: attachments))
            } catch {
                throw .storage(error.description)
            }
        }
        return (staged, duplicates)
    }
}
