import Foundation
import Testing
@testable import CarteiroConfig

/// No input makes the parser crash or hang, and every diagnostic points inside the file.
/// Inputs are generated from a fixed seed, so a failure reproduces.
struct ConfigFuzzTests {
    /// SplitMix64: small, fast, and the same sequence on every machine.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seedText: String = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/valid/spec-example.conf")
        return (try? String(contentsOf: url, encoding: .utf8)) ?? "[daemon]\nsystem_outbound = \"x\"\n"
    }()

    /// Pieces of the language, so that mutations stay close to real mistakes.
    static let fragments = ["[", "]", "[[", "\"", "'", "\"\"\"", "'''", "=", ".", ",", "#", "\\", "\\u", "\\U0010FFFF",
                            "\n", "\r\n", "\r", "\t", " ", "{", "}", "true", "false", "-", "+", "0", "9999999999999999999999",
                            "[mailbox.x]", "[workflow.a.step.b]", "include = \"*\"", "type = \"inbound\"", "\u{0}", "\u{7F}",
                            "é", "😀", "\u{FEFF}", "= [", "[[[[[[[[[[", "]]]]", "\"\\", "1_000", "__", "a.b.c = 1"]

    func check(_ text: String) {
        let result = ConfigParser.parse(text, file: "fuzz.conf")
        let lineCount = text.unicodeScalars.reduce(1) { $0 + ($1 == "\n" || $1 == "\r" ? 1 : 0) }
        for diagnostic in result.diagnostics.items {
            #expect(diagnostic.location.line >= 1 && diagnostic.location.line <= lineCount + 1)
            #expect(diagnostic.location.column >= 1)
            #expect(!diagnostic.message.isEmpty)
        }
        // The whole pipeline, schema and validation included, must cope with whatever parsed.
        let outcome = ConfigurationFile.load(text: text, file: "fuzz.conf", directory: "/nonexistent")
        #expect(outcome.configuration != nil || !outcome.errors.isEmpty)
    }

    @Test func mutationsOfARealConfiguration() {
        var random = Generator(state: 0xC0FFEE)
        let base = Array(Self.seedText.unicodeScalars)
        for _ in 0..<1500 {
            var scalars = base
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let position = Int.random(in: 0...scalars.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0 where !scalars.isEmpty:
                    let end = min(scalars.count, position + Int.random(in: 1...20, using: &random))
                    if position < end { scalars.removeSubrange(position..<end) }
                case 1:
                    let fragment = Self.fragments.randomElement(using: &random)!
                    scalars.insert(contentsOf: fragment.unicodeScalars, at: position)
                case 2 where position < scalars.count:
                    scalars[position] = Unicode.Scalar(UInt8.random(in: 0...127, using: &random))
                default:
                    let fragment = Self.fragments.randomElement(using: &random)!
                    scalars.insert(contentsOf: fragment.unicodeScalars, at: min(position, scalars.count))
                }
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            check(text)
        }
    }

    @Test func randomGarbage() {
        var random = Generator(state: 42)
        for _ in 0..<1500 {
            var text = ""
            for _ in 0..<Int.random(in: 0...200, using: &random) {
                if Bool.random(using: &random) {
                    text += Self.fragments.randomElement(using: &random)!
                } else if let scalar = Unicode.Scalar(UInt32.random(in: 0...0x2FFF, using: &random)) {
                    text.unicodeScalars.append(scalar)
                }
            }
            check(text)
        }
    }

    @Test func invalidUTF8IsReportedWithItsPosition() throws {
        var diagnostics = DiagnosticList()
        let data = Data("[daemon]\nsystem_outbound = \"a".utf8) + Data([0xC3, 0x28]) + Data("\"\n".utf8)
        #expect(ConfigLoader.decodeUTF8(data, file: "bin.conf", diagnostics: &diagnostics) == nil)
        #expect(diagnostics.items.map(\.description) == ["bin.conf:2:21: the file is not valid UTF-8 here (save it as UTF-8)"])
    }

    @Test func aBinaryFileIsRefusedQuickly() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("carteiro-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let big = directory.appendingPathComponent("big.conf")
        try Data(repeating: 0x41, count: ConfigLimits.maximumFileSize + 10).write(to: big)
        let outcome = ConfigurationFile.load(path: big.path, environment: [:])
        #expect(outcome.errors.first?.message == "file is larger than 1024 KB: this is not a configuration file")
    }
}
