import CarteiroMail

/// Recognises mail written by machines, so the desk never answers it (RFC 3834 §5 and the
/// de-facto headers of Exchange, Postfix, list servers and vacation programs).
public enum AutomaticMail {
    /// The flags of SPEC §3: auto-replied, auto-generated, bulk, loop.
    public static func flags(_ header: HeaderBlock, from: ParsedAddress?, ownAddresses: Set<String>) -> [String] {
        var flags: [String] = []
        if let value = header.text("auto-submitted")?.lowercased().trimmingCharacters(in: " "),
           !value.isEmpty, !value.hasPrefix("no") {
            flags.append(value.hasPrefix("auto-replied") ? "auto-replied" : "auto-generated")
        }
        if header.contains("x-autoreply") || header.contains("x-autorespond") || header.contains("x-autoreply-from") {
            if !flags.contains("auto-replied") { flags.append("auto-replied") }
        }
        if let precedence = header.text("precedence")?.lowercased().trimmingCharacters(in: " "),
           ["bulk", "junk", "list"].contains(precedence) {
            flags.append("bulk")
        }
        if let address = from?.address.lowercased(), ownAddresses.contains(address) {
            flags.append("loop")
        }
        return flags
    }
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        var s = Substring(self)
        while s.first == character || s.first == "\t" { s = s.dropFirst() }
        while s.last == character || s.last == "\t" || s.last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
