import CarteiroJSON
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

    /// Four characters at a time between quanta, byte by byte around anything else: the same
    /// bytes as a plain decoder for every split of lines, junk, padding and truncation.
    @Test func base64QuantaAndTheBytesAround() {
        func reference(_ input: [UInt8]) -> [UInt8] {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
            var out: [UInt8] = [], accumulator: UInt32 = 0, bits: UInt32 = 0
            for byte in input {
                if byte == UInt8(ascii: "=") { break }
                guard let value = alphabet.firstIndex(of: byte) else { continue }
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 { bits -= 8; out.append(UInt8(truncatingIfNeeded: accumulator >> bits)) }
            }
            return out
        }
        var state: UInt64 = 12345
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let data = (0..<300).map { _ in UInt8(truncatingIfNeeded: next()) }
        let encoded = Array(Data(data).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]).utf8)
        #expect(TransferEncoding.base64(encoded) == data)
        let pieces: [[UInt8]] = [Array("QUJD".utf8), Array("\r\n".utf8), Array(" ".utf8), Array("*".utf8), Array("Zm9v".utf8), Array("YQ".utf8), Array("=".utf8), Array("\u{00E9}".utf8)]
        for _ in 0..<2_000 {
            var input: [UInt8] = []
            for _ in 0..<Int(next() % 12) { input += pieces[Int(next() % UInt64(pieces.count))] }
            #expect(TransferEncoding.base64(input) == reference(input), "\(String(decoding: input, as: UTF8.self))")
            #expect(TransferEncoding.base64(input[...].dropFirst()) == reference(Array(input.dropFirst())))
        }
    }

    /// Field names are lower-cased byte by byte (they are printable ASCII): lookups stay
    /// case-insensitive whichever way the message or the caller spells the name.
    @Test func headerNamesMatchWhateverTheirCase() {
        let (block, bodyStart) = HeaderBlock.parse(Array("CONTENT-TYPE: text/plain\r\nX-Mixed-Case_1~: a\r\nsubject: one\r\nSUBJECT: two\r\n\r\nbody".utf8)[...])
        #expect(bodyStart == 76)
        #expect(block.fields.map(\.name) == ["CONTENT-TYPE", "X-Mixed-Case_1~", "subject", "SUBJECT"])
        #expect(block.fields.map(\.lowercasedName) == ["content-type", "x-mixed-case_1~", "subject", "subject"])
        #expect(block.raw("content-type") == Array("text/plain".utf8))
        #expect(block.raw("Content-Type") == Array("text/plain".utf8))
        #expect(block.raw("x-MIXED-case_1~") == Array("a".utf8))
        #expect(block.all("Subject") == [Array("one".utf8), Array("two".utf8)])
        #expect(block.raw("subjeçt") == nil)
        // Values are trimmed; folded lines join the first (their leading blank kept).
        let (folded, _) = HeaderBlock.parse(Array("To:  a@b \r\nSubject: \tone\r\n two \r\n\tthree\r\nX: \r\n\r\n".utf8)[...])
        #expect(folded.raw("to") == Array("a@b".utf8))
        #expect(folded.raw("subject") == Array("one two \tthree".utf8))
        #expect(folded.raw("x") == [])
        // Many short folds join in place (a copy per fold made such a header quadratic).
        let many = Array(("Subject: start\r\n" + String(repeating: " y\r\n", count: 100_000) + "\r\n").utf8)
        let (long, _) = HeaderBlock.parse(many[...])
        #expect(long.raw("subject") == Array(("start" + String(repeating: " y", count: 100_000)).utf8))
    }

    /// The UTF-8 check agrees with Swift's own on every edge of RFC 3629 (overlong forms,
    /// surrogates, past U+10FFFF, cut short) at every offset from an 8-byte boundary, and on
    /// random bytes and random text.
    @Test func utf8CheckAgreesWithSwift() {
        func swift(_ bytes: [UInt8]) -> Bool { String(validating: bytes, as: UTF8.self) != nil }
        let edges: [[UInt8]] = [
            [0x7F], [0x80], [0xC1, 0xBF], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0x9F, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xED, 0xA0, 0x80],
            [0xEF, 0xBF, 0xBF], [0xF0, 0x8F, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
            [0xFF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x41, 0x82], Array("ação".utf8), Array("😀".utf8),
        ]
        for edge in edges {
            for offset in 0..<17 {
                for tail in [0, 1, 9] {
                    let bytes = Array(repeating: UInt8(ascii: "a"), count: offset) + edge + Array(repeating: UInt8(ascii: "b"), count: tail)
                    #expect(UTF8Validation.isValid(bytes) == swift(bytes), "\(edge) at \(offset), \(tail) after")
                    #expect(UTF8Validation.isValidPlain(bytes) == swift(bytes), "\(edge) at \(offset), \(tail) after")
                }
            }
        }
        var state: UInt64 = 99
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        let pieces: [[UInt8]] = edges + [Array("texto simples ".utf8), [10], [0]]
        for _ in 0..<3_000 {
            var bytes: [UInt8] = []
            if next() % 2 == 0 {
                for _ in 0..<Int(next() % 40) { bytes.append(UInt8(truncatingIfNeeded: next() % 4 == 0 ? next() : next() % 128)) }
            } else {
                for _ in 0..<Int(next() % 12) { bytes += pieces[Int(next() % UInt64(pieces.count))] }
            }
            #expect(UTF8Validation.isValid(bytes) == swift(bytes), "\(bytes)")
            #expect(UTF8Validation.isValidPlain(bytes) == swift(bytes), "\(bytes)")
        }
        // Every sequence of up to three bytes from a set that covers each class of byte (ASCII,
        // each kind of continuation and lead, the limits), placed across a 16-byte block's edge.
        let classes: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF,
                                0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF]
        for a in classes {
            for b in classes {
                for c in classes {
                    for (prefix, suffix) in [(13, 0), (14, 3), (15, 1), (12, 20)] {
                        let bytes = Array(repeating: UInt8(ascii: "a"), count: prefix) + [a, b, c] + Array(repeating: UInt8(ascii: "z"), count: suffix)
                        #expect(UTF8Validation.isValid(bytes) == swift(bytes), "\([a, b, c]) after \(prefix)")
                    }
                }
            }
        }
        // Four-byte characters, whole and broken, across the edge.
        for second in [0x80, 0x8F, 0x90, 0xBF, 0xC0] as [UInt8] {
            for lead in [0xF0, 0xF4, 0xF5] as [UInt8] {
                for prefix in 10...16 {
                    for cut in 2...4 {
                        let bytes = Array(repeating: UInt8(ascii: "a"), count: prefix) + Array([lead, second, 0x80, 0x80].prefix(cut)) + [UInt8(ascii: "b")]
                        #expect(UTF8Validation.isValid(bytes) == swift(bytes), "\([lead, second]) cut at \(cut) after \(prefix)")
                    }
                }
            }
        }
    }

    /// Tokens of mail are lowered as `lowercased()` lowers them, ASCII or not.
    @Test func mailTokensLowerAsLowercasedDoes() {
        for token in ["text/plain", "Text/HTML", "QUOTED-PRINTABLE", "", "x-Ünïcode", "ÀB", "İ", "charset", "UTF-8", "a\u{0}B", "ß"] {
            #expect(token.lowercasedMailToken == token.lowercased(), "\(token)")
        }
        for (name, want) in [("UTF-8", "utf-8"), ("\"ISO-8859-1\"", "iso-8859-1"), (" utf-8 ", "utf-8"), ("", ""), ("\"", ""), (" \u{308}x", " \u{308}x")] {
            #expect(Charset.normalized(name) == want, "\(name)")
        }
        let parsed = MIMEHeaderValue.parse(Array("Text/Plain; CharSet=\"ISO-8859-1\"; Name*=UTF-8''a%C3%A7.txt; name=plain.txt".utf8))
        #expect(parsed.value == "text/plain")
        #expect(parsed.parameters == ["charset": "ISO-8859-1", "name": "aç.txt"])
    }

    /// Display names keep single spaces as they are; runs of blanks, and blanks around, fold.
    @Test func displayNamesFoldTheirBlanks() {
        let cases: [(String, String?)] = [
            ("João Araújo", "João Araújo"), ("  João   Araújo ", "João Araújo"), ("\"Suporte\tACME\"", "Suporte ACME"), ("", nil), ("   ", nil),
            ("=?UTF-8?Q?Cliente_N=C3=BAmero_1?=", "Cliente Número 1"), ("=?UTF-8?Q?_a__b_?=", "a b"), ("a \u{308}b", "a \u{308}b"),
        ]
        for (raw, want) in cases { #expect(AddressList.displayName(Array(raw.utf8)) == want, "\(raw)") }
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
