import Testing
import CarteiroMail

/// The pieces of the message parser, with real-world shapes.
struct MessagePartsTests {
    @Test func encodedWords() {
        #expect(EncodedWords.decode(Array("=?ISO-8859-1?Q?Jo=E3o_Ara=FAjo?=".utf8)) == "João Araújo")
        #expect(EncodedWords.decode(Array("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=".utf8)) == "éé")
        #expect(EncodedWords.decode(Array("Re: =?windows-1252?Q?=93quoted=94?= text".utf8)) == "Re: “quoted” text")
        #expect(EncodedWords.decode(Array("=?utf-8?q?broken".utf8)) == "=?utf-8?q?broken")
        #expect(EncodedWords.decode(Array("=?x-unknown?Q?caf=C3=A9?=".utf8)) == "café")
        #expect(EncodedWords.decode(Array("plain ação".utf8)) == "plain ação")
    }

    @Test func addressLists() {
        let list = AddressList.parse(Array("\"Souza, Ana\" <ana@x.example>, bob@y.example (Bob B), =?UTF-8?Q?Jos=C3=A9?= <jose@z.example>, Undisclosed recipients:;".utf8))
        #expect(list == [ParsedAddress(name: "Souza, Ana", address: "ana@x.example"),
                         ParsedAddress(name: "Bob B", address: "bob@y.example"),
                         ParsedAddress(name: "José", address: "jose@z.example")])
        #expect(AddressList.parse(Array("team: a@x.example, b@x.example;".utf8)).map(\.address) == ["a@x.example", "b@x.example"])
        #expect(AddressList.parse(Array("<@relay.example:user@host.example>".utf8)).map(\.address) == ["user@host.example"])
    }

    @Test func dates() {
        #expect(MailDate.parse("Wed, 25 Nov 2026 08:59:58 -0300").map(MailDate.iso8601) == "2026-11-25T11:59:58Z")
        #expect(MailDate.parse("25 Nov 26 08:59 GMT").map(MailDate.iso8601) == "2026-11-25T08:59:00Z")
        #expect(MailDate.parse("Wed, 25 Nov 2026 08:59:58 -0300 (BRT)").map(MailDate.iso8601) == "2026-11-25T11:59:58Z")
        #expect(MailDate.parse("Thu, 1 Jan 1970 00:00:00 +0000") == 0)
        #expect(MailDate.parse("not a date") == nil)
        #expect(MailDate.parse("Wed, 45 Nov 2026 08:59:58 -0300") == nil)
    }

    @Test func quotedPrintableAndBase64AreLenient() {
        #expect(TransferEncoding.quotedPrintable(Array("caf=C3=A9 =\r\nsoft = not hex =4".utf8)) == Array("café soft = not hex =4".utf8))
        #expect(TransferEncoding.base64(Array("w6k=\r\n".utf8)) == Array("é".utf8))
        #expect(TransferEncoding.base64(Array("w 6 k".utf8)) == Array("é".utf8))
    }

    /// The quoted-printable decoder (one pass over a buffer) against a plain reading of the
    /// rules, bodies and headers (RFC 2047's Q, where "_" is a space): soft breaks, blanks
    /// before them, broken escapes, an "=" at the very end.
    @Test func quotedPrintableAgreesWithAPlainReadingOfTheRules() {
        func reference(_ input: [UInt8], header: Bool) -> [UInt8] {
            func hex(_ byte: UInt8) -> UInt8? { UInt8(String(UnicodeScalar(byte)), radix: 16) }
            var output: [UInt8] = []
            var i = 0
            while i < input.count {
                if input[i] == UInt8(ascii: "=") {
                    var j = i + 1
                    while j < input.count, input[j] == 32 || input[j] == 9 { j += 1 }
                    if j < input.count, input[j] == 13 || input[j] == 10 {
                        i = (input[j] == 13 && j + 1 < input.count && input[j + 1] == 10) ? j + 2 : j + 1
                    } else if j >= input.count && !header {
                        i = input.count
                    } else if i + 2 < input.count, let high = hex(input[i + 1]), let low = hex(input[i + 2]) {
                        output.append(high << 4 | low)
                        i += 3
                    } else {
                        output.append(input[i])
                        i += 1
                    }
                } else {
                    output.append(header && input[i] == UInt8(ascii: "_") ? 32 : input[i])
                    i += 1
                }
            }
            return output
        }
        let alphabet = Array("==== \t\r\n\r\nAF09af3Dgz_.".utf8) + [0xC3, 0xA9, 0x00, 0xFF]
        var state: UInt64 = 20261130
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(bound))
        }
        // Text as it mostly is: long plain runs (read eight bytes at a time) with a few escapes,
        // underscores and breaks, at every offset from the start and the end.
        let sparse = Array("abcdefghijklmnopqrstuvwxyz .,".utf8) + [0xC3, 0xA9]
        for round in 0..<40_000 {
            let dense = round < 20_000
            let input = dense ? (0..<next(40)).map { _ in alphabet[next(alphabet.count)] }
                              : (0..<next(120)).map { _ in next(12) == 0 ? alphabet[next(alphabet.count)] : sparse[next(sparse.count)] }
            let header = round % 2 == 1
            let decoded = TransferEncoding.quotedPrintable(input, header: header)
            #expect(decoded == reference(input, header: header), "\(input) header: \(header)")
            // A collection that is not one buffer takes the same way.
            #expect(TransferEncoding.quotedPrintable(input.lazy.map { $0 }, header: header) == decoded)
            if decoded != reference(input, header: header) { break }
        }
    }

    @Test func rfc2231Parameters() {
        let value = MIMEHeaderValue.parse(Array("attachment; filename*0*=UTF-8''rel%C3%A1; filename*1=torio.pdf".utf8))
        #expect(value.value == "attachment")
        #expect(value.parameters["filename"] == "relátorio.pdf")
        let type = MIMEHeaderValue.parse(Array("Text/Plain; charset=\"ISO-8859-1\" (comment); format=flowed".utf8))
        #expect(type.value == "text/plain")
        #expect(type.parameters["charset"] == "ISO-8859-1")
        #expect(type.parameters["format"] == "flowed")
    }

    @Test func charsets() {
        #expect(Charset.decode([0xE3], charset: "ISO-8859-1") == "ã")
        #expect(Charset.decode([0x80], charset: "windows-1252") == "€")
        #expect(Charset.decode([0x1B, 0x24, 0x42, 0x46, 0x7C, 0x1B, 0x28, 0x42], charset: "iso-2022-jp") == "日")
        #expect(Charset.decode([0xA4], charset: "iso-8859-15") == "€")
        #expect(Charset.decode([0xE3], charset: "utf-8") == nil)
        #expect(Charset.decodeLeniently([0xE3], charset: "utf-8") == ("ã", false))
    }

    @Test func deepNestingIsCut() {
        var message = "Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
        for level in 1..<60 { message += "--b\(level - 1)\r\nContent-Type: multipart/mixed; boundary=b\(level)\r\n\r\n" }
        let parsed = MailMessage.parse(Array(message.utf8))
        #expect(parsed.problems.contains("nested too deeply"))
    }
}
