/// TNEF (`winmail.dat`, `application/ms-tnef`, [MS-OXTNEF]): what Outlook and Exchange send
/// whenever rich text is on. It wraps the message's body (plain text, HTML, or compressed RTF)
/// and its attachments in one opaque part; read here, the desk gets them as any other mail's.
///
/// The stream is a signature, a key, then attributes: a level (message or attachment), an id, a
/// length, that many bytes, and a checksum. MAPI property lists inside some of them carry what
/// the older attributes lack (long file names, MIME types, the HTML body, compressed RTF).
///
/// Bounded: every length is checked against what is left, property counts and attachments are
/// capped, and decompression stops at `MessageLimits.maximumDecodedBytes`.
package enum TNEF {
    package struct File: Sendable, Equatable {
        package var name: String?
        package var contentType: String?
        package var contentID: String?
        package var data: [UInt8]
    }

    package struct Content: Sendable {
        package var messageClass: String?
        package var text: String?
        package var html: String?
        package var attachments: [File] = []
        package var problems: [String] = []
    }

    static let signature: UInt32 = 0x223E_9F78
    static let maximumAttachments = 500
    static let maximumProperties = 10_000

    // Attribute ids (the low 16 bits; the type is in the high 16).
    static let attBody: UInt32 = 0x800C
    static let attMessageClass: UInt32 = 0x8008
    static let attAttachRendData: UInt32 = 0x9002
    static let attAttachTitle: UInt32 = 0x8010
    static let attAttachData: UInt32 = 0x800F
    static let attMAPIProps: UInt32 = 0x9003
    static let attAttachment: UInt32 = 0x9005
    static let attOEMCodepage: UInt32 = 0x9007

    /// The content of a TNEF stream; nil when the bytes are not TNEF at all.
    package static func read(_ bytes: [UInt8]) -> Content? {
        var reader = ByteReader(bytes[...])
        guard reader.u32() == signature, reader.u16() != nil else { return nil }
        var content = Content()
        var current: File?
        var rtf: [UInt8]?
        var codepage: String?
        func finishAttachment() {
            if let file = current, !(file.data.isEmpty && file.name == nil), content.attachments.count < maximumAttachments {
                content.attachments.append(file)
            }
            current = nil
        }
        while !reader.isAtEnd {
            guard let level = reader.u8(), let tag = reader.u32(), let length = reader.u32().map(Int.init),
                  let data = reader.bytes(length), reader.u16() != nil else {
                content.problems.append("TNEF cut short")
                break
            }
            let id = tag & 0xFFFF
            if level == 1 {
                switch id {
                case attMessageClass: content.messageClass = cString(data)
                case attBody: if content.text == nil { content.text = Charset.decodeLeniently(trimNUL(data), charset: codepage ?? "windows-1252").text }
                case attOEMCodepage:
                    var code = ByteReader(data)
                    if let number = code.u32() { codepage = Self.charset(codepage: number) }
                case attMAPIProps:
                    let properties = MAPIProperties.read(data)
                    if let html = properties.binary(0x1013) {
                        // PR_INTERNET_CPID says its charset.
                        content.html = Charset.decodeLeniently(trimNUL(html[...]), charset: properties.long(0x3FDE).map(Self.charset) ?? "utf-8").text
                    } else if let html = properties.string(0x1013) {
                        content.html = html
                    }
                    if let text = properties.string(0x1000), content.text == nil { content.text = text }
                    if let compressed = properties.binary(0x1009) { rtf = compressed }
                    if content.messageClass == nil, let messageClass = properties.string(0x001A) { content.messageClass = messageClass }
                default: break
                }
            } else if level == 2 {
                switch id {
                case attAttachRendData:
                    finishAttachment()
                    current = File(name: nil, contentType: nil, contentID: nil, data: [])
                case attAttachTitle:
                    if current == nil { current = File(name: nil, contentType: nil, contentID: nil, data: []) }
                    if current?.name == nil { current?.name = cString(data) }
                case attAttachData:
                    if current == nil { current = File(name: nil, contentType: nil, contentID: nil, data: []) }
                    current?.data = Array(data)
                case attAttachment:
                    if current == nil { current = File(name: nil, contentType: nil, contentID: nil, data: []) }
                    let properties = MAPIProperties.read(data)
                    if let name = properties.string(0x3707) ?? properties.string(0x3704), !name.isEmpty { current?.name = name }
                    if let type = properties.string(0x370E), !type.isEmpty { current?.contentType = type.lowercased() }
                    if let id = properties.string(0x3712), !id.isEmpty { current?.contentID = id.trimmingCharacters("<").trimmingCharacters(">") }
                    if current?.data.isEmpty == true, let object = properties.binary(0x3701) { current?.data = object }
                default: break
                }
            }
        }
        finishAttachment()
        if let rtf, content.html == nil || content.text == nil {
            if let plain = CompressedRTF.decompress(rtf) {
                let document = RTFText.read(plain)
                if content.html == nil, let html = document.html { content.html = html }
                if content.text == nil { content.text = document.text }
            } else {
                content.problems.append("TNEF rich text could not be decompressed")
            }
        }
        // An attachment without a name is still a file; the desk's safe name gives it one.
        return content
    }

    /// A Windows code page as a charset name.
    static func charset(codepage: UInt32) -> String {
        switch codepage {
        case 65001: "utf-8"
        case 1200: "utf-16le"
        case 20127: "us-ascii"
        case 28591: "iso-8859-1"
        default: "cp\(codepage)"
        }
    }

    static func cString(_ data: ArraySlice<UInt8>) -> String? {
        let text = Charset.decodeLeniently(trimNUL(data), charset: nil).text
        return text.isEmpty ? nil : text
    }

    static func trimNUL(_ data: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var data = data
        while data.last == 0 { data = data.dropLast() }
        return data
    }
}

