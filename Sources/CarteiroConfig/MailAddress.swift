/// An address with an optional display name: `ACME Service Desk <support@acme.example>`.
package struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    package var name: String?
    package var address: String

    package init(name: String? = nil, address: String) {
        self.name = name
        self.address = address
    }

    /// Parses `addr`, `<addr>`, `Name <addr>` or `"Name, Quoted" <addr>`. nil if malformed.
    package init?(parsing text: String) {
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

    /// An addr-spec Carteiro can write the same way in the header and in the envelope: a
    /// dot-atom local part (RFC 5322 §3.2.3's atext, or UTF-8 as RFC 6532 allows) and a dotted
    /// domain. Quoted local parts and address literals (`"a:b"@x`, `a@[127.0.0.1]`) are refused
    /// rather than written inconsistently; no spaces, no control characters (header injection).
    package static func isValidAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last,
              !local.isEmpty, local.utf8.count <= 64, !domain.isEmpty, domain.utf8.count <= 255 else { return false }
        let atext = Set("!#$%&'*+-/=?^_`{|}~".unicodeScalars)
        let localOK = local.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { atom in
            !atom.isEmpty && atom.unicodeScalars.allSatisfy { scalar in
                scalar.value >= 0x80 ? !isSpaceOrControl(scalar) : (scalar.properties.isASCIIHexDigit || scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || atext.contains(scalar))
            }
        }
        guard localOK else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { scalar in
                    scalar.value >= 0x80 ? !isSpaceOrControl(scalar) : (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-")
                }
        }
    }

    static func isSpaceOrControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
            || scalar == "\u{2028}" || scalar == "\u{2029}"
    }

    /// Whether the address needs SMTPUTF8 (RFC 6531) to be sent: any byte beyond ASCII.
    package var needsSMTPUTF8: Bool { !address.utf8.allSatisfy { $0 < 0x80 } }

    package var description: String {
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
