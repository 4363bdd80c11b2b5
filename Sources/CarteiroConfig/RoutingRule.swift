/// A routing rule, `[rule.NAME]`: conditions on an inbound message and what a match does to its
/// event. Rules are evaluated in the order the configuration lists them; every rule whose
/// scope holds the message's mailbox and whose conditions all hold applies, until one that
/// drops the message or says `stop`.
package struct RoutingRule: Sendable {
    package var name: String
    /// The inbound mailboxes it applies to, named directly or through their contracts; both
    /// empty: every inbound mailbox.
    package var mailboxes: [String] = []
    package var contracts: [String] = []

    // Conditions: all of those given must hold (none given: every message matches).
    /// A header field and how its value must look.
    package var header: HeaderCondition?
    /// An address (or address glob) the From: field must hold.
    package var from: AddressPattern?
    /// An address (or address glob) one of the recipients must be (To, Cc, Delivered-To, X-Original-To).
    package var to: AddressPattern?
    /// The sender authentication verdicts that match (pass, fail, none, unknown); empty: any.
    package var verdicts: [String] = []

    // Actions.
    package var setContract: String?
    package var tags: [String] = []
    package var priority: String?
    package var queue: String?
    /// Drop the message with this reason: no event, left on the server, logged and counted.
    package var drop: String?
    /// No later rule is evaluated after this one matches.
    package var stop = false
    package var location: SourceLocation

    package init(name: String, location: SourceLocation) {
        self.name = name
        self.location = location
    }

    package static let priorities = ["low", "normal", "high", "urgent"]
    package static let verdictNames = ["pass", "fail", "none", "unknown"]

    /// Whether the rule applies to messages of `mailbox`, owned by `contract`.
    package func applies(to mailbox: String, contract: String?) -> Bool {
        if mailboxes.isEmpty && contracts.isEmpty { return true }
        return mailboxes.contains(mailbox) || contract.map(contracts.contains) ?? false
    }

    /// What the rule does, in a few words: for check-config and `parse`.
    package var actionSummary: String {
        if let drop { return "drop (\(drop))" }
        var parts: [String] = []
        if let setContract { parts.append("contract \(setContract)") }
        if !tags.isEmpty { parts.append("tags " + tags.joined(separator: ", ")) }
        if let priority { parts.append("priority \(priority)") }
        if let queue { parts.append("queue \(queue)") }
        if stop { parts.append("stop") }
        return parts.isEmpty ? "nothing" : parts.joined(separator: "; ")
    }

    /// The conditions, in a few words.
    package var conditionSummary: String {
        var parts: [String] = []
        if let header { parts.append(header.description) }
        if let from { parts.append("from \(from.text)") }
        if let to { parts.append("to \(to.text)") }
        if !verdicts.isEmpty { parts.append("verdict " + verdicts.joined(separator: "|")) }
        return parts.isEmpty ? "every message" : parts.joined(separator: " and ")
    }
}

/// A header field's name and the pattern its value must match.
package struct HeaderCondition: Sendable, CustomStringConvertible {
    /// Lower case.
    package var field: String
    package var pattern: TextPattern

    package init(field: String, pattern: TextPattern) {
        self.field = field.lowercased()
        self.pattern = pattern
    }

    /// The fields whose values are address lists: matched address by address.
    package static let addressFields: Set<String> = [
        "from", "sender", "reply-to", "to", "cc", "bcc", "delivered-to", "x-original-to", "envelope-to",
        "return-path", "resent-from", "resent-sender", "resent-to", "resent-cc", "disposition-notification-to",
    ]

    package var isAddressField: Bool { Self.addressFields.contains(field) }

    package var description: String { "\(field) \(pattern.description)" }
}

/// How a value must look: the whole of it, a glob over the whole of it, or a regular
/// expression found anywhere in it. Case is ignored unless `caseSensitive`.
package struct TextPattern: Sendable, CustomStringConvertible {
    package enum Kind: Sendable {
        case equals(String)
        case glob(Glob)
        case regex(SafeRegex)
    }
    package var kind: Kind
    package var caseSensitive: Bool

    package init(_ kind: Kind, caseSensitive: Bool) {
        self.kind = kind
        self.caseSensitive = caseSensitive
    }

    package var description: String {
        switch kind {
        case .equals(let text): "equals \"\(text)\""
        case .glob(let glob): "glob \"\(glob.pattern)\""
        case .regex(let regex): "regex \"\(regex.pattern)\""
        }
    }

    /// Whether `text` matches, spending from `budget` (regular expressions only); nil when
    /// the budget ran out.
    package func matches(_ text: String, budget: inout Int) -> Bool? {
        matches(MatchText(text), budget: &budget)
    }

    package func matches(_ text: MatchText, budget: inout Int) -> Bool? {
        switch kind {
        case .equals(let expected):
            return caseSensitive ? text.original == expected : text.lowered == expected.lowercased()
        case .glob(let glob):
            return glob.matches(scalars: caseSensitive ? text.scalars : text.loweredScalars, budget: &budget)
        case .regex(let regex):
            return regex.matches(scalars: caseSensitive ? text.scalars : text.loweredScalars, budget: &budget)
        }
    }
}

