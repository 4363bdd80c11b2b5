/// What routing rules may cost, per message, whatever the rules and the message hold.
package enum RoutingLimits {
    /// At most this many fields of one name are tested (a message may carry thousands of
    /// `Received:` fields).
    package static let fieldsPerName = 20
    /// Of each value, the first this many characters are tested.
    package static let valueLength = 4_096
    /// Of an address field, at most this many addresses.
    package static let addressesPerField = 100
    /// Steps of every pattern of every rule for one message together (a step: one thread of a
    /// regular expression over one character, or one character of a glob). Past it the rules
    /// stop, and the event says so in its problems: a few milliseconds on this machine for
    /// any message; real rules take a few thousand.
    package static let stepsPerMessage = 4_000_000
}

extension ConfigurationBuilder {
    func readRule(_ reader: TableReader, diagnostics: inout DiagnosticList) -> RoutingRule {
        var rule = RoutingRule(name: reader.name, location: reader.table.location)
        rule.mailboxes = reader.names("mailboxes") ?? []
        rule.contracts = reader.names("contracts") ?? []
        let caseSensitive = reader.booleanOrDefault("case_sensitive")
        let patterns = ["equals", "glob", "regex"].filter(reader.has)
        if patterns.count > 1 {
            diagnostics.error(reader.keyLocation(patterns[1]), "`\(patterns[1])` and `\(patterns[0])` both say how `header` must look; keep one")
        }
        if let field = reader.string("header") {
            let name = field.trimmingSpaces
            if name.isEmpty || !name.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && $0 != ":" }) {
                diagnostics.error(reader.location("header"), "`header` must be a field name such as \"Subject\" (printable ASCII, no spaces or colon)")
            } else if let key = patterns.first {
                if let pattern = readPattern(key, reader: reader, caseSensitive: caseSensitive, diagnostics: &diagnostics) {
                    rule.header = HeaderCondition(field: name, pattern: pattern)
                }
            } else {
                diagnostics.error(reader.keyLocation("header"), "`header` needs one of `equals`, `glob` or `regex`: how the field must look")
            }
        } else if let key = patterns.first, !reader.isInvalid("header") {
            diagnostics.error(reader.keyLocation(key), "`\(key)` needs `header`: the field it tests, such as header = \"Subject\"")
        }
        if reader.has("case_sensitive"), rule.header == nil, !reader.has("header") {
            diagnostics.warning(reader.keyLocation("case_sensitive"), "`case_sensitive` applies to `header` only")
        }
        rule.from = reader.string("from").map(AddressPattern.init)
        rule.to = reader.string("to").map(AddressPattern.init)
        if let verdicts = reader.names("verdict") {
            for (offset, verdict) in verdicts.enumerated() where !RoutingRule.verdictNames.contains(verdict) {
                var location = reader.location("verdict")
                if case .array(let items)? = reader.table.entry("verdict")?.value.kind, offset < items.count { location = items[offset].location }
                diagnostics.error(location, "`verdict`: \"\(verdict)\" is not a verdict; expected any of " + RoutingRule.verdictNames.map { "\"\($0)\"" }.joined(separator: ", "))
            }
            rule.verdicts = verdicts
        }
        rule.setContract = reader.string("set_contract")
        rule.tags = reader.names("add_tags") ?? []
        rule.priority = reader.string("set_priority")
        rule.queue = reader.string("set_queue")
        rule.stop = reader.booleanOrDefault("stop")
        if let reason = reader.string("drop") {
            if reason.trimmingSpaces.isEmpty {
                diagnostics.error(reader.location("drop"), "`drop` needs a reason: the journal and status show it")
            }
            if let other = ["set_contract", "add_tags", "set_priority", "set_queue"].first(where: reader.has) {
                diagnostics.error(reader.keyLocation(other), "`\(other)` beside `drop`: a dropped message has no event to act on")
            }
            rule.drop = reason
        }
        return rule
    }

    private func readPattern(_ key: String, reader: TableReader, caseSensitive: Bool, diagnostics: inout DiagnosticList) -> TextPattern? {
        guard let text = reader.string(key) else { return nil }
        switch key {
        case "equals":
            return TextPattern(.equals(text), caseSensitive: caseSensitive)
        case "glob":
            return TextPattern(.glob(Glob(text, caseInsensitive: !caseSensitive)), caseSensitive: caseSensitive)
        default:
            do {
                return TextPattern(.regex(try SafeRegex(text, caseInsensitive: !caseSensitive)), caseSensitive: caseSensitive)
            } catch {
                let location = reader.location(key)
                diagnostics.error(StringColumn.location(ofCharacter: error.offset, inStringAt: location),
                                  "`regex` does not compile: \(error.reason) (character \(error.offset + 1) of the pattern)")
                return nil
            }
        }
    }

    /// Cross-references of the rules: their mailboxes, contracts and set_contract.
    func validateRules(_ configuration: Configuration, document: ConfigDocument, diagnostics: inout DiagnosticList) {
        let inbound = configuration.inboundMailboxes.map(\.name)
        let contracts = configuration.contracts.map(\.id)
        for rule in configuration.rules {
            let table = document.table(["rule", rule.name])
            func itemLocation(_ key: String, _ offset: Int) -> SourceLocation {
                let value = table?.entry(key)?.value
                if case .array(let items)? = value?.kind, offset < items.count { return items[offset].location }
                return value?.location ?? rule.location
            }
            for (offset, name) in rule.mailboxes.enumerated() where !inbound.contains(name) {
                let what = configuration.outbound(name) != nil ? "\"\(name)\" is an outbound mailbox; rules apply to inbound ones"
                    : "\"\(name)\" names no inbound mailbox" + NearestName.hint(name, among: inbound, quote: { "\"\($0)\"" })
                diagnostics.error(itemLocation("mailboxes", offset), "`mailboxes`: " + what)
            }
            for (offset, name) in rule.contracts.enumerated() where !contracts.contains(name) {
                diagnostics.error(itemLocation("contracts", offset), "`contracts`: \"\(name)\" names no contract" + NearestName.hint(name, among: contracts, quote: { "\"\($0)\"" }))
            }
            if let name = rule.setContract, !contracts.contains(name) {
                diagnostics.error(table?.entry("set_contract")?.value.location ?? rule.location,
                                  "`set_contract`: \"\(name)\" names no contract" + NearestName.hint(name, among: contracts, quote: { "\"\($0)\"" }))
            }
        }
    }
}

/// Where character N of a string value stands in the file, counting the escapes and the
/// quote that the value's text no longer shows (`"a\\d"` is `a\d`: its third character is
/// the file's fifth column after the quote's). Falls back to counting from the quote when the
/// file cannot be read again.
enum StringColumn {
    static func location(ofCharacter offset: Int, inStringAt location: SourceLocation) -> SourceLocation {
        var result = location
        result.column += 1 + offset
        guard case .success(let bytes) = RegularFile.read(location.file, limit: ConfigLimits.maximumFileSize) else { return result }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard location.line >= 1, location.line <= lines.count else { return result }
        let scalars = Array(lines[location.line - 1].unicodeScalars)
        var index = location.column - 1
        guard index >= 0, index < scalars.count else { return result }
        let quote = scalars[index]
        guard quote == "\"" || quote == "'" else { return result }
        index += 1
        var remaining = offset
        while remaining > 0, index < scalars.count, scalars[index] != quote {
            if quote == "\"", scalars[index] == "\\", index + 1 < scalars.count {
                switch scalars[index + 1] {
                case "u": index += 6
                case "U": index += 10
                default: index += 2
                }
            } else {
                index += 1
            }
            remaining -= 1
        }
        result.column = index + 1
        return result
    }
}
