/// An address as a message states it.
package struct ParsedAddress: Sendable, Hashable {
    package var name: String?
    package var address: String

    package init(name: String?, address: String) {
        self.name = name
        self.address = address
    }
}

/// RFC 5322 address lists (§3.4): display names quoted or not, RFC 2047 words in names,
/// angle addresses, groups (`Undisclosed recipients:;`), comments (`joao@x (João)`), and the
/// obsolete forms found in the wild. Never fails: what cannot be read is skipped.
package enum AddressList {
    package static func parse(_ raw: [UInt8]) -> [ParsedAddress] {
        var result: [ParsedAddress] = []
        for chunk in splitTopLevel(raw) {
            if let address = parseOne(chunk) { result.append(address) }
        }
        return result
    }

    /// Splits at commas and group punctuation outside quotes, comments and angle brackets.
    static func splitTopLevel(_ raw: [UInt8]) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        var inQuote = false, commentDepth = 0, inAngle = false
        while i < raw.count {
            let c = raw[i]
            if inQuote {
                current.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < raw.count { current.append(raw[i + 1]); i += 2; continue }
                if c == UInt8(ascii: "\"") { inQuote = false }
            } else if commentDepth > 0 {
                current.append(c)
                if c == UInt8(ascii: "\\"), i + 1 < raw.count { current.append(raw[i + 1]); i += 2; continue }
                if c == UInt8(ascii: "(") { commentDepth += 1 }
                if c == UInt8(ascii: ")") { commentDepth -= 1 }
            } else if c == UInt8(ascii: "\"") {
                inQuote = true; current.append(c)
            } else if c == UInt8(ascii: "(") {
                commentDepth = 1; current.append(c)
            } else if c == UInt8(ascii: "<") {
                inAngle = true; current.append(c)
            } else if c == UInt8(ascii: ">") {
                inAngle = false; current.append(c)
            } else if !inAngle && (c == UInt8(ascii: ",") || c == UInt8(ascii: ";")) {
                chunks.append(current); current = []
            } else if !inAngle && c == UInt8(ascii: ":") {
                // A group's display name ends here: drop it, keep its members.
                current = []
            } else {
                current.append(c)
            }
            i += 1
        }
        chunks.append(current)
        return chunks
    }

    static func parseOne(_ chunk: [UInt8]) -> ParsedAddress? {
        var comment: [UInt8] = []
        var withoutComments: [UInt8] = []
        var i = 0, depth = 0, inQuote = false
        while i < chunk.count {
            let c = chunk[i]
            if depth > 0 {
                if c == UInt8(ascii: "\\"), i + 1 < chunk.count { comment.append(chunk[i + 1]); i += 2; continue }
                if c == UInt8(ascii: "(") { depth += 1 } else if c == UInt8(ascii: ")") { depth -= 1; if depth == 0 { i += 1; continue } }
                if depth > 0 { comment.append(c) }
            } else if c == UInt8(ascii: "(") && !inQuote {
                depth = 1
            } else {
                if c == UInt8(ascii: "\"") { inQuote.toggle() }
                withoutComments.append(c)
            }
            i += 1
        }
        if let open = withoutComments.lastIndex(of: UInt8(ascii: "<")) {
            let close = withoutComments[open...].firstIndex(of: UInt8(ascii: ">")) ?? withoutComments.endIndex
            var address = Array(withoutComments[(open + 1)..<close])
            // Obsolete route: <@relay.example:user@host>
            if address.first == UInt8(ascii: "@"), let colon = address.firstIndex(of: UInt8(ascii: ":")) {
                address = Array(address[(colon + 1)...])
            }
            let addressText = clean(address)
            guard !addressText.isEmpty else { return nil }
            let name = displayName(Array(withoutComments[..<open]))
            return ParsedAddress(name: name ?? displayName(comment), address: addressText)
        }
        let addressText = clean(withoutComments)
        guard !addressText.isEmpty else { return nil }
        return ParsedAddress(name: displayName(comment), address: addressText)
    }

    static func clean(_ bytes: [UInt8]) -> String {
        let text = EncodedWords.plain(bytes.filter { $0 != 32 && $0 != 9 && $0 != 13 && $0 != 10 && $0 != UInt8(ascii: "\"") })
        return text
    }

    /// A display name: quotes removed, escapes resolved, RFC 2047 words decoded, spaces folded.
    static func displayName(_ bytes: [UInt8]) -> String? {
        var unquoted: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\"), i + 1 < bytes.count { unquoted.append(bytes[i + 1]); i += 2; continue }
            if c != UInt8(ascii: "\"") { unquoted.append(c == 9 || c == 13 || c == 10 ? 32 : c) }
            i += 1
        }
        let decoded = EncodedWords.decode(unquoted)
        // Most names have single spaces between words and none around: kept as they are.
        var previous: UInt8 = 32, needsFolding = false
        for byte in decoded.utf8 {
            if byte == 32 && previous == 32 { needsFolding = true; break }
            previous = byte
        }
        guard needsFolding || previous == 32 else { return decoded }
        let folded = decoded.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return folded.isEmpty ? nil : folded
    }
}
