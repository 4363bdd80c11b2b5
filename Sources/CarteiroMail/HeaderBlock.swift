/// The header fields of a message or a MIME part (RFC 5322 §2.2), unfolded, in order,
/// with raw bytes kept: decoding is up to the field's reader.
package struct HeaderBlock: Sendable {
    package struct Field: Sendable {
        /// As written; compare with `lowercasedName`.
        package var name: String
        package var lowercasedName: String
        /// The unfolded value, raw bytes (may be 8-bit: RFC 6532 UTF-8 or undeclared legacy).
        package var value: [UInt8]
    }

    package private(set) var fields: [Field] = []
    /// The header block was damaged (a line without a colon, too many fields): still usable.
    package private(set) var isDamaged = false

    /// Splits `bytes` into the header block and the offset where the body starts.
    /// Accepts CRLF and bare LF line ends; a message without an empty line is all header.
    package static func parse(_ bytes: ArraySlice<UInt8>) -> (header: HeaderBlock, bodyStart: Int) {
        var block = HeaderBlock()
        var i = bytes.startIndex
        let end = bytes.endIndex
        // The field being read: its value is the range on its first line, unless folded lines
        // followed (then those lines joined, made only for such a field).
        var current: (name: String, lowercasedName: String, value: Range<Int>, folded: [UInt8]?)?
        func flush() {
            if let field = current {
                if block.fields.count < MessageLimits.maximumHeaderFields {
                    let value = field.folded.map(trim) ?? trim(bytes[field.value])
                    block.fields.append(Field(name: field.name, lowercasedName: field.lowercasedName, value: value))
                } else {
                    block.isDamaged = true
                }
            }
            current = nil
        }
        while i < end {
            if i - bytes.startIndex > MessageLimits.maximumHeaderBytes {
                block.isDamaged = true
                flush()
                return (block, i)
            }
            // One physical line.
            var lineEnd = i
            while lineEnd < end && bytes[lineEnd] != 10 { lineEnd += 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            var contentEnd = lineEnd
            if contentEnd > i && bytes[contentEnd - 1] == 13 { contentEnd -= 1 }
            if contentEnd == i {
                // The empty line: the body starts after it.
                flush()
                return (block, next)
            }
            let first = bytes[i]
            if first == 32 || first == 9 {
                if current != nil {
                    // Appended in place: a copy per folded line would make a header of many
                    // short folds quadratic.
                    if current!.folded == nil { current!.folded = Array(bytes[current!.value]) }
                    current!.folded!.append(contentsOf: bytes[i..<contentEnd])
                } else {
                    block.isDamaged = true
                }
            } else if let colon = bytes[i..<contentEnd].firstIndex(of: UInt8(ascii: ":")), let nameEnd = Self.nameEnd(bytes, from: i, colon: colon) {
                flush()
                let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
                current = (name, name.lowercasedMailToken, (colon + 1)..<contentEnd, nil)
            } else if block.fields.isEmpty && current == nil && (bytes[i..<contentEnd].starts(with: "From ".utf8)) {
                // An mbox "From " line before the header: not part of the message.
            } else {
                block.isDamaged = true
                if current == nil && block.fields.isEmpty {
                    // Not a header at all: the whole message is body.
                    return (block, bytes.startIndex)
                }
            }
            i = next
        }
        flush()
        return (block, end)
    }

    /// Where a field's name ends, when `from..<colon` is one: printable ASCII, then (the obsolete
    /// syntax RFC 5322 §4.5 says must still be read: `Subject : x`) blanks before the colon.
    static func nameEnd(_ bytes: ArraySlice<UInt8>, from start: Int, colon: Int) -> Int? {
        var end = colon
        while end > start, bytes[end - 1] == 32 || bytes[end - 1] == 9 { end -= 1 }
        guard end > start, bytes[start..<end].allSatisfy({ $0 > 32 && $0 < 127 }) else { return nil }
        return end
    }

    static func trim(_ value: [UInt8]) -> [UInt8] { trim(value[...]) }

    static func trim(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var start = value.startIndex, end = value.endIndex
        while start < end, value[start] == 32 || value[start] == 9 { start += 1 }
        while end > start, value[end - 1] == 32 || value[end - 1] == 9 || value[end - 1] == 13 { end -= 1 }
        return Array(value[start..<end])
    }

    /// The first field of that name (case-insensitive), raw.
    package func raw(_ name: String) -> [UInt8]? {
        let lowered = name.lowercasedMailToken
        return fields.first { $0.lowercasedName == lowered }?.value
    }

    package func all(_ name: String) -> [[UInt8]] {
        let lowered = name.lowercasedMailToken
        return fields.filter { $0.lowercasedName == lowered }.map(\.value)
    }

    /// The field decoded as unstructured text: RFC 2047 words decoded, 8-bit as UTF-8 (RFC 6532)
    /// or, when that fails, Windows-1252.
    package func text(_ name: String) -> String? {
        raw(name).map(EncodedWords.decode)
    }

    package func contains(_ name: String) -> Bool { raw(name) != nil }
}