/// A value as the patterns test it, lowered and split into scalars once however many
/// patterns ask.
package struct MatchText: Sendable {
    package let original: String
    package let lowered: String
    package let scalars: [Unicode.Scalar]
    package let loweredScalars: [Unicode.Scalar]

    package init(_ text: String) {
        original = text
        lowered = text.lowercased()
        scalars = Array(text.unicodeScalars)
        loweredScalars = Array(lowered.unicodeScalars)
    }
}

/// A shell-style pattern over a whole text: `*` any run of characters, `?` one character,
/// `\` before either takes it literally. Matched in at most (text × pattern) steps.
package struct Glob: Sendable {
    package let pattern: String
    enum Token: Equatable { case literal(Unicode.Scalar), one, any }
    let tokens: [Token]

    /// `caseInsensitive`: the pattern is lowered here; the text must be lowered by the caller.
    package init(_ pattern: String, caseInsensitive: Bool) {
        self.pattern = pattern
        var tokens: [Token] = []
        var escaped = false
        for scalar in (caseInsensitive ? pattern.lowercased() : pattern).unicodeScalars {
            if escaped {
                tokens.append(.literal(scalar))
                escaped = false
                continue
            }
            switch scalar {
            case "\\": escaped = true
            case "*": if tokens.last != .any { tokens.append(.any) }
            case "?": tokens.append(.one)
            default: tokens.append(.literal(scalar))
            }
        }
        if escaped { tokens.append(.literal("\\")) }
        self.tokens = tokens
    }

    /// Whether the pattern has a wildcard at all.
    package var isLiteral: Bool { !tokens.contains { $0 == .any || $0 == .one } }

    /// The classic matcher that goes back only to the last `*`: linear for a pattern with one
    /// star, at most (text × pattern) steps in all.
    package func matches(_ text: String, budget: inout Int) -> Bool? {
        matches(scalars: Array(text.unicodeScalars), budget: &budget)
    }

    package func matches(scalars: [Unicode.Scalar], budget: inout Int) -> Bool? {
        var t = 0, p = 0
        var star: Int?, resume = 0
        while t < scalars.count {
            budget -= 1
            if budget < 0 { return nil }
            if p < tokens.count, tokens[p] == .one || tokens[p] == .literal(scalars[t]) {
                t += 1
                p += 1
            } else if p < tokens.count, tokens[p] == .any {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < tokens.count, tokens[p] == .any { p += 1 }
        return p == tokens.count
    }
}

/// An address condition: an address, matched as an address (case ignored, and
/// `support@acme.example` also matching `support+billing@acme.example`, while
/// `support+billing@acme.example` matches that extension only), or a glob over the whole
/// address (`*@acme.example`, `support+*@acme.example`).
package struct AddressPattern: Sendable {
    package let text: String
    let glob: Glob

    package init(_ text: String) {
        self.text = text
        glob = Glob(text, caseInsensitive: true)
    }

    package func matches(_ address: String, budget: inout Int) -> Bool? {
        matches(MatchText(address), budget: &budget)
    }

    package func matches(_ address: MatchText, budget: inout Int) -> Bool? {
        guard glob.isLiteral else { return glob.matches(scalars: address.loweredScalars, budget: &budget) }
        return Self.same(address.lowered, as: literal)
    }

    /// The pattern without its escapes, lowered: what a literal pattern compares with.
    var literal: String { text.replacingOccurrences(of: "\\", with: "").lowercased() }

    /// Whether `address` is `wanted` as an address: case ignored, and a `wanted` without a
    /// `+extension` in its local part matching the address with any.
    package static func same(_ address: String, as wanted: String) -> Bool {
        let lowered = address.lowercased(), wanted = wanted.lowercased()
        if lowered == wanted { return true }
        guard !local(wanted).contains("+"), let plus = lowered.firstIndex(of: "+"), let at = lowered.lastIndex(of: "@"), plus < at else { return false }
        return String(lowered[..<plus]) + String(lowered[at...]) == wanted
    }

    static func local(_ address: String) -> Substring {
        address.lastIndex(of: "@").map { address[..<$0] } ?? address[...]
    }
}
