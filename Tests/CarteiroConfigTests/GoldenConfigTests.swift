import Foundation
import Testing
@testable import CarteiroConfig

/// Golden files: each `Fixtures/valid/NAME.conf` has the exact `check-config` summary in
/// `NAME.summary`; each `Fixtures/invalid/NAME.conf` has every diagnostic, one per line, in
/// `NAME.errors`. Paths are shown relative to the fixture folder.
/// `CARTEIRO_UPDATE_GOLDEN=1 swift test` rewrites the expected files (then read the diff).
struct GoldenConfigTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let update = ProcessInfo.processInfo.environment["CARTEIRO_UPDATE_GOLDEN"] == "1"

    static func cases(_ folder: String) -> [String] {
        let directory = fixtures + "/" + folder
        var names: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            if entry.hasSuffix(".conf") { names.append(String(entry.dropLast(5))) }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + entry + "/main.conf", isDirectory: &isDirectory) {
                names.append(entry + "/main")
            }
        }
        return names.sorted()
    }

    static let environment = ["STATE_DIRECTORY": "/var/lib/carteiro"]

    func relative(_ text: String) -> String {
        text.replacingOccurrences(of: Self.fixtures + "/", with: "")
    }

    func compare(_ actual: String, expectedFile: String) throws {
        if Self.update {
            try actual.write(toFile: expectedFile, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: expectedFile, encoding: .utf8)
        #expect(actual == expected, "\(expectedFile) differs")
    }

    @Test(arguments: cases("valid"))
    func validConfigurationSummary(_ name: String) throws {
        let outcome = ConfigurationFile.load(path: "\(Self.fixtures)/valid/\(name).conf", environment: Self.environment)
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
        let configuration = try #require(outcome.configuration)
        var text = relative(ConfigSummary.render(configuration))
        for warning in outcome.warnings { text += relative(warning.description) + "\n" }
        try compare(text, expectedFile: "\(Self.fixtures)/valid/\(name).summary")
    }

    @Test(arguments: cases("invalid"))
    func invalidConfigurationErrors(_ name: String) throws {
        let outcome = ConfigurationFile.load(path: "\(Self.fixtures)/invalid/\(name).conf", environment: Self.environment)
        #expect(outcome.configuration == nil)
        #expect(!outcome.errors.isEmpty)
        let text = outcome.diagnostics.map { relative($0.description) + "\n" }.joined()
        try compare(text, expectedFile: "\(Self.fixtures)/invalid/\(name).errors")
    }
}
