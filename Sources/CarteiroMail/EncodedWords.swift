/// RFC 2047 encoded words (`=?ISO-8859-1?Q?Jo=E3o?=`) in unstructured header text, with
/// RFC 6532 raw UTF-8 accepted as it is.
package enum EncodedWords {
    /// Longest charset name in an encoded word ("ISO-2022-JP-2*pt-BR" and the like are short).
    static let maximumCharsetLength = 64

    /// Decodes a header value. Whitespace between two adjacent encoded words is dropped
    /// (RFC 2047 §6.2); undecodable words are kept as written.
    ///
    /// Linear in the length of `raw`, whatever it holds: a subject of a million unclosed
    /// `=?x?q?` openings must not cost a scan to the end for each of them.
    package static func decode(_ raw: [UInt8]) -> String {
        UTF8Validation.withoutNUL(decodeWords(raw))
    }

    static func decodeWords(_ raw: [UInt8]) -> String {
        guard raw.contains(UInt8(ascii: "=")) else { return plain(raw) }
        var out = ""
        var i = 0
        var lastWasEncoded = false
        var literalStart = 0
        var scanner = Scanner(raw)
        func appendLiteral(_ bytes: ArraySlice<UInt8>) {
            out += plain(Array(bytes))
        }
        while i < raw.count {
            if raw[i] == UInt8(ascii: "="), i + 1 < raw.count, raw[i + 1] == UInt8(ascii: "?"), let (word, next) = encodedWord(raw, at: i, scanner: &scanner) {
                let between = raw[literalStart..<i]
                if lastWasEncoded && between.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 || $0 == 10 }) {
                    // Drop the whitespace between two encoded words.
                } else {
                    appendLiteral(between)
                }
                out += word
                i = next
                literalStart = i
                lastWasEncoded = true
                continue
            }
            i += 1
        }
        appendLiteral(raw[literalStart..<raw.count])
        return out
    }

    /// Where the next `?=` and the next space are, remembered: the openings of encoded words
    /// are tried left to right, so each search resumes where the last one found its answer.
    struct Scanner {
        let raw: [UInt8]
        private var close = -1
        private var space = -1
        init(_ raw: [UInt8]) { self.raw = raw }

        /// The index of the first `?=` at or after `from` (raw.count when there is none).
        mutating func close(from: Int) -> Int {
            if close >= from { return close }
            var j = max(from, 0)
            while j + 1 < raw.count, !(raw[j] == UInt8(ascii: "?") && raw[j + 1] == UInt8(ascii: "=")) { j += 1 }
            close = j + 1 < raw.count ? j : raw.count
            return close
        }

        /// The index of the first space at or after `from` (raw.count when there is none).
        mutating func space(from: Int) -> Int {
            if space >= from { return space }
            var j = max(from, 0)
            while j < raw.count, raw[j] != 32 { j += 1 }
            space = j
            return space
        }
    }

    /// `=?charset?B|Q?text?=` starting at `start`: the decoded text and the index after it.
    static func encodedWord(_ raw: [UInt8], at start: Int, scanner: inout Scanner) -> (String, Int)? {
        var i = start + 2
        let charsetStart = i
        while i < raw.count, raw[i] != UInt8(ascii: "?") {
            if raw[i] <= 32 || i - charsetStart >= maximumCharsetLength { return nil }
            i += 1
        }
        guard i + 2 < raw.count, raw[i + 2] == UInt8(ascii: "?") else { return nil }
        var charset = String(decoding: raw[charsetStart..<i], as: UTF8.self)
        // RFC 2231 §5: a language after '*' ("UTF-8*pt").
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        let encoding = raw[i + 1] | 0x20
        guard encoding == UInt8(ascii: "b") || encoding == UInt8(ascii: "q") else { return nil }
        let textStart = i + 3
        let j = scanner.close(from: textStart)
        guard j + 1 < raw.count else { return nil }
        if encoding == UInt8(ascii: "b") && scanner.space(from: textStart) < j { return nil }
        let payload = raw[textStart..<j]
        let bytes = encoding == UInt8(ascii: "b") ? TransferEncoding.base64(payload) : TransferEncoding.quotedPrintable(Array(payload), header: true)
        let text = Charset.decodeLeniently(bytes, charset: charset).text
        return (text, j + 2)
    }

    /// Raw header bytes without encoded words: UTF-8 when valid (RFC 6532), else Windows-1252.
    static func plain(_ raw: [UInt8]) -> String {
        if let text = String(validating: raw, as: UTF8.self) { return text }
        return Charset.windows1252(raw)
    }
}