/// Little-endian reading with every length checked: nil past the end, never a trap.
struct ByteReader {
    var bytes: ArraySlice<UInt8>
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var isAtEnd: Bool { bytes.isEmpty }
    var remaining: Int { bytes.count }

    mutating func u8() -> UInt8? {
        guard let first = bytes.first else { return nil }
        bytes = bytes.dropFirst()
        return first
    }

    mutating func u16() -> UInt16? {
        guard let pair = self.bytes(2) else { return nil }
        return UInt16(pair[pair.startIndex]) | UInt16(pair[pair.startIndex + 1]) << 8
    }

    mutating func u32() -> UInt32? {
        guard let four = self.bytes(4) else { return nil }
        var value: UInt32 = 0
        for (shift, byte) in four.enumerated() { value |= UInt32(byte) << UInt32(8 * shift) }
        return value
    }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= bytes.count else { return nil }
        let taken = bytes.prefix(count)
        bytes = bytes.dropFirst(count)
        return taken
    }

    /// Skips to the next multiple of four from `origin` (MAPI values are padded so).
    mutating func pad(_ length: Int) {
        let padding = (4 - length % 4) % 4
        _ = bytes(min(padding, bytes.count))
    }
}

/// A MAPI property list ([MS-OXTNEF] 2.1.3.5): a count, then each property's type, id, an
/// optional name (for named properties), and its value or values.
struct MAPIProperties {
    enum Value {
        case string(String)
        case binary([UInt8])
        case long(UInt32)
        case other
    }

    var values: [UInt16: Value] = [:]

    func string(_ id: UInt16) -> String? {
        if case .string(let text)? = values[id] { return text }
        return nil
    }

    func long(_ id: UInt16) -> UInt32? {
        if case .long(let number)? = values[id] { return number }
        return nil
    }

    func binary(_ id: UInt16) -> [UInt8]? {
        if case .binary(let data)? = values[id] { return data }
        return nil
    }

    static func read(_ data: ArraySlice<UInt8>) -> MAPIProperties {
        var reader = ByteReader(data)
        var list = MAPIProperties()
        guard let count = reader.u32() else { return list }
        for _ in 0..<min(Int(count), TNEF.maximumProperties) {
            guard let type = reader.u16(), let id = reader.u16() else { break }
            if id >= 0x8000 {
                // A named property: a GUID, then a number or a name. Read past, not used.
                guard reader.bytes(16) != nil, let kind = reader.u32() else { break }
                if kind == 0 {
                    guard reader.u32() != nil else { break }
                } else {
                    guard let length = reader.u32().map(Int.init), reader.bytes(length) != nil else { break }
                    reader.pad(length)
                }
            }
            let multiple = type & 0x1000 != 0
            let base = type & 0x0FFF
            var valueCount = 1
            // Variable-length values are counted even when there is one.
            if multiple || [0x001E, 0x001F, 0x0102, 0x000D].contains(base) {
                guard let n = reader.u32() else { break }
                valueCount = Int(n)
                guard valueCount <= reader.remaining else { break }
            }
            var value = Value.other
            var complete = true
            for index in 0..<valueCount {
                switch base {
                case 0x0003:
                    guard let number = reader.u32() else { complete = false; break }
                    if index == 0 { value = .long(number) }
                case 0x0001, 0x0002, 0x000A, 0x000B, 0x0004:
                    complete = reader.bytes(4) != nil
                case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040:
                    complete = reader.bytes(8) != nil
                case 0x0048:
                    complete = reader.bytes(16) != nil
                case 0x001E, 0x001F, 0x0102, 0x000D:
                    guard let length = reader.u32().map(Int.init), let bytes = reader.bytes(length) else { complete = false; break }
                    reader.pad(length)
                    if index == 0 {
                        switch base {
                        case 0x001E: value = .string(Charset.decodeLeniently(TNEF.trimNUL(bytes), charset: "windows-1252").text)
                        case 0x001F: value = .string(Charset.utf16(Array(TNEF.trimNUL16(bytes)), order: .little))
                        case 0x000D:
                            // An embedded object: its data after the 16-byte interface id.
                            value = .binary(Array(bytes.dropFirst(16)))
                        default: value = .binary(Array(bytes))
                        }
                    }
                default:
                    complete = false
                }
                if !complete { break }
            }
            guard complete else { break }
            if !multiple { list.values[id] = value }
        }
        return list
    }
}

extension TNEF {
    static func trimNUL16(_ data: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var data = data
        while data.count >= 2, data.last == 0, data[data.endIndex - 2] == 0 { data = data.dropLast(2) }
        return data
    }
}
