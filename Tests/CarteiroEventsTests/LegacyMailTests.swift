import Foundation
import Testing
@testable import CarteiroEvents
@testable import CarteiroMail

/// The formats of old and odd mailers, piece by piece (the golden corpus has a whole message of
/// each): uuencode, BinHex, TNEF with its compressed RTF, obsolete header syntax, UTF-16.
struct LegacyMailTests {
    /// [MS-OXRTFCP] 3.1.1's own example: compressed, with a reference into the dictionary.
    @Test func compressedRTFAsTheSpecificationShowsIt() throws {
        let compressed: [UInt8] = [0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7, 0xa7,
                                   0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a, 0xf3, 0x20,
                                   0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f, 0xa0]
        let rtf = try #require(CompressedRTF.decompress(compressed))
        #expect(String(decoding: rtf, as: UTF8.self) == "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n")
        #expect(RTFText.read(rtf).text == "hello world")
    }

    @Test func rtfTextKeepsWordsParagraphsAndCharacters() {
        let rtf = Array(#"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\*\generator x;}\pard A\'e7\'e3o\par \u8212?\tab b\{c\}\line d}"#.utf8)
        #expect(RTFText.read(rtf).text == "Ação\n—\tb{c}\nd")
        // HTML wrapped in RTF: the tags and the text outside \htmlrtf, nothing else.
        let wrapped = Array(#"{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}\htmlrtf x\htmlrtf0 Hi{\*\htmltag72 </p>}}"#.utf8)
        #expect(RTFText.read(wrapped).html == "<p>Hi</p>")
    }

    @Test func hostileRTFAndTNEFAreBounded() {
        // Nesting far past any real document, unclosed groups, a control word that never ends.
        let deep = Array(String(repeating: "{", count: 100_000).utf8) + Array("\\par x".utf8)
        #expect(RTFText.read(deep).text == "\nx")
        _ = RTFText.read(Array(("\\" + String(repeating: "a", count: 10_000) + "1234567890123456789").utf8))
        // A TNEF stream cut at every length never traps, and says it was cut.
        let stream = tnefStream()
        for length in 0..<stream.count {
            let content = TNEF.read(Array(stream.prefix(length)))
            if length >= 6, let content, length < stream.count { #expect(content.problems.contains("TNEF cut short") || content.attachments.count <= 1) }
        }
        // Lengths that claim gigabytes: refused as cut short, nothing allocated for them.
        var lying = Array(stream.prefix(6))
        lying += [2] + le32(0x0006_800F) + le32(0xFFFF_FFF0) + [1, 2, 3]
        #expect(TNEF.read(lying)?.problems == ["TNEF cut short"])
        // Compressed RTF that says it is huge stops at the limit it is given.
        let bomb: [UInt8] = le32(100) + le32(UInt32.max) + le32(0x7546_5A4C) + le32(0) + [0xFF] + [0x00, 0x0F] + Array(repeating: 0xFF, count: 60)
        let out = CompressedRTF.decompress(bomb, maximumBytes: 1000)
        #expect((out?.count ?? 0) <= 1000)
    }

    @Test func tnefCarriesItsFilesAndBody() throws {
        let content = try #require(TNEF.read(tnefStream()))
        #expect(content.messageClass == "IPM.Note")
        #expect(content.text == "body text")
        #expect(content.attachments.map(\.name) == ["report.pdf"])
        #expect(content.attachments.first?.data == Array("%PDF".utf8))
        #expect(TNEF.read(Array("not tnef at all".utf8)) == nil)
    }

    @Test func uuencodedBlocksLeaveTheText() {
        let data = Array((0..<200).map { UInt8($0) })
        let text = Array("Hello\n\n".utf8) + uuencode("a.bin", data) + Array("\n\nBye\n".utf8)
        let (rest, files) = UUEncode.extract(from: text)
        #expect(String(decoding: rest, as: UTF8.self) == "Hello\n\nBye")
        #expect(files == [UUEncode.File(name: "a.bin", data: data)])
        // "begin" in prose, or a block that never ends, stays text.
        for prose in ["begin 644 the meeting at noon\nsee you\n", "begin 644 x.bin\nM86)C\n"] {
            let (kept, none) = UUEncode.extract(from: Array(prose.utf8))
            #expect(none.isEmpty && kept == Array(prose.utf8))
        }
        #expect(UUEncode.decodeBody(uuencode("b.bin", data)).name == "b.bin")
        #expect(UUEncode.decodeBody(uuencode("b.bin", data)).data == data)
    }

    @Test func binHexThatIsBrokenIsNotAFile() {
        #expect(BinHex.decode(Array("(This file must be converted with BinHex 4.0)\n:!!!".utf8)) == nil)
        #expect(BinHex.decode(Array("no colon here".utf8)) == nil)
        // A run that would expand past the limit is refused, not allocated.
        let runs = Array(repeating: Array("i!B!".utf8), count: 10).flatMap { $0 }
        #expect(BinHex.decode(Array(":".utf8) + runs + Array(":".utf8), maximumBytes: 100) == nil)
    }

    @Test func obsoleteHeaderSyntaxAndParametersWithoutSemicolons() {
        let (header, _) = HeaderBlock.parse(Array("Subject : Hi\r\nFrom\t: a@b.example\r\nX y: no\r\n\r\n".utf8)[...])
        #expect(header.text("subject") == "Hi")
        #expect(header.text("from") == "a@b.example")
        #expect(header.isDamaged)
        let type = MIMEHeaderValue.parse(Array(#"multipart/mixed boundary="x" junk ; charset = "utf-8""#.utf8))
        #expect(type.value == "multipart/mixed" && type.parameters["boundary"] == "x" && type.parameters["charset"] == "utf-8")
        let name = MIMEHeaderValue.parse(Array(#"inline; filename="C:\TEMP\nsmail.png""#.utf8))
        #expect(name.parameters["filename"] == #"C:\TEMP\nsmail.png"#)
        #expect(StoredAttachment.safeName(name.parameters["filename"], contentType: "image/png") == "nsmail.png")
        #expect(MIMEHeaderValue.parse(Array(#"a; b="q\"uote\\d""#.utf8)).parameters["b"] == #"q"uote\d"#)
    }

    @Test func utf16ThatDoesNotDecodeIsStillUTF16AndTextHasNoNUL() {
        let units: [UInt8] = "Olá".utf16.flatMap { unit -> [UInt8] in [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        let odd = units + [0x41]
        let decoded = Charset.decodeLeniently(odd, charset: "UTF-16LE")
        #expect(decoded.text == "Olá" && !decoded.exact)
        #expect(Charset.decodeLeniently([0xFE, 0xFF, 0x00, 0x41, 0xD8], charset: "utf-16").text == "A")
        let message = MailMessage.parse(Array("Subject: =?utf-8?q?a=00b?=\r\n\r\nx\u{0}y".utf8))
        #expect(message.subject == "a\u{FFFD}b")
        #expect(message.text == "x\u{FFFD}y")
    }

    @Test func listsWithoutPrecedenceAreBulk() {
        for field in ["List-Id: <users.lists.example>", "Mailing-List: contact users-help@lists.example"] {
            let (header, _) = HeaderBlock.parse(Array("\(field)\r\n\r\n".utf8)[...])
            #expect(AutomaticMail.flags(header, from: nil, ownAddresses: []) == ["bulk"])
        }
    }

    // MARK: - Builders

    func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    func attribute(_ level: UInt8, _ tag: UInt32, _ data: [UInt8]) -> [UInt8] {
        let sum = data.reduce(0) { ($0 + Int($1)) & 0xFFFF }
        return [level] + le32(tag) + le32(UInt32(data.count)) + data + [UInt8(sum & 0xFF), UInt8(sum >> 8)]
    }

    func tnefStream() -> [UInt8] {
        le32(0x223E_9F78) + [0x01, 0x00]
            + attribute(1, 0x0007_8008, Array("IPM.Note\u{0}".utf8))
            + attribute(1, 0x0002_800C, Array("body text".utf8))
            + attribute(2, 0x0006_9002, [1, 0, 0, 0])
            + attribute(2, 0x0001_8010, Array("report.pdf\u{0}".utf8))
            + attribute(2, 0x0006_800F, Array("%PDF".utf8))
    }

    func uuencode(_ name: String, _ data: [UInt8]) -> [UInt8] {
        var out = Array("begin 644 \(name)\n".utf8)
        func char(_ value: UInt8) -> UInt8 { value == 0 ? UInt8(ascii: "`") : value + 32 }
        var i = 0
        while i < data.count {
            let line = Array(data[i..<min(i + 45, data.count)])
            out.append(char(UInt8(line.count)))
            var k = 0
            while k < line.count {
                let a = line[k], b = k + 1 < line.count ? line[k + 1] : 0, c = k + 2 < line.count ? line[k + 2] : 0
                out += [char(a >> 2), char((a & 3) << 4 | b >> 4), char((b & 0xF) << 2 | c >> 6), char(c & 0x3F)]
                k += 3
            }
            out.append(10)
            i += 45
        }
        out += Array("`\nend\n".utf8)
        return out
    }
}
