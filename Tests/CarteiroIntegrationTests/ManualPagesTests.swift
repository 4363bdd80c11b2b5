import Foundation
import Testing
import CarteiroDaemon
import CarteiroTesting

/// The man pages in the repository are the ones the package installs: current with the
/// program (its reference, its version) and naming every option each command has.
struct ManualPagesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    func page(_ name: String) throws -> String {
        try String(contentsOfFile: Self.root + "/man/" + name, encoding: .utf8)
    }

    @Test func pagesCarryTheVersionAndTheCurrentReference() throws {
        for name in ["carteiro.8", "carteiro-events.5", "carteiro.conf.5"] {
            let text = try page(name)
            #expect(!text.contains("@VERSION@") && !text.contains("@REFERENCE@"), "\(name) is a template")
            #expect(text.split(separator: "\n").first?.contains("\"carteiro \(CarteiroVersion.string)\"") == true, "\(name): not version \(CarteiroVersion.string)")
        }
        // carteiro.conf(5) is its template with what `check-config --reference` prints now.
        let reference = try runCarteiro(["check-config", "--reference"])
        #expect(reference.status == 0)
        let directory = try TemporaryDirectory()
        let printed = try directory.write("reference.txt", reference.stdout)
        let rendered = try runProgram("/usr/bin/awk", ["-f", Self.root + "/man/reference-to-man.awk", printed])
        let template = try page("carteiro.conf.5.in")
            .replacingOccurrences(of: "@VERSION@", with: CarteiroVersion.string)
            .replacingOccurrences(of: "\n@REFERENCE@\n", with: "\n" + rendered.stdout)
        #expect(try page("carteiro.conf.5") == template, "man/carteiro.conf.5 is behind: run scripts/man-pages")
    }

    @Test func carteiro8NamesEveryOptionOfEveryCommand() throws {
        let manual = try page("carteiro.8").replacingOccurrences(of: "\\-", with: "-")
        for command in ["check-config", "test-mailbox", "authorize", "run", "send", "queue", "quarantine", "status", "parse", "poll"] {
            let help = try runCarteiro([command, "--help"])
            let options = Set(help.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == "[" || $0 == "]" || $0 == "<" })
                .filter { $0.hasPrefix("--") && $0.count > 2 }
                .map { String($0.prefix { $0.isLetter || $0.isNumber || $0 == "-" }) })
            for option in options where !["--help", "--version", "--config"].contains(option) {
                #expect(manual.contains(option), "carteiro(8) does not mention \(command) \(option)")
            }
            #expect(manual.contains(".B " + command) || manual.contains(".BI " + command) || manual.contains("B " + command), "carteiro(8) has no \(command)")
        }
    }
}
