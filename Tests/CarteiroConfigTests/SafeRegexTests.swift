import Foundation
import Testing
@testable import CarteiroConfig
import CarteiroTesting

/// The regular expressions routing rules will use: the same answers as ICU's engine on the
/// documented subset, errors with their place, and no pattern or text that makes a match slow.
struct SafeRegexTests {
    @Test func agreesWithICUOnRandomPatternsAndTexts() throws {
        var generator = SeededGenerator()
        let atoms = ["a", "b", ".", "[ab]", "[^a]", "\\d", "(a|b)", "(ab)", "c"]
        let quantifiers = ["", "", "*", "+", "?", "{2}", "{1,3}", "{0,}"]
        var compared = 0
        for _ in 0..<2_000 {
            var pattern = Bool.random(using: &generator) ? "^" : ""
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                pattern += atoms.randomElement(using: &generator)! + quantifiers.randomElement(using: &generator)!
            }
            if Bool.random(using: &generator) { pattern += "$" }
            if Int.random(in: 0..<5, using: &generator) == 0 { pattern += "|b1" }
            let regex = try SafeRegex(pattern)
            let icu = try NSRegularExpression(pattern: pattern)
            for _ in 0..<5 {
                let text = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in "ab1c".randomElement(using: &generator)! })
                let expected = icu.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
                #expect(regex.matches(text) == expected, "\(pattern) on \(text)")
                compared += 1
            }
        }
        #expect(compared == 10_000)
    }

    @Test func classesEscapesAndCase() throws {
        #expect(try SafeRegex(#"^invoice\s+#\d{3,}$"#).matches("invoice  #1234"))
        #expect(try !SafeRegex(#"^invoice\s+#\d{3,}$"#).matches("invoice #12"))
        #expect(try SafeRegex("[a-c-]x").matches("-x"))
        #expect(try SafeRegex(#"\.example$"#).matches("vip.example"))
        #expect(try !SafeRegex(#"\.example$"#).matches("vipXexample"))
        #expect(try SafeRegex("fatura", caseInsensitive: true).matches("Sua FATURA de março"))
        #expect(try SafeRegex("ç", caseInsensitive: true).matches("AÇÃO"))
        #expect(try SafeRegex("(?:re|fw): ").matches("Fw: x") == false)
        #expect(try SafeRegex("(?:re|fw): ", caseInsensitive: true).matches("Fw: x"))
        // Folding applies to literals, never to escapes: \D stays "not a digit".
        #expect(try SafeRegex("^\\D+$", caseInsensitive: true).matches("abc"))
        #expect(try !SafeRegex("^\\D+$", caseInsensitive: true).matches("a1c"))
        #expect(try SafeRegex("^[A-F]+\\S$", caseInsensitive: true).matches("beef!"))
        #expect(try SafeRegex("a\\tb").matches("a\tb"))
        // Other engines' escapes would silently match a letter: refused at their place.
        for (pattern, offset) in [("x\\b", 1), ("(a)\\1", 3), ("[\\A]", 1), ("\\z", 0)] {
            #expect(throws: SafeRegex.SyntaxError.self) { try SafeRegex(pattern) }
            do { _ = try SafeRegex(pattern) } catch { #expect(error.offset == offset, "\(pattern)") }
        }
    }

    @Test func mistakesSayWhere() {
        let cases: [(String, Int)] = [("(ab", 0), ("ab)", 2), ("[ab", 0), ("*a", 0), ("a{3,1}", 1), ("[z-a]", 3), ("a\\", 1), ("a{1001}", 1)]
        for (pattern, offset) in cases {
            #expect(throws: SafeRegex.SyntaxError.self, "\(pattern)") { try SafeRegex(pattern) }
            do { _ = try SafeRegex(pattern) } catch { #expect(error.offset == offset, "\(pattern): \(error)") }
        }
        #expect(throws: SafeRegex.SyntaxError.self) { try SafeRegex(String(repeating: "a", count: 1_001)) }
        #expect(throws: SafeRegex.SyntaxError.self) { try SafeRegex("(a{1000}){1000}") }
        #expect(throws: SafeRegex.SyntaxError.self) { try SafeRegex(String(repeating: "(", count: 200) + String(repeating: ")", count: 200)) }
    }

    /// What makes a backtracking engine take exponential time is linear here: these finish (a
    /// backtracking engine would not, in the lifetime of the test run).
    @Test func hostilePatternsAndTextsStayLinear() throws {
        let text = String(repeating: "a", count: 20_000) + "!"
        for pattern in ["(a+)+$", "^(a|a)*$", "(a*)*b", "^(a|aa)+$", "(.*a){20}$"] {
            #expect(try !SafeRegex(pattern).matches(text), "\(pattern)")
        }
        let header = String(repeating: "x@", count: 10_000)
        #expect(try !SafeRegex(#"^([a-z]+@)+[a-z]+\.[a-z]+$"#).matches(header))
    }
}
