import Foundation
import Testing
@testable import CarteiroEvents
import CarteiroMail

/// The message corpus: each `Fixtures/NAME.eml` becomes exactly the event in `NAME.json`.
/// `CARTEIRO_UPDATE_GOLDEN=1 swift test` rewrites the expected files (then read the diff).
struct GoldenEventTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let update = ProcessInfo.processInfo.environment["CARTEIRO_UPDATE_GOLDEN"] == "1"
    static let names: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? [])
        .filter { $0.hasSuffix(".eml") }.map { String($0.dropLast(4)) }.sorted()

    static let builder = EventBuilder(threading: RequestThreading(secret: Array("test-secret".utf8)),
                                      ownAddresses: ["support@acme.example", "desk@desk.example"])

    static func event(_ name: String) throws -> (RequestEvent, [(sha256: String, data: [UInt8])]) {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name).eml")))
        // A UID from the name, so that adding a fixture changes no other golden file.
        let uid = name.utf8.reduce(UInt32(7)) { ($0 &* 31 &+ UInt32($1)) % 100_000 }
        var input = EventBuilder.Input(mailbox: "acme-in", contract: "acme", origin: .imap(uidValidity: 1_700_000_000, uid: uid),
                                       receivedAt: 1_795_608_000, bytes: bytes, size: bytes.count, oversize: false)
        // The sender authentication cases come from a mailbox that trusts its MX's verdict.
        if name.hasPrefix("auth-") { input.authservIDs = ["mx.acme.example"] }
        return builder.build(input)
    }

    @Test(arguments: names)
    func messageBecomesItsEvent(_ name: String) throws {
        let (event, _) = try Self.event(name)
        let json = event.json().rendered()
        // What the ingest writes (without the tree) is the same document.
        #expect(event.renderedBytes() == Array(json.utf8), "\(name): written differs from json()")
        let expectedPath = "\(Self.fixtures)/\(name).json"
        if Self.update {
            try json.write(toFile: expectedPath, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
        #expect(json == expected, "\(name).json differs")
        // Whatever the golden file says, the event must be valid JSON for the desk.
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil)
    }

    /// Every member an event can have, each shape of array (empty, four strings on a line,
    /// five one a line, objects), and an event without a message: written as `json()` renders it.
    @Test func eventsAreWrittenAsTheirJSONTreeRendersThem() throws {
        var (event, _) = try Self.event("gmail-attachment")
        #expect(event.renderedBytes() == event.json().renderedBytes())
        event.matchedBy = "subject"
        event.request = "R-42"
        event.tagOfOtherContract = "7"
        event.flags = ["auto-replied", "bulk"]
        event.problems = ["a", "b\n\"c\"", "d", "e", "f\u{2028}"]
        event.message?.references = ["<1@x>", "<2@x>", "<3@x>", "<4@x>", "<5@x>"]
        event.message?.cc = [ParsedAddress(name: nil, address: "c@x"), ParsedAddress(name: "Ç \u{1}", address: "d@x")]
        event.message?.textUTF8 = Array("tab\there\r\n\u{7F} end".utf8)
        event.delivery = DeliveryReport(originalMessageID: "<o@x>", failedRecipients: [.init(address: "r@x", status: "5.1.1", diagnostic: nil)], originalSubject: nil)
        #expect(event.renderedBytes() == event.json().renderedBytes())
        event.message?.references = ["<1@x>", "<2@x>", "<3@x>", "<4@x>"]
        event.problems = ["only"]
        event.delivery = DeliveryReport(originalMessageID: nil, failedRecipients: [], originalSubject: nil)
        event.attachments = []
        #expect(event.renderedBytes() == event.json().renderedBytes())
        event.message = nil
        event.contract = nil
        event.flags = []
        #expect(event.renderedBytes() == event.json().renderedBytes())
    }

    @Test func attachmentsAreStoredByContent() throws {
        let (event, contents) = try Self.event("gmail-attachment")
        let attachment = try #require(event.attachments.first)
        #expect(attachment.filename == "relatório.pdf")
        #expect(String(decoding: try #require(contents.first).data, as: UTF8.self) == "%PDF-1.4 fake pdf content for the test\n")
        #expect(attachment.sha256 == Digest.hex(Digest.sha256(Array("%PDF-1.4 fake pdf content for the test\n".utf8))))
        #expect(attachment.path == "attachments/\(attachment.sha256.prefix(2))/\(attachment.sha256)")
    }

    @Test func anOversizeMessageKeepsItsHeadersOnly() throws {
        let header = Array("From: a@b.example\r\nSubject: big\r\nMessage-ID: <big@b.example>\r\n\r\n".utf8)
        let (event, contents) = Self.builder.build(.init(mailbox: "m", contract: nil, origin: .pop3(uidl: "a/b c"), receivedAt: 0,
                                                         bytes: header, size: 90_000_000, oversize: true))
        #expect(event.flags == ["oversize"])
        #expect(event.message?.subject == "big")
        #expect(event.messageSize == 90_000_000)
        #expect(contents.isEmpty)
        #expect(event.id == "m/uidl/a%2Fb%20c")
    }

    @Test func garbageIsStillAnEventFlaggedUnparsed() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...3000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let (event, _) = Self.builder.build(.init(mailbox: "m", contract: nil, origin: .imap(uidValidity: 1, uid: 1), receivedAt: 0,
                                                      bytes: bytes, size: bytes.count, oversize: false))
            #expect(event.id == "m/1/1")
            _ = event.json().rendered()
        }
    }
}
