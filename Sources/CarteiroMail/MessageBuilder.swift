/// Builds an RFC 5322 message: header values RFC 2047-encoded when not ASCII, long
/// lines folded, bodies in quoted-printable (lines stay far under 998 octets), text and HTML as
/// multipart/alternative, CRLF throughout. A CR or LF inside a header value is refused: that is
/// how header injection works.
package struct MessageBuilder: Sendable {
    package struct Refusal: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package var headers: [(name: String, value: String)] = []
    package var text: String?
    package var html: String?
    /// Files sent with the message: then it is multipart/mixed, the texts its first part.
    package var attachments: [Attachment] = []

    package struct Attachment: Sendable {
        package var name: String
        package var contentType: String
        package var bytes: [UInt8]
        package init(name: String, contentType: String, bytes: [UInt8]) {
            self.name = name
            self.contentType = contentType
            self.bytes = bytes
        }
    }
    /// Makes the multipart boundary; it must not appear in the bodies (QP output never has "=_").
    package var boundary: String

    package init(boundary: String) {
        self.boundary = boundary
    }

    /// A header whose value is free text (Subject): encoded words when needed.
    package mutating func addText(_ name: String, _ value: String) throws(Refusal) {
        try Self.checkNoLineBreaks(name, value)
        headers.append((name, Self.encodeUnstructured(value, nameLength: name.count)))
    }

    /// A header that carries addresses (From, To, Cc, Reply-To): names encoded, addresses not.
    package mutating func addAddresses(_ name: String, _ addresses: [ParsedAddress]) throws(Refusal) {
        var parts: [String] = []
        for address in addresses {
            try Self.checkNoLineBreaks(name, address.address)
            guard !address.address.contains(where: { $0 == "<" || $0 == ">" || $0 == " " || $0 == "," }) else {
                throw Refusal(description: "\(name): \"\(address.address)\" is not an address")
            }
            if let display = address.name, !display.isEmpty {
                try Self.checkNoLineBreaks(name, display)
                parts.append("\(Self.encodePhrase(display)) <\(address.address)>")
            } else {
                parts.append(address.address)
            }
        }
        headers.append((name, parts.joined(separator: ", ")))
    }

    /// A header whose value is ASCII and structured (Message-ID, Date, Auto-Submitted …).
    package mutating func addRaw(_ name: String, _ value: String) throws(Refusal) {
        try Self.checkNoLineBreaks(name, value)
        guard value.utf8.allSatisfy({ $0 < 0x80 }) else { throw Refusal(description: "\(name) must be ASCII") }
        // Structured values fold only between words: one word too long for a line cannot be sent.
        if let long = value.split(separator: " ").first(where: { $0.utf8.count > Self.longestWord }) {
            throw Refusal(description: "the \(name) header holds a word of \(long.utf8.count) characters; a header line may not exceed 998")
        }
        headers.append((name, value))
    }

    /// The longest word a header may carry whole: with the field name and folding it stays
    /// under RFC 5322 §2.1.1's hard limit of 998 octets a line.
    static let longestWord = 900

    /// Whether a text must be written as encoded words: not printable ASCII, or a word too long
    /// to fold (encoded words split anywhere).
    static func needsEncodedWords(_ value: String) -> Bool {
        var word = 0
        for byte in value.utf8 {
            guard byte >= 0x20 && byte < 0x7F else { return true }
            word = byte == 32 ? 0 : word + 1
            if word > longestWord { return true }
        }
        return false
    }

    static func checkNoLineBreaks(_ name: String, _ value: String) throws(Refusal) {
        if value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\u{0}" }) {
            throw Refusal(description: "the \(name) header would contain a line break (refused: header injection)")
        }
    }

    /// The whole message, CRLF line ends.
    package func build() -> [UInt8] {
        var out: [UInt8] = []
        func line(_ text: String) { out.append(contentsOf: text.utf8); out.append(13); out.append(10) }
        for (name, value) in headers { line(Self.fold("\(name): \(value)")) }
        line("MIME-Version: 1.0")
        if !attachments.isEmpty {
            // multipart/mixed: the texts first (an alternative of their own when both), then
            // each file in base64 with its name (RFC 2231 when not ASCII).
            let mixed = boundary + "_m"
            line("Content-Type: multipart/mixed; boundary=\"\(mixed)\"")
            line("")
            line("--\(mixed)")
            appendTexts(&out)
            for attachment in attachments {
                line("--\(mixed)")
                line(Self.fold("Content-Type: \(attachment.contentType); \(Self.parameter("name", attachment.name))"))
                line("Content-Transfer-Encoding: base64")
                line(Self.fold("Content-Disposition: attachment; \(Self.parameter("filename", attachment.name))"))
                line("")
                let encoded = Array(Self.base64(attachment.bytes).utf8)
                var start = 0
                while start < encoded.count {
                    let end = min(start + 76, encoded.count)
                    out.append(contentsOf: encoded[start..<end])
                    out.append(13); out.append(10)
                    start = end
                }
            }
            line("--\(mixed)--")
            return out
        }
        appendTexts(&out)
        return out
    }

    /// The texts: text/plain, text/html, or both as multipart/alternative.
    func appendTexts(_ out: inout [UInt8]) {
        func line(_ text: String) { out.append(contentsOf: text.utf8); out.append(13); out.append(10) }
        switch (text, html) {
        case (let text?, let html?):
            line("Content-Type: multipart/alternative; boundary=\"\(boundary)\"")
            line("")
            line("--\(boundary)")
            appendPart(&out, "text/plain", text)
            line("--\(boundary)")
            appendPart(&out, "text/html", html)
            line("--\(boundary)--")
        case (nil, let html?):
            appendPart(&out, "text/html", html)
        default:
            appendPart(&out, "text/plain", text ?? "")
        }
    }

    /// `name="report.pdf"`, or RFC 2231's `name*=utf-8''relat%C3%B3rio.pdf` for what is not
    /// printable ASCII (or holds a quote or backslash).
    static func parameter(_ key: String, _ value: String) -> String {
        let plain = value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        if plain { return "\(key)=\"\(value)\"" }
        var encoded = ""
        for byte in value.utf8 {
            let unreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            if unreserved { encoded.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true) }
        }
        return "\(key)*=utf-8''\(encoded)"
    }

    func appendPart(_ out: inout [UInt8], _ type: String, _ body: String) {
        out.append(contentsOf: "Content-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8)
        out.append(contentsOf: Self.quotedPrintable(body))
        out.append(contentsOf: "\r\n".utf8)
    }

    // MARK: - Encodings

    /// RFC 2045 §6.7: lines of at most 76 characters, soft breaks with "=", line ends of the
    /// text become CRLF, trailing blanks encoded.
    package static func quotedPrintable(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { bytes -> [UInt8] in
            let count = bytes.count
            // At most 3 bytes per input byte, plus a soft break ("=\r\n") every 25 of those.
            let capacity = count * 3 + (count * 3 / 25 + 1) * 3 + 2
            return [UInt8](unsafeUninitializedCapacity: capacity) { out, produced in
                let hex: StaticString = "0123456789ABCDEF"
                let digits = hex.utf8Start
                var n = 0
                var lineLength = 0
                var i = 0
                while i < count {
                    let byte = bytes[i]
                    // CRLF, LF and a lone CR are all one line end.
                    if byte == 13 || byte == 10 {
                        if byte == 13, i + 1 < count, bytes[i + 1] == 10 { i += 1 }
                        out[n] = 13; out[n + 1] = 10; n += 2
                        lineLength = 0
                        i += 1
                        continue
                    }
                    let nextIsLineEnd = i + 1 == count || bytes[i + 1] == 13 || bytes[i + 1] == 10
                    let needsEncoding = byte == UInt8(ascii: "=") || byte >= 0x7F || (byte < 0x20 && byte != 9)
                        || ((byte == 32 || byte == 9) && nextIsLineEnd)
                        // A line starting with "." is safe through any MTA when encoded.
                        || (lineLength == 0 && byte == UInt8(ascii: "."))
                    let width = needsEncoding ? 3 : 1
                    if lineLength + width > 75 {
                        out[n] = UInt8(ascii: "="); out[n + 1] = 13; out[n + 2] = 10; n += 3
                        lineLength = 0
                    }
                    if needsEncoding {
                        out[n] = UInt8(ascii: "=")
                        out[n + 1] = digits[Int(byte >> 4)]
                        out[n + 2] = digits[Int(byte & 0xF)]
                        n += 3
                    } else {
                        out[n] = byte
                        n += 1
                    }
                    lineLength += width
                    i += 1
                }
                produced = n
            }
        }
    }

    /// Free text: as it is when printable ASCII, else RFC 2047 B-encoded UTF-8 words, each
    /// under 75 characters and never splitting a character.
    package static func encodeUnstructured(_ value: String, nameLength: Int = 0) -> String {
        needsEncodedWords(value) ? encodedWords(value) : value
    }

    /// A display name: plain, quoted when it holds specials, or encoded words when not ASCII.
    static func encodePhrase(_ name: String) -> String {
        if needsEncodedWords(name) { return encodedWords(name) }
        let specials = "()<>[]:;@\\,.\""
        if name.contains(where: { specials.contains($0) }) {
            return "\"" + name.replacingOccurrences("\\", with: "\\\\").replacingOccurrences("\"", with: "\\\"") + "\""
        }
        return name
    }

    static func encodedWords(_ value: String) -> String {
        // 45 bytes of UTF-8 make 60 base64 characters: "=?UTF-8?B?" + 60 + "?=" = 72.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in value {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?" + base64(chunk) + "?=")
                chunk.removeAll()
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + base64(chunk) + "?=") }
        return words.joined(separator: " ")
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 3) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 15) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Folds a header line at spaces so that lines stay under 78 characters where possible
    /// (RFC 5322 §2.1.1); a word longer than that stays whole (the hard limit is 998).
    static func fold(_ line: String) -> String {
        guard line.utf8.count > 78 else { return line }
        var out = ""
        var current = ""
        for (index, word) in line.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
            // Never break between the field name and the first word of its value.
            if index > 1 && !current.isEmpty && current.utf8.count + 1 + word.utf8.count > 76 {
                out += current + "\r\n"
                current = " " + word
            } else {
                current += current.isEmpty ? String(word) : " " + word
            }
        }
        return out + current
    }
}

extension String {
    func replacingLineEnds() -> String {
        var out = String.UnicodeScalarView()
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" { out.append("\n"); previousCR = true; continue }
            if scalar == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(scalar)
        }
        return String(out)
    }

    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        guard !target.isEmpty else { return nil }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(target) { return index..<self.index(index, offsetBy: target.count) }
            index = self.index(after: index)
        }
        return nil
    }
}
