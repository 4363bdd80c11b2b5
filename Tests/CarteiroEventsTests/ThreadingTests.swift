import Testing
import CarteiroEvents
import CarteiroMail

struct ThreadingTests {
    let threading = RequestThreading(secret: Array("test-secret".utf8))

    @Test func ownMessageIDsRoundTrip() throws {
        let id = try #require(threading.messageID(request: "4711", nonce: "n1", host: "desk.example"))
        #expect(id == "<carteiro.4711.n1.6126b0a4740e7be7ec6d@desk.example>")
        #expect(threading.request(fromMessageID: id) == "4711")
    }

    @Test func forgedOrForeignIDsDoNotMatch() {
        #expect(threading.request(fromMessageID: "<carteiro.4711.n1.00000000000000000000@desk.example>") == nil)
        #expect(threading.request(fromMessageID: "<carteiro.4712.n1.6126b0a4740e7be7ec6d@desk.example>") == nil)
        #expect(RequestThreading(secret: Array("other".utf8)).request(fromMessageID: "<carteiro.4711.n1.6126b0a4740e7be7ec6d@desk.example>") == nil)
        #expect(threading.request(fromMessageID: "<CAK8Xy@mail.gmail.com>") == nil)
        #expect(threading.messageID(request: "bad id", nonce: "n", host: "h") == nil)
    }

    @Test func subjectTags() {
        #expect(threading.request(fromSubject: "RE: RES: [REQ#4711] Impressora") == "4711")
        #expect(threading.request(fromSubject: "[REQ#] nothing") == nil)
        #expect(threading.request(fromSubject: "[REQ#a b] no") == nil)
        #expect(threading.request(fromSubject: "[REQ# x] [REQ#42]") == "42")
    }

    @Test func automaticMailFlags() {
        func flags(_ header: String, from: String = "x@y.example") -> [String] {
            let (block, _) = HeaderBlock.parse(Array((header + "\r\n\r\n").utf8)[...])
            return AutomaticMail.flags(block, from: ParsedAddress(name: nil, address: from), ownAddresses: ["desk@desk.example"])
        }
        #expect(flags("Auto-Submitted: auto-replied (vacation)") == ["auto-replied"])
        #expect(flags("Auto-Submitted: auto-generated") == ["auto-generated"])
        #expect(flags("Auto-Submitted: no") == [])
        #expect(flags("X-Autoreply: yes") == ["auto-replied"])
        #expect(flags("Precedence: junk") == ["bulk"])
        #expect(flags("Precedence: first-class") == [])
        #expect(flags("Subject: hi", from: "DESK@desk.example") == ["loop"])
    }
}
