import Foundation
import Testing
import CarteiroJSON
import CarteiroTesting

/// The reader of Carteiro's own files: what the writer renders reads back the same; anything
/// else (cut short, too deep, a fraction, a bad escape) is nil, never a trap.
struct JSONReaderTests {
    static let document = JSONValue.object([
        ("id", .string("acme-in/1700000000/42")),
        ("n", .number(-9_223_372_036_854_775_807)),
        ("ok", .bool(true)),
        ("none", .null),
        ("text", .string("linha 1\nlinha 2\t\"aspas\" \\ \u{1} \u{2028} ação 📨")),
        ("list", .array([.string("a"), .string("b")])),
        ("nested", .object([("empty", .array([])), ("object", .object([])), ("deep", .array([.array([.number(0)])]))])),
        ("same", .number(1)),
        ("same", .number(2)),
    ])

    @Test func whatTheWriterRendersReadsBackTheSame() throws {
        for bytes in [Self.document.renderedBytes(), Self.document.renderedCompact()] {
            let read = try #require(JSONValue.parse(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            #expect(read == Self.document)
            #expect(read["same"]?.int == 1, "the first of a repeated key")
            #expect(read["nested"]?["deep"]?.array?.first?.array?.first?.int == 0)
            #expect(read["text"]?.string?.contains("📨") == true)
        }
        #expect(JSONValue.parse(#"  {"a": "\u00e7\ud83d\udce8\/"}  "#)?["a"]?.string == "ç📨/")
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a: 1}", "[1 2]", "01", "-", "1.5", "1e3", "+1",
        "9223372036854775808", "\"\\x\"", "\"\\ud83d\"", "\"\\udce8\"", "\"\u{1}\"", "\"open", "tru", "nul", "[]]", "{} {}",
        "\"\\u12\"", "[\"a\",]",
    ])
    func whatIsNotOneJSONValueIsNil(_ text: String) {
        #expect(JSONValue.parse(text) == nil, "\(text)")
    }

    @Test func invalidUTF8InAStringIsRefused() {
        #expect(JSONValue.parse([0x22, 0xFF, 0xFE, 0x22]) == nil)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(JSONValue.parse(deep) == nil)
        let allowed = String(repeating: "[", count: JSONValue.maximumDepth) + String(repeating: "]", count: JSONValue.maximumDepth)
        #expect(JSONValue.parse(allowed) != nil)
    }

    /// Every prefix of a document, and random damage to it, is read or refused, never a trap.
    @Test func cutAndDamagedFilesNeverTrap() {
        var generator = SeededGenerator()
        let bytes = Self.document.renderedBytes()
        for length in 0..<bytes.count {
            let prefix = Array(bytes[..<length])
            #expect(JSONValue.parse(prefix) == nil || length >= bytes.count - 1, "seed \(generator.seed), a prefix of \(length) bytes")
        }
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = JSONValue.parse(damaged)
        }
    }

    @Test func aMemberIsReplacedAlongAPath() throws {
        let replaced = Self.document.replacing(["nested", "object"], with: .string("x"))
        #expect(replaced["nested"]?["object"]?.string == "x")
        #expect(replaced["nested"]?["empty"]?.array?.isEmpty == true)
        #expect(Self.document.replacing(["missing", "path"], with: .null) == Self.document)
    }
}
