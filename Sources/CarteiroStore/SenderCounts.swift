import CarteiroJSON

/// How many messages each correspondent (an address, and its domain) sent a mailbox in the
/// current window: what flood limits count, kept across restarts (a looping autoresponder must
/// not start afresh with every restart of the daemon).
///
/// Bounded whatever the number of correspondents: at most `capacity` entries; past it, entries
/// whose window is over go first, then those that sent least (they are no flood).
package struct SenderCounts: Sendable, Equatable {
    package struct Entry: Sendable, Equatable {
        package var windowStart: Int64
        package var count: Int
        /// The alert for this episode was raised.
        package var alerted: Bool
    }

    package private(set) var entries: [String: Entry] = [:]
    package static let capacity = 10_000
    /// More messages than any window holds; a count stops there.
    static let maximumCount = 1 << 40
    /// A key longer than this is cut (an address is at most 254 bytes).
    static let maximumKey = 300

    package init() {}

    /// Counts one message of `key` at `now`: its count in the window, and whether this message
    /// is the first past `limit` (the alert is raised once per episode).
    package mutating func count(_ key: String, now: Int64, window: Int64, limit: Int) -> (count: Int, newlyOver: Bool) {
        let key = String(key.prefix(Self.maximumKey))
        var entry = entries[key] ?? Entry(windowStart: now, count: 0, alerted: false)
        // A window that ended (or a time from a clock that went back) starts a new episode.
        if now >= entry.windowStart &+ window || now < entry.windowStart {
            entry = Entry(windowStart: now, count: 0, alerted: false)
        }
        entry.count = min(entry.count + 1, Self.maximumCount)
        var newlyOver = false
        if limit > 0, entry.count > limit, !entry.alerted {
            entry.alerted = true
            newlyOver = true
        }
        if entries[key] == nil && entries.count >= Self.capacity { makeRoom(now: now, window: window) }
        entries[key] = entry
        return (entry.count, newlyOver)
    }

    /// `key`'s count in the window that holds `now` (0 when none), without counting anything;
    /// and when that window ends.
    package func current(_ key: String, now: Int64, window: Int64) -> (count: Int, windowEnd: Int64) {
        guard let entry = entries[String(key.prefix(Self.maximumKey))], now >= entry.windowStart, now < entry.windowStart &+ window else { return (0, now) }
        return (entry.count, entry.windowStart &+ window)
    }

    /// Marks the episode of `key` as alerted: true the first time in its window.
    package mutating func markAlerted(_ key: String) -> Bool {
        let key = String(key.prefix(Self.maximumKey))
        guard var entry = entries[key], !entry.alerted else { return false }
        entry.alerted = true
        entries[key] = entry
        return true
    }

    mutating func makeRoom(now: Int64, window: Int64) {
        entries = entries.filter { now < $0.value.windowStart &+ window && now >= $0.value.windowStart }
        guard entries.count >= Self.capacity else { return }
        let keep = entries.sorted { ($0.value.count, $0.value.windowStart) > ($1.value.count, $1.value.windowStart) }.prefix(Self.capacity * 9 / 10)
        entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }

    /// `{"SENDER": [WINDOW_START, COUNT, ALERTED], …}`.
    package func json() -> JSONValue {
        .object(entries.sorted { $0.key < $1.key }.map { ($0.key, .array([.number($0.value.windowStart), .number(Int64($0.value.count)), .bool($0.value.alerted)])) })
    }

    /// Reads what `json()` wrote; what does not read is left out (a damaged file loses counts, not the mailbox).
    package init(json bytes: [UInt8]) {
        guard let object = JSONValue.parse(bytes), case .object(let members) = object else { return }
        for (key, value) in members.prefix(Self.capacity) {
            // A count no window can reach (a damaged file) is left out: adding to it must not overflow.
            guard let items = value.array, items.count == 3, let start = items[0].int64, let count = items[1].int, count >= 0,
                  count <= Self.maximumCount, let alerted = items[2].bool else { continue }
            entries[String(key.prefix(Self.maximumKey))] = Entry(windowStart: start, count: count, alerted: alerted)
        }
    }
}
