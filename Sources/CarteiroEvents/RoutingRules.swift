import CarteiroConfig
import CarteiroMail

/// What the routing rules made of a message.
package struct Routing: Sendable, Equatable {
    /// The rules that matched, in the order they were evaluated.
    package var rules: [String] = []
    /// The contract a rule set, if any.
    package var contract: String?
    package var tags: [String] = []
    package var priority: String?
    package var queue: String?
    /// The rule that dropped the message, and its reason.
    package var dropped: Drop?
    /// The rules could not all be evaluated within their budget: why.
    package var problem: String?

    package struct Drop: Sendable, Equatable {
        package var rule: String
        package var reason: String
    }

    package init() {}

    /// Whether anything is worth recording in the event.
    package var isEmpty: Bool { rules.isEmpty && problem == nil }
}

/// The configuration's routing rules, evaluated against one message at a time. Every
/// comparison is bounded (`RoutingLimits`): whatever the rules and the message, one message
/// costs at most `stepsPerMessage` steps.
package struct RoutingRules: Sendable {
    package let rules: [RoutingRule]

    package init(_ rules: [RoutingRule] = []) {
        self.rules = rules
    }

    package var isEmpty: Bool { rules.isEmpty }

    /// The recipients' fields `to` tests.
    static let recipientFields = ["to", "cc", "delivered-to", "x-original-to"]

    /// Evaluates the rules in order for a message of `mailbox` (owned by `contract`), whose
    /// sender's verdict is `verdict`.
    package func route(_ header: HeaderBlock, mailbox: String, contract: String?, verdict: String,
                       budget: Int = RoutingLimits.stepsPerMessage) -> Routing {
        var routing = Routing()
        var budget = budget
        var values = FieldValues(header: header)
        for rule in rules where rule.applies(to: mailbox, contract: contract) {
            guard let matched = matches(rule, values: &values, verdict: verdict, budget: &budget) else {
                routing.problem = "the routing rules stopped at rule \"\(rule.name)\": this message's headers would take more than \(RoutingLimits.stepsPerMessage) steps to test"
                break
            }
            guard matched else { continue }
            routing.rules.append(rule.name)
            if let reason = rule.drop {
                routing.dropped = Routing.Drop(rule: rule.name, reason: reason)
                break
            }
            if let contract = rule.setContract { routing.contract = contract }
            for tag in rule.tags where !routing.tags.contains(tag) { routing.tags.append(tag) }
            if let priority = rule.priority { routing.priority = priority }
            if let queue = rule.queue { routing.queue = queue }
            if rule.stop { break }
        }
        return routing
    }

    /// nil: the budget ran out.
    func matches(_ rule: RoutingRule, values: inout FieldValues, verdict: String, budget: inout Int) -> Bool? {
        if !rule.verdicts.isEmpty && !rule.verdicts.contains(verdict) { return false }
        if let from = rule.from {
            guard let found = any(values.addresses("from"), budget: &budget, { from.matches($0, budget: &$1) }) else { return nil }
            if !found { return false }
        }
        if let to = rule.to {
            guard let found = any(values.recipients(), budget: &budget, { to.matches($0, budget: &$1) }) else { return nil }
            if !found { return false }
        }
        if let condition = rule.header {
            let pattern = condition.pattern
            if condition.isAddressField {
                let addresses = values.addresses(condition.field)
                let found: Bool?
                if case .equals(let wanted) = pattern.kind {
                    found = addresses.contains { AddressPattern.same($0.lowered, as: wanted) }
                } else {
                    // Addresses are compared without their case, whatever case_sensitive says.
                    let folded = TextPattern(pattern.kind, caseSensitive: false)
                    found = any(addresses, budget: &budget) { folded.matches($0, budget: &$1) }
                }
                guard let found else { return nil }
                if !found { return false }
            } else {
                guard let found = any(values.texts(condition.field), budget: &budget, { pattern.matches($0, budget: &$1) }) else { return nil }
                if !found { return false }
            }
        }
        return true
    }

    private func any(_ values: [MatchText], budget: inout Int, _ test: (MatchText, inout Int) -> Bool?) -> Bool? {
        for value in values {
            guard let matched = test(value, &budget) else { return nil }
            if matched { return true }
        }
        return false
    }
}

/// A message's header fields as the rules test them, each decoded once however many rules
/// ask: at most `fieldsPerName` fields of a name, `valueLength` characters of each,
/// `addressesPerField` addresses of each.
struct FieldValues {
    let header: HeaderBlock
    private var textCache: [String: [MatchText]] = [:]
    private var addressCache: [String: [MatchText]] = [:]
    private var recipientCache: [MatchText]?

    init(header: HeaderBlock) {
        self.header = header
    }

    /// The raw values of the first fields of that name, each cut to what can decode to
    /// `valueLength` characters (an encoded word is at most 75 bytes for a few characters).
    private func raws(_ field: String) -> [[UInt8]] {
        var result: [[UInt8]] = []
        for candidate in header.fields where candidate.lowercasedName == field {
            result.append(Array(candidate.value.prefix(RoutingLimits.valueLength * 16)))
            if result.count == RoutingLimits.fieldsPerName { break }
        }
        return result
    }

    mutating func texts(_ field: String) -> [MatchText] {
        if let cached = textCache[field] { return cached }
        let texts = raws(field).map { MatchText(String(EncodedWords.decode($0).prefix(RoutingLimits.valueLength))) }
        textCache[field] = texts
        return texts
    }

    mutating func addresses(_ field: String) -> [MatchText] {
        if let cached = addressCache[field] { return cached }
        let addresses = raws(field).flatMap { AddressList.parse($0).prefix(RoutingLimits.addressesPerField).map { MatchText($0.address) } }
        addressCache[field] = addresses
        return addresses
    }

    /// The addresses `to` tests, once.
    mutating func recipients() -> [MatchText] {
        if let recipientCache { return recipientCache }
        let all = RoutingRules.recipientFields.flatMap { addresses($0) }
        recipientCache = all
        return all
    }
}
