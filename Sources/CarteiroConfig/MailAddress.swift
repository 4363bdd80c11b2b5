/// An address with an optional display name: `ACME Service Desk <support@acme.example>`.
public struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    public var name: String?
    public var address: String

    public init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }

    /// Parses `addr`, `<addr>`, `Name <addr>` or `"Name, Quoted" <addr>`. nil if malformed.
    public init?(parsing text: String) {
        let trimmed = text.trimmingSpaces
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            let inner = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            var display = String(trimmed[..<open]).trimmingSpaces
            if display.hasPrefix("\"") && display.hasSuffix("\"") && display.count >= 2 {
                display = String(display.dropFirst().dropLast())
            }
            guard Self.isValidAddress(inner), !display.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" }) else { return nil }
            self.init(name: display.isEmpty ? nil : display, address: inner)
        } else {
            guard Self.isValidAddress(trimmed) else { return nil }
            self.init(name: nil, address: trimmed)
        }
    }

    /// A pragmatic check of an addr-spec: one `@`, a local part and a dotted domain, no spaces,
    /// no control characters (which would allow header injection), no angle brackets.
    public static func isValidAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last,
              !local.isEmpty, local.utf8.count <= 64, !domain.isEmpty, domain.utf8.count <= 255 else { return false }
        let forbidden: (Character) -> Bool = { c in
            c.isWhitespace || c == "<" || c == ">" || c == "," || c == ";" || c == "\"" || c == "(" || c == ")"
                || c.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        }
        guard !local.contains(where: forbidden), !domain.contains(where: forbidden) else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") && !$0.contains("_") }
    }

    public var description: String {
        guard let name, !name.isEmpty else { return address }
        return "\(name) <\(address)>"
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
