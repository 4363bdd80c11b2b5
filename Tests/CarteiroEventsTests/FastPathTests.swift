import Foundation
import Testing
@testable import CarteiroEvents
@testable import CarteiroMail

/// The byte-level fast paths of the ingest (word-at-a-time JSON escaping, memchr runs in
/// quoted-printable and line ends) against plain definitions of what they must produce.
struct FastPathTests {
    /// Every character that needs escaping, at every offset from an 8-byte boundary and inside
    /// long plain runs: the rendered JSON parses back to the same string.
    @Test func jsonEscapingAtEveryAlignment() throws {
        let specials: [String] = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "ação", "\u{2028}", "\u{2029}", "😀", " ", "~"]
        for special in specials {
            for offset in 0..<17 {
                let text = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 23 - offset % 5) + special
                let rendered = JSONValue.string(text).renderedBytes()
                let back = try JSONSerialization.jsonObject(with: Data(rendered), options: [.fragmentsAllowed]) as? String
                #expect(back == text, "offset \(offset), \(special.unicodeScalars.map { $0.value })")
                // No raw control character, quote or line separator survives inside the string.
                let inner = rendered.dropFirst().dropLast()
                #expect(!inner.contains { $0 < 0x20 || $0 == 0x7F })
                #expect(!String(decoding: inner, as: UTF8.self).contains("\u{2028}"))
            }
        }
    }

    @Test func quotedPrintableRunsAndEscapes() {
        let plain = String(repeating: "texto simples ", count: 40)
        #expect(TransferEncoding.quotedPrintable(Array((plain + "=C3=A7=\r\n" + plain).utf8)) == Array((plain + "ç" + plain).utf8))
        #expect(TransferEncoding.quotedPrintable(Array("no equals sign at all".utf8)) == Array("no equals sign at all".utf8))
        #expect(TransferEncoding.quotedPrintable(Array("ends with =".utf8)) == Array("ends with ".utf8))
        #expect(TransferEncoding.quotedPrintable(Array("a_b=5Fc".utf8), header: true) == Array("a b_c".utf8))
        #expect(TransferEncoding.quotedPrintable(Array("=41".utf8)[1...]) == Array("41".utf8))
    }

    @Test func lineEndsAreNormalisedBeforeOrAfterDecoding() {
        #expect(MailMessage.normalizedLineEnds(Array("a\r\nb\r\r\nc\rd\n\r\n \t".utf8)) == Array("a\nb\nc\nd".utf8))
        #expect(MailMessage.normalizedLineEnds(Array("no line end".utf8)) == Array("no line end".utf8))
        #expect(MailMessage.normalizedLineEnds("ação\r\nfim\r\n") == "ação\nfim")
        #expect(Charset.keepsASCIILineEnds("UTF-8") && Charset.keepsASCIILineEnds("\"iso-2022-jp\"") && Charset.keepsASCIILineEnds(nil))
        #expect(!Charset.keepsASCIILineEnds("UTF-16LE") && !Charset.keepsASCIILineEnds("utf-32") && !Charset.keepsASCIILineEnds("IBM037"))
        // A UTF-16 text part: its bytes are left alone until decoded, then its line ends normalised.
        let utf16: [UInt8] = [0xFF, 0xFE] + Array("linha 1\r\nlinha 2\r\n".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let message = MailMessage.parse(Array("Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n".utf8)
                                        + Array(Data(utf16).base64EncodedString().utf8))
        #expect(message.text == "linha 1\nlinha 2")
    }

    /// Base64 of every length from 0 to 300, with MIME line breaks, decodes to the original.
    @Test func base64RoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Data(bytes).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
            #expect(TransferEncoding.base64(Array(encoded.utf8)) == bytes, "length \(length)")
            #expect(TransferEncoding.base64(Array(encoded.utf8)[...]) == bytes)
        }
    }
}
