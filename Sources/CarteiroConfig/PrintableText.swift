/// Text that came from a server (an OAuth error's description, a device code, an IMAP or SMTP
/// reply), made safe to show on one line of a terminal, of `carteiro status`, or of a log: a
/// line break in it would forge a line of its own (`<2>carteiro: FORGED …`), an escape
/// sequence would clear the screen, move the cursor or set the window's title, and a
/// bidirectional override would show text in another order than it is. Each such character is
/// written as a visible escape (`\n`, `\u{1B}`); everything else is kept as it is.
package enum PrintableText {
    /// `text` with every control character (C0, DEL, C1), line and paragraph separator and
    /// bidirectional control escaped, cut at `limit` characters (with "…").
    package static func escaped(_ text: String, limit: Int = 2000) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                result += "…"
                break
            }
            count += 1
            if needsEscape(scalar) {
                switch scalar {
                case "\n": result += "\\n"
                case "\r": result += "\\r"
                case "\t": result += "\\t"
                default: result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
                }
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Whether `text` would be shown as it is.
    package static func isPrintable(_ text: String) -> Bool {
        !text.unicodeScalars.contains(where: needsEscape)
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        // Line and paragraph separators; bidirectional embeddings, overrides and isolates; marks.
        case 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }
}
