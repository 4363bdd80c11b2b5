import CarteiroConfig
import CarteiroEvents
import CarteiroMail
import CarteiroStore
import Synchronization

/// A mailbox's flood limits per correspondent (`max_messages_per_sender`,
/// `max_messages_per_domain` within `flood_window`): counts each message's `From:` address and
/// domain, in the order the source handed the messages over, says which are past a limit
/// (flagged `flood`: still handed on, never held), and which crossed one just now (one
/// `sender.flooding` alert per window). The counts are the ledger's, read at the first batch and
/// kept at the end of each poll that changed them, so a restart does not reset them.
final class FloodGuard: Sendable {
    let mailbox: InboundMailbox
    private let counts = Mutex<(counts: SenderCounts?, changed: Bool)>((nil, false))

    init(mailbox: InboundMailbox) {
        self.mailbox = mailbox
    }

    var isOn: Bool { mailbox.maxMessagesPerSender > 0 || mailbox.maxMessagesPerDomain > 0 }

    struct Crossing: Sendable {
        var sender: String
        var count: Int
        var limit: Int
    }

    /// For each message of a batch, in order: whether it is past a limit; and the limits crossed.
    func check(_ messages: [InboundIngest.Fetched], store: any MailboxLedger, now: Int64) -> (flood: [Bool], crossed: [Crossing]) {
        guard isOn else { return (Array(repeating: false, count: messages.count), []) }
        let senders = messages.map { $0.unreadable == nil ? Self.sender(of: $0.bytes) : nil }
        let window = mailbox.floodWindow.components.seconds
        return counts.withLock { state in
            var current = state.counts ?? store.senderCounts()
            var flood: [Bool] = []
            var crossed: [Crossing] = []
            for sender in senders {
                guard let sender, let at = sender.lastIndex(of: "@") else {
                    flood.append(false)
                    continue
                }
                let domain = String(sender[at...])
                var over = false
                for (key, limit) in [(sender, mailbox.maxMessagesPerSender), (domain, mailbox.maxMessagesPerDomain)] where limit > 0 {
                    let (count, newlyOver) = current.count(key, now: now, window: window, limit: limit)
                    if count > limit { over = true }
                    if newlyOver { crossed.append(Crossing(sender: key, count: count, limit: limit)) }
                }
                flood.append(over)
            }
            state = (current, true)
            return (flood, crossed)
        }
    }

    /// Keeps the counts if a batch changed them (the end of a poll).
    func save(to store: any MailboxLedger) throws(StoreFailure) {
        let pending: SenderCounts? = counts.withLock { state in
            defer { state.changed = false }
            return state.changed ? state.counts : nil
        }
        if let pending { try store.recordSenderCounts(pending) }
    }

    /// The `From:` address of a message, lower case; only its header is read.
    static func sender(of bytes: [UInt8]) -> String? {
        let (header, _) = HeaderBlock.parse(bytes[...])
        return header.raw("from").flatMap { AddressList.parse($0).first?.address.lowercased() }
    }
}
