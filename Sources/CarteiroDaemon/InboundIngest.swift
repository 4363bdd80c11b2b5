import CarteiroConfig
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Foundation

/// The part of a poll that does not depend on the protocol: a fetched message becomes an
/// event, staged durably, unless this mailbox handed the same message on before.
struct InboundIngest {
    let mailbox: InboundMailbox
    let contract: String?
    let builder: EventBuilder
    let store: MailboxStore

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
        for message in messages {
            let (event, attachments) = builder.build(.init(mailbox: mailbox.name, contract: contract, origin: message.origin,
                                                           receivedAt: now, bytes: message.bytes, size: message.size, oversize: message.oversize))
            let key = Self.dedupeKey(event, bytes: message.bytes)
            if store.dedupeKeys.contains(key) || seenInBatch.contains(key) {
                duplicates += 1
                continue
            }
            seenInBatch.insert(key)
            do {
                staged.append(try store.stage(id: event.id, dedupeKey: key, event: Array(event.json().rendered().utf8),
                                              raw: message.bytes, attachments: attachments))
            } catch {
                throw .storage(error.description)
            }
        }
        return (staged, duplicates)
    }
}
