/// A value after the schema has read it.
package enum TypedValue: Sendable {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case duration(Duration)
    case size(Int)
    case names([String])
    case afterFetch(AfterFetch)
    case address(MailAddress)
}

extension ConfigType {
    var isTemplate: Bool { if case .template = self { true } else { false } }

    /// Reads `value` as this type, or says why it cannot.
    func read(_ value: ConfigValue) -> Result<TypedValue, ReadError> {
        func fail(_ detail: String? = nil) -> Result<TypedValue, ReadError> {
            .failure(ReadError(detail: detail ?? "expected \(expectation), found \(value.describedForError)"))
        }
        if case .string(let text) = value.kind, !isTemplate, text.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) {
            return fail("this value cannot span lines (a line break here would end up inside a header or a protocol command)")
        }
        switch self {
        case .string, .secret, .path, .name, .hostname, .url, .template:
            guard case .string(let text) = value.kind else { return fail() }
            if case .template = self { return .success(.string(text)) }
            if text.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) {
                return fail("this value cannot span lines (a line break here would end up inside a header or a protocol command)")
            }
            switch self {
            case .path, .name, .secret:
                if text.isEmpty { return fail("expected \(expectation), found an empty string") }
            case .hostname:
                if text.isEmpty { return fail("expected \(expectation), found an empty string") }
                if text.contains("://") { return fail("expected a host name, found a URL; write only the host, such as \"mail.acme.example\", and set the port with `port`") }
                if text.contains(where: { $0 == " " || $0 == "/" || $0 == "\t" }) { return fail("`\(text)` is not a host name or an IP address") }
            case .url:
                if !(text.hasPrefix("http://") || text.hasPrefix("https://")) || text.count < 10 { return fail("expected an http:// or https:// URL, found \"\(text)\"") }
            default:
                break
            }
            return .success(.string(text))
        case .names, .strings:
            guard case .array(let items) = value.kind else {
                let what: String = if case .strings = self { "strings" } else { "names" }
                if case .string(let single) = value.kind { return fail("expected an array of \(what), found a string; write [\"\(single)\"]") }
                return fail()
            }
            var names: [String] = []
            for item in items {
                guard case .string(let name) = item.kind, !name.isEmpty else {
                    return .failure(ReadError(detail: "expected names (strings), found \(item.describedForError)", location: item.location))
                }
                names.append(name)
            }
            return .success(.names(names))
        case .integer(let range):
            guard case .integer(let number) = value.kind else {
                if case .string(let text) = value.kind, Int(text) != nil { return fail("expected \(expectation), found a string; write it without quotes: \(text)") }
                return fail()
            }
            guard range.contains(number) else { return fail("\(number) is out of range: expected \(expectation)") }
            return .success(.integer(number))
        case .boolean:
            guard case .boolean(let flag) = value.kind else {
                if case .string(let text) = value.kind, text == "true" || text == "false" { return fail("expected true or false, found a string; write it without quotes: \(text)") }
                return fail()
            }
            return .success(.boolean(flag))
        case .duration(let minimumSeconds):
            guard case .string(let text) = value.kind else {
                if case .integer(let n) = value.kind { return fail("expected \(expectation), found the integer \(n); say the unit: \"\(n)s\"") }
                return fail()
            }
            guard let duration = ConfigDuration.parse(text) else { return fail("\"\(text)\" is not a duration: expected \(expectation)") }
            if duration < .seconds(minimumSeconds) { return fail("\"\(text)\" is too short: at least \(minimumSeconds)s") }
            return .success(.duration(duration))
        case .size:
            switch value.kind {
            case .integer(let bytes) where bytes > 0:
                guard bytes <= ConfigLimits.maximumSize else { return fail("\(bytes) is too large: at most \(ConfigSize.format(ConfigLimits.maximumSize))") }
                return .success(.size(bytes))
            case .string(let text):
                guard let bytes = ConfigSize.parse(text), bytes > 0 else {
                    if ConfigSize.isTooLarge(text) { return fail("\"\(text)\" is too large: at most \(ConfigSize.format(ConfigLimits.maximumSize))") }
                    return fail("\"\(text)\" is not a size: expected \(expectation)")
                }
                guard bytes <= ConfigLimits.maximumSize else { return fail("\"\(text)\" is too large: at most \(ConfigSize.format(ConfigLimits.maximumSize))") }
                return .success(.size(bytes))
            default: return fail()
            }
        case .choice(let choices):
            guard case .string(let text) = value.kind else { return fail() }
            guard choices.contains(text) else {
                return fail("\"\(text)\" is not allowed: expected \(expectation)" + NearestName.hint(text, among: choices, quote: { "\"\($0)\"" }))
            }
            return .success(.string(text))
        case .afterFetch:
            guard case .string(let text) = value.kind else { return fail() }
            guard let action = AfterFetch(parsing: text) else {
                return fail("\"\(text)\" is not allowed: expected \(expectation)" + NearestName.hint(text, among: ["keep", "seen", "delete"], quote: { "\"\($0)\"" }))
            }
            return .success(.afterFetch(action))
        case .address, .email:
            guard case .string(let text) = value.kind else { return fail() }
            guard let address = MailAddress(parsing: text) else { return fail("\"\(text)\" is not a valid address: expected \(expectation)") }
            if case .email = self, address.name != nil { return fail("expected a bare address such as \"ana@example.com\"; the person's name goes in `name`") }
            return .success(.address(address))
        }
    }
}

struct ReadError: Error {
    var detail: String
    var location: SourceLocation?
}

extension ConfigValue {
    var describedForError: String {
        switch kind {
        case .string(let s): s.count > 40 ? "a string" : "\"\(s)\""
        case .integer(let n): "the integer \(n)"
        case .boolean(let b): "the boolean \(b)"
        case .array: "an array"
        case .invalid: "an invalid value"
        }
    }
}
