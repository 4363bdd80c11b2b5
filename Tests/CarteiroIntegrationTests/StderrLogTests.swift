import Logging
import Testing
@testable import CarteiroDaemon

/// Log values on stderr: a value that needs nothing is written as it is (the common case,
/// told by one pass over its bytes); anything else takes the escaping way. Both agree.
struct StderrLogTests {
    @Test func plainValuesPassAndTheRestAreEscapedAsBefore() {
        #expect(StderrLogHandler.quoted("acme-in") == "acme-in")
        #expect(StderrLogHandler.quoted("<abc@acme.example>") == "<abc@acme.example>")
        #expect(StderrLogHandler.quoted("João") == "João")
        #expect(StderrLogHandler.quoted("") == "\"\"")
        #expect(StderrLogHandler.quoted("two words") == "\"two words\"")
        #expect(StderrLogHandler.quoted("forged\n<3>line") == "\"forged\\n<3>line\"")
        #expect(StderrLogHandler.quoted("c1\u{85}x") == "\"c1\\u{85}x\"")
        #expect(StderrLogHandler.quoted("sep\u{2028}x") == "\"sep\\u{2028}x\"")
        #expect(StderrLogHandler.quoted("back\\slash") == "back\\\\slash")
        // Every value, plain or not, reads the same by both ways.
        let pieces = ["a", "Ç", "\u{85}", "\u{A0}", "\u{2028}", "€", "\"", "\\", " ", "\t", "\u{7F}", "\u{1}", "z9", "日本"]
        var state: UInt64 = 7
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var text = ""
            for k in 0..<Int(state >> 60) { text += pieces[Int((state >> UInt64(k * 4)) & 0xF) % pieces.count] }
            #expect(StderrLogHandler.quoted(text) == StderrLogHandler.escapedQuoted(text), "\(Array(text.unicodeScalars))")
        }
    }

    /// A batch's lines (one write for a commit's "message handed on") read as lines logged
    /// one by one do: leading fields first, then by name; the handler's own metadata unless
    /// the line names the field; values quoted as needed.
    @Test func aBatchOfLinesReadsAsLinesLoggedOneByOne() {
        var handler = StderrLogHandler(label: "test")
        handler.terminal = false
        handler.metadata = ["host": "desk-1"]
        let text = handler.rendered(.info, "message handed on", lines: [
            [("type", "request.new"), ("mailbox", "acme-in"), ("from", "João <joao@acme.example>"), ("event", "acme-in/1/2")],
            [("mailbox", "b"), ("host", "override")],
        ])
        #expect(String(decoding: text, as: UTF8.self) == """
            <6>message handed on mailbox=acme-in event=acme-in/1/2 from="João <joao@acme.example>" host=desk-1 type=request.new
            <6>message handed on mailbox=b host=override

            """)
    }
}
