/// A MIME header with parameters: `Content-Type: text/plain; charset="iso-8859-1"` or
/// `Content-Disposition: attachment; filename*=UTF-8''rel%C3%A1torio.pdf` (RFC 2045, RFC 2231).
package struct MIMEHeaderValue: Sendable, Hashable {
    /// Lower-cased: `text/plain`, `attachment`.
    package var value: String
    /// Parameter names lower-cased; values decoded (RFC 2231 continuations and charsets, RFC 2047).
    package var parameters: [String: String]

    package init(value: String, parameters: [String: String] = [:]) {
        self.value = value
        self.parameters = parameters
    }

    package static func parse(_ raw: [UInt8]) -> MIMEHeaderValue {
        var i = 0
        func skipSpaceAndComments() {
            while i < raw.count {
                if raw[i] == 32 || raw[i] == 9 || raw[i] == 13 || raw[i] == 10 { i += 1; continue }
                if raw[i] == UInt8(ascii: "(") {
                    var depth = 0
                    while i < raw.count {
                        if raw[i] == UInt8(ascii: "\\") { i += 2; continue }
                        if raw[i] == UInt8(ascii: "(") { depth += 1 }
                        if raw[i] == UInt8(ascii: ")") { depth -= 1; if depth == 0 { i += 1; break } }
                        i += 1
                    }
                    continue
                }
                break
            }
        }
        func token() -> String {
            let start = i
            while i < raw.count, raw[i] != UInt8(ascii: ";"), raw[i] != UInt8(ascii: "="), raw[i] > 32 { i += 1 }
            return String(decoding: raw[start..<i], as: UTF8.self)
        }
        func valueText() -> [UInt8] {
            if i < raw.count, raw[i] == UInt8(ascii: "\"") {
                i += 1
                var out: [UInt8] = []
                while i < raw.count, raw[i] != UInt8(ascii: "\"") {
                    // A backslash quotes the next character only when that is one that needs it
                    // (a quote, a backslash): Netscape and Outlook write Windows paths unquoted,
                    // `filename="C:\TEMP\nsmail.png"`, and the name must keep its backslashes.
                    if raw[i] == UInt8(ascii: "\\"), i + 1 < raw.count, raw[i + 1] == UInt8(ascii: "\"") || raw[i + 1] == UInt8(ascii: "\\") { i += 1 }
                    if raw[i] != 13 && raw[i] != 10 { out.append(raw[i]) }
                    i += 1
                }
                i += 1
                return out
            }
            let start = i
            while i < raw.count, raw[i] != UInt8(ascii: ";"), raw[i] != 32, raw[i] != 9 { i += 1 }
            return Array(raw[start..<i])
        }

        skipSpaceAndComments()
        let main = token().lowercasedMailToken
        var parameters: [String: String] = [:]
        var extended: [String: [(index: Int, encoded: Bool, value: [UInt8])]] = [:]
        while i < raw.count {
            // Parameters follow a `;`; one that follows without it (`multipart/mixed
            // boundary="x"`, as some mailers write) is read too, or the part would be lost.
            skipSpaceAndComments()
            guard i < raw.count else { break }
            if raw[i] == UInt8(ascii: ";") {
                i += 1
                continue
            }
            let start = i
            let name = token().lowercasedMailToken
            skipSpaceAndComments()
            guard i < raw.count, raw[i] == UInt8(ascii: "="), !name.isEmpty else {
                // Not a parameter: skipped up to the next `;` (at least a byte, so this ends).
                if i == start { i += 1 }
                while i < raw.count, raw[i] != UInt8(ascii: ";") { i += 1 }
                continue
            }
            i += 1
            skipSpaceAndComments()
            let value = valueText()
            // RFC 2231: name*=charset'lang'pct-encoded, name*0=…, name*1*=…
            if let star = name.firstIndex(of: "*") {
                let base = String(name[..<star])
                let rest = name[name.index(after: star)...]
                let encoded = rest.hasSuffix("*") || rest.isEmpty
                let index = Int(rest.filter { $0 != "*" }) ?? 0
                extended[base, default: []].append((index, encoded, value))
            } else {
                parameters[name] = EncodedWords.decode(value)
            }
        }
        // RFC 2231's forms win over a plain parameter of the same name, wherever it stands.
        for (name, pieces) in extended {
            let sorted = pieces.sorted { $0.index < $1.index }
            var charset: String?
            var bytes: [UInt8] = []
            for (offset, piece) in sorted.enumerated() {
                var value = piece.value
                if piece.encoded {
                    if offset == 0 {
                        // charset'language'value
                        let parts = value.split(separator: UInt8(ascii: "'"), maxSplits: 2, omittingEmptySubsequences: false)
                        if parts.count == 3 {
                            charset = String(decoding: parts[0], as: UTF8.self)
                            value = Array(parts[2])
                        }
                    }
                    bytes += percentDecode(value)
                } else {
                    bytes += value
                }
            }
            parameters[name] = Charset.decodeLeniently(bytes, charset: charset.flatMap { $0.isEmpty ? nil : $0 }).text
        }
        return MIMEHeaderValue(value: main, parameters: parameters)
    }

    static func percentDecode(_ value: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < value.count {
            if value[i] == UInt8(ascii: "%"), i + 2 < value.count, let h = TransferEncoding.hexValue(value[i + 1]), let l = TransferEncoding.hexValue(value[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(value[i])
                i += 1
            }
        }
        return out
    }
}
