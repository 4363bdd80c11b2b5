#if canImport(Glibc)
import Glibc
#endif

/// Text in a named charset to a Swift string: UTF-8 and ASCII directly, Latin-1 and
/// Windows-1252 by table (the most common in Brazilian and Portuguese mail), everything else
/// through the C library's iconv (ISO-2022-JP, Shift_JIS, GB2312, KOI8-R, ISO-8859-x …).
package enum Charset {
    /// Decodes `bytes`; nil when the charset is unknown or the bytes are not valid in it.
    package static func decode<Bytes: Collection>(_ bytes: Bytes, charset: String) -> String? where Bytes.Element == UInt8 {
        let name = normalized(charset)
        switch name {
        case "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "":
            return String(validating: bytes, as: UTF8.self)
        case "iso-8859-1", "latin1", "l1", "iso8859-1", "iso_8859-1":
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        case "windows-1252", "cp1252", "x-cp1252":
            return windows1252(bytes)
        default:
            return iconvDecode(Array(bytes), from: name)
        }
    }

    /// Whether text in this charset (nil: none declared) is read as UTF-8 (ASCII is, leniently:
    /// 8-bit bytes under a US-ASCII label are read as UTF-8 first).
    package static func readsAsUTF8(_ charset: String?) -> Bool {
        guard let charset else { return true }
        switch normalized(charset) {
        case "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "": return true
        default: return false
        }
    }

    /// Decodes as the message claims, and when that fails (a "lying charset"), as UTF-8, then
    /// as Windows-1252, which accepts any byte: text is never dropped.
    /// UTF-16 that does not decode (an odd length, a lone surrogate) is read as UTF-16 still,
    /// what cannot be read replaced by U+FFFD: as Windows-1252 it would be every other
    /// character a NUL.
    package static func decodeLeniently<Bytes: Collection>(_ bytes: Bytes, charset: String?) -> (text: String, exact: Bool) where Bytes.Element == UInt8 {
        if let charset, let text = decode(bytes, charset: charset) { return (text, true) }
        if let charset, let order = utf16ByteOrder(normalized(charset)) { return (utf16(Array(bytes), order: order), false) }
        if let text = String(validating: bytes, as: UTF8.self) { return (text, charset == nil) }
        return (windows1252(bytes), false)
    }

    /// Whether CR and LF are single ASCII bytes in this charset (not in UTF-16 or UTF-32,
    /// whose bytes must not be touched before decoding). Unknown names count as ASCII-based:
    /// they are decoded leniently as UTF-8 or Windows-1252 anyway.
    package static func keepsASCIILineEnds(_ charset: String?) -> Bool {
        guard let charset else { return true }
        let name = normalized(charset)
        if name == "utf-8" || name == "us-ascii" || name == "iso-8859-1" { return true }
        return !(name.hasPrefix("utf-16") || name.hasPrefix("utf-32") || name.hasPrefix("ucs-") || name.hasPrefix("utf16") || name.hasPrefix("utf32")
                 || name.hasPrefix("unicode") || name.hasPrefix("ebcdic") || Self.ebcdic.contains(name))
    }

    enum ByteOrder { case little, big, marked }

    /// The byte order a UTF-16 label names (`marked`: from the byte order mark, else big-endian
    /// as RFC 2781 §4.3 says); nil for other charsets.
    static func utf16ByteOrder(_ name: String) -> ByteOrder? {
        switch name {
        case "utf-16le", "utf16le", "unicodelittleunmarked": .little
        case "utf-16be", "utf16be", "unicodebigunmarked": .big
        case "utf-16", "utf16", "ucs-2", "ucs2", "unicode": .marked
        default: nil
        }
    }

    /// UTF-16 read leniently: a trailing odd byte dropped, lone surrogates as U+FFFD.
    static func utf16(_ bytes: [UInt8], order: ByteOrder) -> String {
        var start = 0
        var little = order == .little
        if order == .marked, bytes.count >= 2 {
            if bytes[0] == 0xFF && bytes[1] == 0xFE { little = true; start = 2 }
            else if bytes[0] == 0xFE && bytes[1] == 0xFF { start = 2 }
        }
        var units: [UInt16] = []
        units.reserveCapacity((bytes.count - start) / 2)
        var i = start
        while i + 1 < bytes.count {
            let (a, b) = (UInt16(bytes[i]), UInt16(bytes[i + 1]))
            units.append(little ? b << 8 | a : a << 8 | b)
            i += 2
        }
        return String(decoding: units, as: UTF16.self)
    }

    static let ebcdic: Set<String> = ["cp037", "ibm037", "cp500", "ibm500", "cp875", "cp1026", "cp1047", "ibm1047", "cp1140", "ibm1140"]

    static func normalized(_ charset: String) -> String {
        var name = charset.lowercasedMailToken
        // Nearly always neither quoted nor padded: told from its first and last bytes.
        guard let head = name.utf8.first, let tail = name.utf8.last, head == 32 || head == 34 || tail == 32 || tail == 34 else { return name }
        while let first = name.first, first == " " || first == "\"" { name.removeFirst() }
        while let last = name.last, last == " " || last == "\"" { name.removeLast() }
        return name
    }

    /// Windows-1252: Latin-1 with printable characters in 0x80–0x9F.
    static let windows1252High: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ]

    static func windows1252<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            if byte >= 0x80 && byte <= 0x9F {
                scalars.append(Unicode.Scalar(windows1252High[Int(byte - 0x80)]) ?? "\u{FFFD}")
            } else {
                scalars.append(Unicode.Scalar(byte))
            }
        }
        return String(scalars)
    }

    static func iconvDecode(_ input: [UInt8], from charset: String) -> String? {
        let converter = iconv_open("UTF-8", charset)
        guard converter != iconv_t(bitPattern: -1) else { return nil }
        defer { iconv_close(converter) }
        if input.isEmpty { return "" }
        // UTF-8 needs at most 4 bytes per input byte for every charset iconv knows (and 3 for most).
        var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
        var source = input.map { CChar(bitPattern: $0) }
        let produced: Int? = source.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                var inPointer: UnsafeMutablePointer<CChar>? = inBuffer.baseAddress
                var inLeft = inBuffer.count
                var outPointer: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(outBuffer.baseAddress!).assumingMemoryBound(to: CChar.self)
                var outLeft = outBuffer.count
                if iconv(converter, &inPointer, &inLeft, &outPointer, &outLeft) == -1 { return nil }
                // Flush the shift state (ISO-2022-JP ends in ASCII mode).
                if iconv(converter, nil, nil, &outPointer, &outLeft) == -1 { return nil }
                return outBuffer.count - outLeft
            }
        }
        guard let produced else { return nil }
        return String(validating: output[0..<produced], as: UTF8.self)
    }
}
