/// A readable plain-text rendering of an HTML body, for messages that have only HTML:
/// tags dropped, block elements as line breaks, entities decoded, scripts and styles removed.
package enum HTMLText {
    static let blockTags: Set<String> = ["p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr", "ul", "ol", "title"]
    static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "copy": "©", "reg": "®",
        "aacute": "á", "eacute": "é", "iacute": "í", "oacute": "ó", "uacute": "ú", "atilde": "ã", "otilde": "õ",
        "ccedil": "ç", "acirc": "â", "ecirc": "ê", "ocirc": "ô", "agrave": "à", "Aacute": "Á", "Eacute": "É",
        "Iacute": "Í", "Oacute": "Ó", "Uacute": "Ú", "Atilde": "Ã", "Otilde": "Õ", "Ccedil": "Ç", "Acirc": "Â",
        "Ecirc": "Ê", "Ocirc": "Ô", "Agrave": "À", "uuml": "ü", "ndash": "–", "mdash": "—", "hellip": "…",
        "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "euro": "€", "ordf": "ª", "ordm": "º",
    ]

    package static func render(_ html: String) -> String {
        var out = ""
        var i = html.startIndex
        var skipUntil: String?
        while i < html.endIndex {
            let c = html[i]
            if c == "<" {
                guard let close = html[i...].firstIndex(of: ">") else { break }
                let inside = html[html.index(after: i)..<close]
                let isEnd = inside.hasPrefix("/")
                let name = inside.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber }.lowercased()
                if let skip = skipUntil {
                    if isEnd && name == skip { skipUntil = nil }
                } else if !isEnd && (name == "script" || name == "style" || name == "head") {
                    skipUntil = name
                } else if blockTags.contains(name) {
                    if !out.hasSuffix("\n") { out += "\n" }
                    if name == "p" && isEnd { out += "\n" }
                }
                i = html.index(after: close)
                continue
            }
            if skipUntil != nil { i = html.index(after: i); continue }
            if c == "&", let semicolon = html[i...].prefix(12).firstIndex(of: ";") {
                let name = String(html[html.index(after: i)..<semicolon])
                if let decoded = decodeEntity(name) {
                    out += decoded
                    i = html.index(after: semicolon)
                    continue
                }
            }
            if c.isWhitespace {
                if !(out.last?.isWhitespace ?? true) { out += " " }
            } else {
                out.append(c)
            }
            i = html.index(after: i)
        }
        // Tidy: no blank runs longer than one empty line, no trailing spaces.
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(" ") }
        var result: [String] = []
        for line in lines {
            if line.isEmpty && (result.last?.isEmpty ?? true) { continue }
            result.append(line)
        }
        while result.last?.isEmpty == true { result.removeLast() }
        return result.joined(separator: "\n")
    }

    static func decodeEntity(_ name: String) -> String? {
        if let named = entities[name] { return named }
        if name.hasPrefix("#x") || name.hasPrefix("#X"), let value = UInt32(name.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(value) {
            return String(scalar)
        }
        if name.hasPrefix("#"), let value = UInt32(name.dropFirst()), let scalar = Unicode.Scalar(value) {
            return String(scalar)
        }
        return nil
    }
}
