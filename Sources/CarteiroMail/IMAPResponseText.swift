/// Small readers for the IMAP response lines a status check needs (RFC 3501 §7).
package enum IMAPResponseText {
    /// `* 12 EXISTS` → 12.
    package static func count(_ line: String, keyword: String) -> Int? {
        let words = line.split(separator: " ")
        guard words.count == 3, words[0] == "*", words[2].uppercased() == keyword else { return nil }
        return Int(words[1])
    }

    /// `* OK [UIDVALIDITY 1700000000] UIDs valid` → ("UIDVALIDITY", "1700000000").
    package static func responseCode(_ line: String) -> (name: String, argument: String)? {
        guard let open = line.firstIndex(of: "["), let close = line[open...].firstIndex(of: "]") else { return nil }
        let inner = line[line.index(after: open)..<close]
        let parts = inner.split(separator: " ", maxSplits: 1)
        guard let name = parts.first else { return nil }
        return (name.uppercased(), parts.count > 1 ? String(parts[1]) : "")
    }

    /// `* SEARCH 3 5 9` → [3, 5, 9]. A word that is not a UID (zero, negative, beyond 32 bits,
    /// not a number) makes the whole line `.invalid`: a server that lies about one UID is not
    /// believed about the others.
    package static func searchResults(_ line: String) -> SearchResult? {
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0] == "*", words[1].uppercased() == "SEARCH" else { return nil }
        var uids: [UInt32] = []
        for word in words.dropFirst(2) {
            // RFC 4731/ESEARCH-style modifiers such as "(MODSEQ 12)" are not UIDs but harmless.
            if word.hasPrefix("(") || word.hasSuffix(")") { continue }
            guard let uid = UInt32(word), uid > 0 else { return .invalid(String(word.prefix(40))) }
            uids.append(uid)
        }
        return .uids(uids)
    }

    package enum SearchResult: Equatable, Sendable {
        case uids([UInt32])
        case invalid(String)
    }

    /// `* LIST (\HasNoChildren) "/" "Archive"` → "Archive" (still modified UTF-7).
    package static func listedMailbox(_ line: String) -> String? {
        guard line.hasPrefix("* LIST ") else { return nil }
        guard let close = line.firstIndex(of: ")") else { return nil }
        var rest = line[line.index(after: close)...].drop { $0 == " " }
        // The delimiter: a quoted character or NIL.
        if rest.hasPrefix("NIL") { rest = rest.dropFirst(3) } else if rest.hasPrefix("\"") {
            rest = rest.dropFirst()
            if rest.first == "\\" { rest = rest.dropFirst() }
            rest = rest.dropFirst(2)
        }
        rest = rest.drop { $0 == " " }
        if rest.hasPrefix("\"") && rest.hasSuffix("\"") && rest.count >= 2 {
            return String(rest.dropFirst().dropLast()).replacingEscapes()
        }
        return rest.isEmpty ? nil : String(rest)
    }
}

extension String {
    func replacingEscapes() -> String {
        var out = ""
        var escaped = false
        for c in self {
            if escaped { out.append(c); escaped = false } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        return out
    }
}
