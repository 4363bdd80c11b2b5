/// Compressed RTF ([MS-OXRTFCP]), the body Outlook keeps in TNEF as PR_RTF_COMPRESSED: a
/// header, then LZ77 with a 4 KB dictionary that starts filled with common RTF.
package enum CompressedRTF {
    static let prebuffer = Array(("{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx").utf8)
    static let compressed: UInt32 = 0x7546_5A4C // "LZFu"
    static let uncompressed: UInt32 = 0x414C_454D // "MELA"

    /// The RTF; nil when the header is not one of the two kinds or the data is cut short.
    package static func decompress(_ data: [UInt8], maximumBytes: Int = MessageLimits.maximumDecodedBytes) -> [UInt8]? {
        var reader = ByteReader(data)
        guard reader.u32() != nil, let rawSize = reader.u32().map(Int.init), let kind = reader.u32(), reader.u32() != nil else { return nil }
        let limit = min(rawSize, maximumBytes)
        if kind == uncompressed { return Array(reader.bytes.prefix(limit)) }
        guard kind == compressed else { return nil }
        var dictionary = [UInt8](repeating: 0, count: 4096)
        dictionary.replaceSubrange(0..<prebuffer.count, with: prebuffer)
        var write = prebuffer.count
        var out: [UInt8] = []
        out.reserveCapacity(min(limit, data.count * 8))
        while out.count < limit, let control = reader.u8() {
            for bit in 0..<8 {
                guard out.count < limit else { break }
                if control & (1 << bit) == 0 {
                    guard let byte = reader.u8() else { return out }
                    out.append(byte)
                    dictionary[write] = byte
                    write = (write + 1) & 0xFFF
                } else {
                    guard let high = reader.u8(), let low = reader.u8() else { return out }
                    let word = Int(high) << 8 | Int(low)
                    let offset = word >> 4
                    // A reference to the write position itself ends the stream.
                    if offset == write { return out }
                    for k in 0..<((word & 0xF) + 2) where out.count < limit {
                        let byte = dictionary[(offset + k) & 0xFFF]
                        out.append(byte)
                        dictionary[write] = byte
                        write = (write + 1) & 0xFFF
                    }
                }
            }
        }
        return out
    }
}

