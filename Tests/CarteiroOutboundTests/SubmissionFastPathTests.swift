import Foundation
import Testing
@testable import CarteiroOutbound
import CarteiroTesting

/// The fast path of `Submission.decode` agrees with Foundation's on everything it accepts, and
/// leaves to Foundation whatever it is not sure of (which Foundation then explains).
struct SubmissionFastPathTests {
    static let corpus: [String] = [
        #"{"mailbox": "out", "to": ["Ana <ana@example.com>"], "subject": "Olá", "text": "linha 1\nlinha 2"}"#,
        #"{"workflow": "approval", "step": "notify", "request": "42", "vars": {"request": {"subject": "VPN", "priority": 2, "urgent": true, "none": null}, "contract.note": "x"}}"#,
        #"{"request": "7", "reply_to": "a@b.example", "one_message": false, "cc": [], "bcc": ["c@d.example"], "references": ["<a@b>", "<c@d>"]}"#,
        #"{"request": "7", "reply_to": ["a@b.example", "c@d.example"], "in_reply_to": "<x@y>", "html": "<p>\u00e9\ud83d\ude00\/</p>"}"#,
        #"{"mailbox": "x", "attachments": [{"name": "a.txt", "type": "text/plain", "content_base64": "aGk="}, {"name": "b.pdf", "path": "b.pdf"}]}"#,
        #"  {"to": null, "vars": null, "subject": null}  "#,
        #"{"vars": {"a.b": "x", "a": {"b": "y"}}}"#,
        #"{"vars": {"n": -12, "z": 0}}"#,
        // Left to Foundation, which explains or decides:
        #"{"to": "a@b.example"}"#,
        #"{"subjet": "typo"}"#,
        #"{"vars": {"n": 1.5}}"#,
        #"{"vars": {"n": 1e3}}"#,
        #"{"vars": {"list": [1]}}"#,
        #"{"subject": "a", "subject": "b"}"#,
        #"{"subject": "\u0000"}"#,
        #"{"subject": "\ud800"}"#,
        #"{"one_message": 1}"#,
        #"{"attachments": [{"type": "x"}]}"#,
        #"{"attachments": [{"name": "a", "contnt_base64": "x"}]}"#,
        #"["not an object"]"#,
        #"{"subject": "unterminated}"#,
        #"{"subject": "x"} trailing"#,
        "",
        "\u{FEFF}{\"subject\": \"bom\"}",
    ]

    func check(_ text: [UInt8]) -> Bool? {
        let fast = SubmissionFastPath.decode(text)
        let slow = Submission.decodeWithFoundation(Data(text))
        if let fast {
            #expect(slow == .success(fast), "\(String(decoding: text, as: UTF8.self))")
            return true
        }
        // Whatever the fast path leaves, the public decode answers as Foundation does.
        #expect(Submission.decode(Data(text)) == slow)
        return false
    }

    @Test func theCorpusAgrees() {
        let accepted = Self.corpus.map { check(Array($0.utf8)) }
        #expect(accepted.prefix(8).allSatisfy { $0 == true }, "the common submissions take the fast path")
        #expect(accepted.dropFirst(8).allSatisfy { $0 == false }, "the doubtful ones are left to Foundation")
    }

    /// Random submissions, some valid and some not, built from the keys and values that matter.
    @Test func randomSubmissionsAgree() {
        var generator = SeededGenerator()
        let strings = ["", "a", "Olá", "\\n", "\\\"", "\\u00e9", "\\ud83d\\ude00", "tab\\t", "\\/", "x.y", "{x", "\\u0041"]
        func randomString() -> String { "\"" + (0..<Int.random(in: 0...3, using: &generator)).map { _ in strings.randomElement(using: &generator)! }.joined() + "\"" }
        func randomValue(_ depth: Int) -> String {
            switch Int.random(in: 0...9, using: &generator) {
            case 0...3: return randomString()
            case 4: return String(Int.random(in: -1000...1000, using: &generator))
            case 5: return Bool.random(using: &generator) ? "true" : "false"
            case 6: return "null"
            case 7: return "[" + (0..<Int.random(in: 0...2, using: &generator)).map { _ in depth > 2 ? randomString() : randomValue(depth + 1) }.joined(separator: ",") + "]"
            default:
                guard depth < 3 else { return randomString() }
                return "{" + (0..<Int.random(in: 0...3, using: &generator)).map { _ in randomString() + ":" + randomValue(depth + 1) }.joined(separator: ",") + "}"
            }
        }
        let keys = Submission.knownKeys + ["subjet", "extra"]
        var accepted = 0
        for _ in 0..<3000 {
            let members = (0..<Int.random(in: 0...5, using: &generator)).map { _ -> String in
                let key = keys.randomElement(using: &generator)!
                let value: String = switch key {
                // (A `where` binds to the last pattern only: the list is tested as one condition.)
                case let list where ["to", "cc", "bcc", "references", "reply_to"].contains(list) && Bool.random(using: &generator):
                    "[" + (0..<Int.random(in: 0...2, using: &generator)).map { _ in randomString() }.joined(separator: ", ") + "]"
                case "vars" where Bool.random(using: &generator): "{" + (0..<3).map { _ in randomString() + ": " + randomValue(1) }.joined(separator: ",") + "}"
                case "one_message" where Bool.random(using: &generator): "true"
                case "attachments" where Bool.random(using: &generator): #"[{"name": "a", "type": "text/plain", "content_base64": "aGk="}]"#
                case "vars", "to", "cc", "bcc", "references", "reply_to", "one_message", "attachments": randomValue(1)
                default: Bool.random(using: &generator) ? randomString() : randomValue(1)
                }
                return "\"\(key)\": \(value)"
            }
            let text = "{" + members.joined(separator: ", ") + "}"
            if check(Array(text.utf8)) == true { accepted += 1 }
        }
        #expect(accepted > 300, "only \(accepted) of 3000 took the fast path (seed \(generator.seed))")
    }
}
