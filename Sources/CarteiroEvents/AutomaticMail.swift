import CarteiroMail

/// Recognises mail written by machines, so the desk never answers it (RFC 3834 §5 and the
/// de-facto headers of Exchange, Postfix, list servers and vacation programs).
package enum AutomaticMail {
    /// The flags of an event: auto-replied, auto-generated, bulk, loop.
    package static func flags(_ header: HeaderBlock, from: ParsedAddress?, ownAddresses: Set<String>) -> [String] {
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
        } else if header.contains("list-id") || header.contains("mailing-list") {
            // A list's mail without Precedence (ezmlm's Mailing-List:, RFC 2919's List-Id:).
            flags.append("bulk")
        }
        if let address = from?.address.lowercased(), ownAddresses.contains(address) {
            flags.append("loop")
        }
        if isSpam(header) { flags.append("spam") }
        return flags
    }

    /// What a spam filter upstream said: SpamAssassin's X-Spam-Flag/X-Spam-Status, rspamd's
    /// X-Spamd-Result/X-Rspamd-Action, or a plain X-Spam: yes.
    static func isSpam(_ header: HeaderBlock) -> Bool {
        func value(_ name: String) -> String? { header.text(name)?.lowercased().trimmingCharacters(in: " ") }
        if value("x-spam-flag")?.hasPrefix("yes") == true { return true }
        if value("x-spam-status")?.hasPrefix("yes") == true { return true }
        if value("x-spam")?.hasPrefix("yes") == true { return true }
        if let result = value("x-spamd-result"), result.hasPrefix("default: true") { return true }
        if let action = value("x-rspamd-action"), ["reject", "add header", "rewrite subject"].contains(action) { return true }
        return false
    }

    /// A bounce without a delivery-status part: from the null reverse path (Return-Path: <>)
    /// and a mailer daemon or postmaster.
    static func looksLikeBounce(_ header: HeaderBlock, from: ParsedAddress?) -> Bool {
        guard let path = header.text("return-path")?.trimmingCharacters(in: " "), path == "<>" else { return false }
        let local = from?.address.lowercased().split(separator: "@").first.map(String.init) ?? ""
        return local == "mailer-daemon" || local == "postmaster"
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
