import CByteSearch

/// uuencode, as old mailers and gateways still send it: as a Content-Transfer-Encoding
/// (`x-uuencode`, `uuencode`, `x-uue`), or as `begin 644 name` … `end` blocks inside a plain text
/// body (Outlook 2000, Eudora, news gateways), which are files the desk wants as attachments.
///
/// A line is a length character (32 + n, or a backquote for 0) and the n bytes in groups of four
/// characters of six bits each. Decoding never grows past the input; a line that does not read
/// as uuencode ends a block (in text it means the block was not one, and the text stays).
package enum UUEncode {
    package struct File: Sendable, Equatable {
        /// As the `begin` line gives it (may be a path: the desk's safe name takes its last part).
        package var name: String
        package var data: [UInt8]
    }

    /// The body of an entity whose transfer encoding is uuencode: the file in it (the `begin`
    /// line's name, if there is one), or the lines decoded as they are when there is no
    /// `begin` line.
    package static func decodeBody<Bytes: Collection>(_ body: Bytes) -> (name: String?, data: [UInt8]) where Bytes.Element == UInt8 {
        let lines = Self.lines(Array(body))
        if let begin = lines.firstIndex(where: { beginName($0) != nil }) {
            let (data, _) = decodeLines(lines[(begin + 1)...])
            return (beginName(lines[begin]), data)
        }
        return (nil, decodeLines(lines[...]).data)
    }

    /// The uuencoded blocks of a plain text, taken out of it: the text without them, and their
    /// files. A block counts only when every line up to `end` reads as uuencode; otherwise the
    /// text stays as it was. At most `maximumFiles` are taken.
    package static func extract(from text: [UInt8], maximumFiles: Int = 100) -> (text: [UInt8], files: [File]) {
        // Cheap test first: almost no text has a line starting "begin ".
        guard text.starts(with: "begin ".utf8) || containsLineStart(text, "begin ") else { return (text, []) }
        let lines = Self.lines(text)
        var kept: [ArraySlice<UInt8>] = []
        var files: [File] = []
        var i = 0
        while i < lines.count {
            guard files.count < maximumFiles, let name = beginName(lines[i]) else {
                kept.append(lines[i])
                i += 1
                continue
            }
            let (data, end) = decodeLines(lines[(i + 1)...])
            guard let end, end < lines.count, isEndLine(lines[end]) else {
                kept.append(lines[i])
                i += 1
                continue
            }
            files.append(File(name: name, data: data))
            i = end + 1
        }
        guard !files.isEmpty else { return (text, []) }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        for (index, line) in kept.enumerated() {
            if index > 0 { out.append(10) }
            out.append(contentsOf: line)
        }
        while let last = out.last, last == 10 || last == 32 { out.removeLast() }
        // Where a block stood, its blank lines around it stay: one blank line is enough.
        var collapsed: [UInt8] = []
        collapsed.reserveCapacity(out.count)
        var newlines = 0
        for byte in out {
            newlines = byte == 10 ? newlines + 1 : 0
            if newlines <= 2 { collapsed.append(byte) }
        }
        return (collapsed, files)
    }

    /// `begin MODE NAME` (mode in octal): the name; nil for any other line.
    static func beginName(_ line: ArraySlice<UInt8>) -> String? {
        var line = line
        while let last = line.last, last == 13 || last == 32 || last == 9 { line = line.dropLast() }
        guard line.starts(with: "begin ".utf8) else { return nil }
        let rest = line.dropFirst(6)
        guard let space = rest.firstIndex(of: 32) else { return nil }
        let mode = rest[rest.startIndex..<space]
        guard (3...4).contains(mode.count), mode.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) else { return nil }
        let name = rest[(space + 1)...]
        guard !name.isEmpty else { return nil }
        return Charset.decodeLeniently(name, charset: nil).text
    }

    static func isEndLine(_ line: ArraySlice<UInt8>) -> Bool {
        var line = line
        while let last = line.last, last == 13 || last == 32 || last == 9 { line = line.dropLast() }
        return line.elementsEqual("end".utf8)
    }

    /// Decodes lines until one that is not uuencode: the bytes, and the index of the line that
    /// stopped it (the `end` line, or the first that did not read; nil when the lines ran out).
    static func decodeLines(_ lines: ArraySlice<ArraySlice<UInt8>>) -> (data: [UInt8], stoppedAt: Int?) {
        var data: [UInt8] = []
        for index in lines.indices {
            var line = lines[index]
            while let last = line.last, last == 13 { line = line.dropLast() }
            guard let first = line.first else { return (data, index) }
            if isEndLine(line) { return (data, index) }
            // The length character is itself one of the 64 (a space or a backquote for 0).
            guard first >= 32 && first <= 96 else { return (data, index) }
            let count = Int((first &- 32) & 63)
            // Four characters make three bytes; a transport that strips a trailing blank (which
            // stands for zero bits) leaves a line one short, which is padded rather than refused.
            // One at most: a line never decodes to more bytes than it has.
            let body = line.dropFirst()
            guard count > 0 else { continue }
            let needed = (count + 2) / 3 * 4
            guard body.count + 1 >= needed, body.allSatisfy({ $0 >= 32 && $0 <= 96 }) else { return (data, index) }
            var chars = Array(body.prefix(needed))
            while chars.count < needed { chars.append(32) }
            var produced = 0
            var k = 0
            while k + 3 < chars.count && produced < count {
                let a = (chars[k] &- 32) & 63, b = (chars[k + 1] &- 32) & 63, c = (chars[k + 2] &- 32) & 63, d = (chars[k + 3] &- 32) & 63
                let bytes = [a << 2 | b >> 4, (b & 0xF) << 4 | c >> 2, (c & 0x3) << 6 | d]
                for byte in bytes where produced < count {
                    data.append(byte)
                    produced += 1
                }
                k += 4
            }
        }
        return (data, nil)
    }

    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        bytes.split(separator: 10, omittingEmptySubsequences: false)
    }

    static func containsLineStart(_ text: [UInt8], _ prefix: String) -> Bool {
        let needle = [10] + Array(prefix.utf8)
        return text.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, buffer.count >= needle.count else { return false }
            return carteiro_memmem(base, buffer.count, needle, needle.count) != nil
        }
    }
}
