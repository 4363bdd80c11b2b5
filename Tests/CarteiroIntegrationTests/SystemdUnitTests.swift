import Foundation
import Testing
import CarteiroTesting

/// The shipped unit file: systemd accepts it, and its exposure score stays at or under 2.0.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "needs systemd-analyze"))
struct SystemdUnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    func unitCopy(in directory: TemporaryDirectory, _ name: String = "carteiro.service") throws -> String {
        // systemd-analyze checks that ExecStart's program exists: point it at the build.
        let unit = try String(contentsOfFile: Self.root + "/systemd/" + name, encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/carteiro", with: carteiroExecutable())
        return try directory.write(name.replacingOccurrences(of: "@.service", with: "@shard.service"), unit)
    }

    func analyze(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func verifies() throws {
        let directory = try TemporaryDirectory()
        for name in ["carteiro.service", "carteiro@.service"] {
            let result = try analyze(["verify", "--man=no", try unitCopy(in: directory, name)])
            #expect(result.status == 0, "\(name): \(result.output)")
        }
    }

    @Test func exposureAtMostTwo() throws {
        let directory = try TemporaryDirectory()
        for name in ["carteiro.service", "carteiro@.service"] {
            let result = try analyze(["security", "--offline=yes", "--threshold=20", try unitCopy(in: directory, name)])
            #expect(result.status == 0, "\(name): \(result.output.suffix(400))")
            let score = result.output.split(separator: "\n").last { $0.contains("Overall exposure level") }
            #expect(score != nil, "\(result.output.suffix(400))")
        }
    }
}
