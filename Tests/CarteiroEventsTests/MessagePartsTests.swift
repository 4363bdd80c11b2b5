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
