import CarteiroJSON
import Foundation

/// Where a mailbox's source stands: opaque to the store, which keeps it with the batch that
/// moved it. Each kind of source says what its cursor holds (IMAP: UIDVALIDITY and the last UID;
/// POP3: the UIDLs handed on) and encodes it as JSON; `kind` names the source that wrote it, so
/// a mailbox whose protocol changed starts afresh instead of misreading another's position.
package struct SourceCursor: Sendable, Equatable {
    /// The kind of source that wrote it (`imap`, `pop3` …), or `legacy` for state written
    /// before cursors existed (see `MailboxState.init(json:)`).
    package var kind: String
    /// The source's own JSON object.
    package var json: [UInt8]

    package static let legacy = "legacy"

    package init(kind: String, json: [UInt8]) {
        self.kind = kind
        self.json = json
    }

    /// Encodes a source's position (keys sorted, so the same position is the same bytes).
    package init<Position: Encodable>(kind: String, _ position: Position) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.kind = kind
        json = (try? encoder.encode(position)).map { Array($0) } ?? Array("{}".utf8)
    }

    /// The position, when `kind` wrote it and it decodes as one; nil otherwise (the mailbox
    /// then starts as on its first poll, its dedupe keys guarding against doubles).
    package func decode<Position: Decodable>(_ type: Position.Type, kind expected: String) -> Position? {
        guard kind == expected else { return nil }
        return try? JSONDecoder().decode(type, from: Data(json))
    }
}

/// What Carteiro remembers about one inbound mailbox between polls.
package struct MailboxState: Sendable, Equatable {
    /// Where the source stands; nil before the first poll.
    package var cursor: SourceCursor?
    /// Messages handed on since the state was created.
    package var handedOn: Int = 0
    /// The messages (by their source's key: a UID, a UIDL …) of a batch whose fetch failed:
    /// fetched one at a time until each is handed on, so that one bad message is found and the
    /// others go on.
    package var suspects: [String] = []
    /// Messages whose fetch failed on their own: how often, and the last reason. After
    /// `Strike.limit` failures a message is handed on as `message.unreadable` and skipped.
    package var strikes: [String: Strike] = [:]
    /// Messages a routing rule dropped, by their source's key: left on the server whatever
    /// `after_fetch` says, remembered while the server still has them there.
    package var kept: Set<String> = []

    package struct Strike: Sendable, Equatable {
        /// Failed polls before a message is given up as unreadable: one failure can be the
        /// network; three on the same message alone, poll after poll, are the message.
        package static let limit = 3
        package var count: Int
        package var reason: String
        package init(count: Int, reason: String) {
            self.count = count
            self.reason = reason
        }
    }

    package init() {}

    /// Forgets the suspects and strikes of messages `handed` says were handed on, but not
    /// the strikes of those given up as unreadable: they stay on the server, untouched by
    /// `after_fetch` (deleting a message nobody could read would lose it for good).
    package mutating func forget(where handed: (String) -> Bool) {
        suspects.removeAll(where: handed)
        strikes = strikes.filter { !handed($0.key) || $0.value.count >= Strike.limit }
    }

    /// Messages given up as unreadable (their strikes reached the limit).
    package var givenUp: Set<String> { Set(strikes.filter { $0.value.count >= Strike.limit }.keys) }

    func json() -> JSONValue {
        var members: [(String, JSONValue)] = []
        if let cursor {
            members.append(("cursor", .object([("kind", .string(cursor.kind)), ("position", .raw(cursor.json))])))
        }
        members.append(("handed_on", .number(Int64(handedOn))))
        if !strikes.isEmpty {
            members.append(("strikes", .object(strikes.sorted { $0.key < $1.key }.map { key, strike in
                (key, .object([("count", .number(Int64(strike.count))), ("reason", .string(strike.reason))]))
            })))
        }
        if !suspects.isEmpty { members.append(("suspects", .array(suspects.map { .string($0) }))) }
        if !kept.isEmpty { members.append(("kept", .array(kept.sorted().map { .string($0) }))) }
        return .object(members)
    }

    /// The members state files held before cursors: IMAP's and POP3's positions side by side.
    static let legacyMembers = ["uidvalidity", "last_uid", "after_fetch_from", "uidls"]

    init(json: JSONValue) {
        handedOn = json["handed_on"]?.int ?? 0
        suspects = json["suspects"]?.strings ?? []
        kept = Set(json["kept"]?.strings ?? [])
        for (key, value) in json["strikes"]?.members ?? [] {
            guard let count = value["count"]?.int else { continue }
            strikes[key] = Strike(count: count, reason: value["reason"]?.string ?? "")
        }
        if let cursor = json["cursor"], let kind = cursor["kind"]?.string, let position = cursor["position"] {
            self.cursor = SourceCursor(kind: kind, json: position.renderedCompact())
            return
        }
        // A state file written before cursors: its position members are kept as they are, and
        // the mailbox's source reads them on its first poll (each takes its own members). A
        // mailbox never polled had no `uidvalidity`, no UIDLs and nothing handed on.
        let legacy = (json.members ?? []).filter { Self.legacyMembers.contains($0.0) }
        let polled = json["uidvalidity"] != nil || !(json["uidls"]?.array ?? []).isEmpty || handedOn > 0
        if polled {
            cursor = SourceCursor(kind: SourceCursor.legacy, json: JSONValue.object(legacy).renderedCompact())
        }
    }
}
