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

/// A subject tag is typed by anyone: across contracts it attaches nothing.
struct CrossContractThreadingTests {
    let threading = RequestThreading(secret: Array("cross-contract-secret".utf8))
    var builder: EventBuilder { EventBuilder(threading: threading, ownAddresses: [], contractOfRequest: { $0 == "42" ? "acme" : nil }) }

    func event(_ header: String, contract: String) -> RequestEvent {
        let bytes = Array((header + "\r\nFrom: a@b.example\r\n\r\nbody\r\n").utf8)
        return builder.build(.init(mailbox: "in", contract: contract, origin: .imap(uidValidity: 1, uid: 1), receivedAt: 0,
                                   bytes: bytes, size: bytes.count, oversize: false)).event
    }

    @Test func aTagOfAnotherContractsRequestIsANewRequestWithAHint() {
        let foreign = event("Subject: Re: [REQ#42] impressora", contract: "beta")
        #expect(foreign.type == "request.new")
        #expect(foreign.request == nil)
        #expect(foreign.tagOfOtherContract == "42")
        #expect(String(decoding: foreign.json().renderedBytes(), as: UTF8.self).contains("\"tag_of_other_contract\": \"42\""))
        let own = event("Subject: Re: [REQ#42] impressora", contract: "acme")
        #expect(own.type == "request.reply" && own.request == "42" && own.matchedBy == "subject-tag")
        // A request whose contract Carteiro never learnt: the tag still matches.
        let unknown = event("Subject: Re: [REQ#77] outro", contract: "beta")
        #expect(unknown.type == "request.reply" && unknown.request == "77")
    }

    @Test func aKeyedMessageIDAcrossContractsStaysAReplyFlagged() throws {
        let id = try #require(threading.messageID(request: "42", nonce: "n1", host: "desk.example"))
        let reply = event("Subject: Re: algo\r\nIn-Reply-To: \(id)", contract: "beta")
        #expect(reply.type == "request.reply" && reply.request == "42" && reply.matchedBy == "message-id")
        #expect(reply.flags.contains("other-contract"))
    }
}