/// RTF read for its text: the words and paragraphs without the formatting, or, for RTF that
/// wraps HTML (`\fromhtml1`, what Outlook stores for HTML mail), the HTML it wraps.
package enum RTFText {
    package struct Document {
        package var text: String?
        package var html: String?
    }

    /// Destinations that hold no text of the message.
    static let skipped: Set<String> = ["fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer", "headerl", "headerr",
                                       "footerl", "footerr", "themedata", "colorschememapping", "datastore", "listtable", "listoverridetable",
                                       "rsidtbl", "generator", "xmlnstbl", "mmathPr", "latentstyles", "fldinst", "filetbl", "revtbl", "bkmkstart", "bkmkend"]
    static let maximumDepth = 200

    package static func read(_ rtf: [UInt8]) -> Document {
        struct Group {
            var skip = false
            var htmlTag = false
            var htmlRTF = false
            var unicodeSkip = 1
        }
        var stack: [Group] = []
        var overflow = 0
        var group = Group()
        var fromHTML = false
        var codepage = "windows-1252"
        var text: [UInt8] = [] // UTF-8
        var html: [UInt8] = []
        var pending: [UInt8] = [] // bytes in the document's code page, not yet decoded
        var pendingToHTML = false
        var pendingToText = false
        var skipChars = 0 // after \uN, the replacement characters to skip

        func flush() {
            guard !pending.isEmpty else { return }
            let decoded = Array(Charset.decodeLeniently(pending, charset: codepage).text.utf8)
            if pendingToText { text += decoded }
            if pendingToHTML { html += decoded }
            pending.removeAll(keepingCapacity: true)
        }
        func emit(_ byte: UInt8) {
            if skipChars > 0 { skipChars -= 1; return }
            let toHTML = fromHTML && (group.htmlTag || !group.htmlRTF) && !(group.skip && !group.htmlTag)
            let toText = !fromHTML && !group.skip
            guard toHTML || toText else { return }
            if toHTML != pendingToHTML || toText != pendingToText { flush() }
            pendingToHTML = toHTML
            pendingToText = toText
            pending.append(byte)
        }
        func emit(unicode scalar: Unicode.Scalar) {
            let toHTML = fromHTML && (group.htmlTag || !group.htmlRTF) && !(group.skip && !group.htmlTag)
            let toText = !fromHTML && !group.skip
            flush()
            let bytes = Array(String(scalar).utf8)
            if toHTML { html += bytes }
            if toText { text += bytes }
        }

        func emitLine() {
            if fromHTML {
                if !group.skip && !group.htmlRTF || group.htmlTag { flush(); html += [13, 10] }
            } else if !group.skip {
                flush()
                text.append(10)
            }
        }

        var i = 0
        let count = rtf.count
        var destinationStart = false // just after "{" (or "{\*"): the next control word may name a destination
        var ignorable = false
        while i < count {
            let byte = rtf[i]
            switch byte {
            case UInt8(ascii: "{"):
                flush()
                if stack.count < maximumDepth { stack.append(group) } else { overflow += 1 }
                destinationStart = true
                ignorable = false
                i += 1
            case UInt8(ascii: "}"):
                flush()
                if overflow > 0 { overflow -= 1 } else if let previous = stack.popLast() { group = previous }
                destinationStart = false
                i += 1
            case UInt8(ascii: "\\"):
                i += 1
                guard i < count else { break }
                let next = rtf[i]
                if isLetter(next) {
                    let start = i
                    while i < count, isLetter(rtf[i]), i - start < 32 { i += 1 }
                    let word = String(decoding: rtf[start..<i], as: UTF8.self)
                    var parameter: Int?
                    let numberStart = i
                    if i < count, rtf[i] == UInt8(ascii: "-") || isDigit(rtf[i]) {
                        i += 1
                        while i < count, isDigit(rtf[i]), i - numberStart < 10 { i += 1 }
                        parameter = Int(String(decoding: rtf[numberStart..<i], as: UTF8.self))
                    }
                    if i < count, rtf[i] == 32 { i += 1 }
                    let atStart = destinationStart
                    destinationStart = false
                    if atStart && (ignorable || skipped.contains(word)) {
                        if fromHTML && word == "htmltag" {
                            group.htmlTag = true
                            group.skip = false
                        } else {
                            flush()
                            group.skip = true
                        }
                        continue
                    }
                    switch word {
                    case "fromhtml": fromHTML = true
                    case "ansicpg": if let parameter, parameter > 0 { codepage = TNEF.charset(codepage: UInt32(clamping: parameter)) }
                    case "htmlrtf": flush(); group.htmlRTF = parameter != 0
                    case "par", "line": emitLine()
                    case "tab": emit(9)
                    case "uc": group.unicodeSkip = max(0, min(parameter ?? 1, 8))
                    case "u":
                        if let parameter {
                            let value = parameter < 0 ? parameter + 65536 : parameter
                            emit(unicode: Unicode.Scalar(UInt32(clamping: value)) ?? "\u{FFFD}")
                            skipChars = group.unicodeSkip
                        }
                    case "emdash": emit(unicode: "\u{2014}")
                    case "endash": emit(unicode: "\u{2013}")
                    case "lquote": emit(unicode: "\u{2018}")
                    case "rquote": emit(unicode: "\u{2019}")
                    case "ldblquote": emit(unicode: "\u{201C}")
                    case "rdblquote": emit(unicode: "\u{201D}")
                    case "bullet": emit(unicode: "\u{2022}")
                    default: break
                    }
                } else if next == UInt8(ascii: "'") {
                    if i + 2 < count, let high = TransferEncoding.hexValue(rtf[i + 1]), let low = TransferEncoding.hexValue(rtf[i + 2]) {
                        emit(high << 4 | low)
                        i += 3
                    } else {
                        i += 1
                    }
                    destinationStart = false
                } else if next == UInt8(ascii: "*") {
                    ignorable = true
                    i += 1
                } else {
                    destinationStart = false
                    switch next {
                    case UInt8(ascii: "\\"), UInt8(ascii: "{"), UInt8(ascii: "}"): emit(next)
                    case UInt8(ascii: "~"): emit(unicode: "\u{00A0}")
                    case UInt8(ascii: "_"): emit(UInt8(ascii: "-"))
                    case 10, 13: emitLine()
                    default: break
                    }
                    i += 1
                }
            case 10, 13:
                i += 1
            default:
                destinationStart = false
                emit(byte)
                i += 1
            }
        }
        flush()


        if fromHTML { return Document(text: nil, html: String(decoding: html, as: UTF8.self)) }
        let plain = String(decoding: text, as: UTF8.self)
        return Document(text: plain.isEmpty ? nil : plain, html: nil)
    }

    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
