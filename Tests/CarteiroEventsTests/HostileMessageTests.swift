import Foundation
import Testing
import CarteiroMail
import CarteiroEvents

/// Messages written to hurt the parser: impossible numbers, shapes that make a naive parser
/// quadratic, and nesting beyond reason. Each must parse (or be flagged) without a trap and
/// in time linear in its size.
struct HostileMessageTests {
    static func message(_ header: String, body: String = "body\r\n") -> [UInt8] {
        Array((header + "\r\n\r\n" + body).utf8)
    }

    @Test(arguments: [
        "Wed, 25 Nov 99999999999999999 08:59:58 -0300",
        "Wed, 25 Nov 9223372036854775807 08:59:58 -0300",
        "Wed, 25 Nov 4611686018427387904 08:59:58 -0300",
        "25 Nov 10000 08:59:58 +0000",
        "25 Nov -9223372036854775808 08:59:58 +0000",
        "Nov 25 08:59:58 9223372036854775807",
        "25 Nov 2026 08:59:58 +9999",
        "25 Nov 2026 08:59:58 +-999",
        "25 Nov 2026 08:59:-9223372036854775808 +0000",
        "99999999999999999999 Nov 2026 08:59:58 +0000",
    ])
    func impossibleDatesAreNotDatesNotTraps(_ date: String) {
        let parsed = MailMessage.parse(Self.message("Date: \(date)\r\nSubject: x"))
        if let seconds = parsed.date {
            // Whatever was read lies within four-digit years, and writes back as such.
            #expect(seconds >= -62_135_596_800 && seconds <= 253_402_300_799 + 200_000)
            #expect(MailDate.iso8601(seconds).count == 20)
        }
    }

    @Test func aDateThatIsFineStillParses() {
        #expect(MailDate.parse("Wed, 25 Nov 2026 08:59:58 -0300").map(MailDate.iso8601) == "2026-11-25T11:59:58Z")
        #expect(MailDate.iso8601(.max) == "9999-12-31T23:59:59Z")
        #expect(MailDate.iso8601(.min) == "1-01-01T00:00:00Z")
    }

    /// 800 KB of `=?x?q?` openings that never close: each opening once looked for its end all
    /// the way to the end of the subject (hours of work for one message).
    @Test func unclosedEncodedWordsAreLinear() {
        let subject = String(repeating: "=?utf-8?q?a", count: 80_000)
        let started = ContinuousClock.now
        let parsed = MailMessage.parse(Self.message("Subject: \(subject)"))
        #expect(parsed.subject?.utf8.count == subject.utf8.count)
        // A guard against a hang, not a speed target (bench/ has those): linear work is ~0.1 s.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func manyBase64OpeningsWithSpacesAreLinear() {
        let subject = String(repeating: "=?utf-8?b?QUJD ", count: 60_000) + "?="
        let started = ContinuousClock.now
        let parsed = MailMessage.parse(Self.message("Subject: \(subject)"))
        #expect(parsed.subject != nil)
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func encodedWordsStillDecode() {
        #expect(EncodedWords.decode(Array("=?ISO-8859-1?Q?Jo=E3o?= =?UTF-8?B?QXJhw7pqbw==?= ok".utf8)) == "JoãoAraújo ok")
        #expect(EncodedWords.decode(Array("=?utf-8?q?a?= b =?x?q?unclosed".utf8)) == "a b =?x?q?unclosed")
        #expect(EncodedWords.decode(Array("=?utf-8?b?QU JD?=".utf8)) == "=?utf-8?b?QU JD?=")
    }

    @Test func multipartsNestedBeyondReasonAreCutNotRecursedInto() {
        var body = ""
        for level in 0..<5000 { body += "--b\(level)\r\nContent-Type: multipart/mixed; boundary=b\(level + 1)\r\n\r\n" }
        let parsed = MailMessage.parse(Self.message("Subject: deep\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0", body: body))
        #expect(parsed.subject == "deep")
        #expect(!parsed.problems.isEmpty)
    }

    @Test func addressesWithDeepCommentsAndQuotesDoNotTrap() {
        let from = String(repeating: "(", count: 100_000) + "a@b" + String(repeating: ")", count: 50_000) + "\"\\"
        let parsed = MailMessage.parse(Self.message("From: \(from)\r\nTo: <<<<>>>>, \"\", <@:>, ,,,;;;:"))
        _ = parsed.from
        #expect(parsed.header.fields.count == 2)
    }
}

/// Attachment names as senders write them, and the name the desk may use.
struct SafeNameTests {
    @Test(arguments: [
        ("../../etc/passwd", "passwd"), ("/etc/shadow", "shadow"), ("C:\\Windows\\evil.exe", "evil.exe"),
        ("a\u{0}b\r\nc.txt", "a_b__c.txt"), ("..", "attachment.pdf"), ("-rf .txt", "rf .txt"), ("..hidden", "hidden"),
        ("relatório.pdf", "relatório.pdf"), ("a:b*c?.doc", "a_b_c_.doc"), ("", "attachment.pdf"),
    ])
    func safeNames(_ original: String, _ expected: String) {
        #expect(StoredAttachment.safeName(original, contentType: "application/pdf") == expected)
    }

    @Test func longNamesKeepTheirExtension() {
        let name = StoredAttachment.safeName(String(repeating: "ç", count: 500) + ".pdf", contentType: "application/pdf")
        #expect(name.utf8.count <= 200)
        #expect(name.hasSuffix(".pdf"))
        #expect(StoredAttachment.safeName(nil, contentType: "message/rfc822") == "attachment.eml")
    }
}
