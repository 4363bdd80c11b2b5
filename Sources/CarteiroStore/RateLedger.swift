import Foundation

/// What an outbound mailbox sent lately, for its sending limits (messages per minute,
/// recipients per day): one entry per sent message, its time and its number of recipients, the
/// last 24 hours kept where a restart does not reset the count. The store hands it out
/// (`OutboundQueueStore.rateLedger`); the limits themselves are worked out here, once.
package protocol SendingLedger: Sendable {
    /// Where the ledger is kept, for messages about it.
    var location: String { get }
    var entries: [(time: Int64, recipients: Int)] { get }
    /// Adds a message sent at `now`, drops what is older than a day, and keeps the result.
    mutating func record(now: Int64, recipients: Int) throws(StoreFailure)
}

/// The state directory's sending ledger: one line per sent message, `TIME RECIPIENTS`, in the
/// lane's queue folder.
package struct RateLedger: SendingLedger {
    package let path: String
    package private(set) var entries: [(time: Int64, recipients: Int)] = []
    package var location: String { path }

    package init(path: String) {
        self.path = path
        guard let bytes = DurableFiles.read(path) else { return }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let time = Int64(parts[0]), let count = Int(parts[1]), count >= 0, count < 1_000_000 else { continue }
            entries.append((time, count))
        }
    }

    package mutating func record(now: Int64, recipients: Int) throws(StoreFailure) {
        entries = entries.filter { $0.time > now - 86_400 && $0.time <= now + RateLedgerLimits.allowedSkew }
        entries.append((now, recipients))
        let text = entries.map { "\($0.time) \($0.recipients)\n" }.joined()
        try DurableFiles.replace(path, with: Array(text.utf8))
    }
}

extension SendingLedger {
    /// How far ahead of the clock an entry may be and still count: clocks of one machine
    /// disagree by less (an NTP step), while an entry from a clock that ran fast, then was set
    /// right (or a line written by hand), would otherwise hold the lane until that time comes.

    /// The entries dated more than `allowedSkew` after `now`: never counted (see `wait`), dropped
    /// at the next `record`; for the lane to report once.
    package func future(now: Int64) -> [(time: Int64, recipients: Int)] {
        entries.filter { $0.time > now + RateLedgerLimits.allowedSkew }
    }

    /// nil when a message to `recipients` may go now; else when it may. Entries from the
    /// future beyond `allowedSkew` are not counted.
    package func wait(now: Int64, recipients: Int, perMinute: Int?, perDay: Int?) -> Int64? {
        var until: Int64?
        let entries = self.entries.filter { $0.time <= now + RateLedgerLimits.allowedSkew }
        if let perMinute {
            let recent = entries.filter { $0.time > now - 60 }
            if recent.count >= perMinute, let oldest = recent.dropLast(perMinute - 1).last {
                until = max(until ?? 0, oldest.time + 60)
            }
        }
        if let perDay {
            let day = entries.filter { $0.time > now - 86_400 }
            var sum = day.reduce(0) { $0 + $1.recipients }
            if sum + recipients > perDay {
                // When enough of the oldest have aged out of the day.
                var freed: Int64 = now + 86_400
                for entry in day {
                    sum -= entry.recipients
                    if sum + recipients <= perDay { freed = entry.time + 86_400; break }
                }
                until = max(until ?? 0, freed)
            }
        }
        return until
    }
}

package enum RateLedgerLimits {
    /// How far ahead of the clock an entry may be and still count: clocks of one machine
    /// disagree by less (an NTP step), while an entry from a clock that ran fast, then was set
    /// right (or a line written by hand), would otherwise hold the lane until that time comes.
    package static let allowedSkew: Int64 = 300
}
