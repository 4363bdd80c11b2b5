/// Small readers for the IMAP response lines a status check needs (RFC 3501 §7).
public enum IMAPResponseText {
    /// `* 12 EXISTS` → 12.
    public static func count(_ line: String, keyword: String) -> Int? {
        let words = line.split(separator: " ")
        guard words.count == 3, words[0] == "*", words[2].uppercased() == keyword else { return nil }
        return Int(words[1])
    }

    /// `* OK [UIDVALIDITY 1700000000] UIDs valid` → ("UIDVALIDITY", "1700000000").
    public static func responseCode(_ line: String) -> (name: String, argument: String)? {
        guard let open = line.firstIndex(of: "["), let close = line[open...].firstIndex(of: "]") else { return nil }
        let inner = line[line.index(after: open)..<close]
        let parts = inner.split(separator: " ", maxSplits: 1)
        guard let name = parts.first else { return nil }
        return (name.uppercased(), parts.count > 1 ? String(parts[1]) : "")
    }

    /// `* SEARCH 3 5 9` → [3, 5, 9].
    public static func searchResults(_ line: String) -> [Int]? {
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0] == "*", words[1].uppercased() == "SEARCH" else { return nil }
        return words.dropFirst(2).compactMap { Int($0) }
    }

    /// `* LIST (\HasNoChildren) "/" "Archive"` → "Archive" (still modified UTF-7).
    public static func listedMailbox(_ line: String) -> String? {
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
