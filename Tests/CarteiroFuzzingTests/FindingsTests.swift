import Foundation
import Testing
import CarteiroFuzzing

/// Every input a fuzzer found (a crash, a hang, a leak) is kept in `Findings/TARGET/` and
/// replayed here through the same function the fuzz target calls: once fixed, fixed for good.
/// The hostile inputs written by hand for each class of bug live beside them.
struct FindingsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Findings").path

    static var cases: [(target: String, file: String)] {
        FuzzTargets.all.flatMap { target in
            (((try? FileManager.default.contentsOfDirectory(atPath: root + "/" + target.name)) ?? []).sorted()).map { (target.name, $0) }
        }
    }

    @Test func everyTargetHasFindingsToReplay() {
        for target in FuzzTargets.all {
            #expect(Self.cases.contains { $0.target == target.name }, "no input kept for \(target.name)")
        }
    }

    @Test(arguments: cases.map { "\($0.target)/\($0.file)" })
    func replay(_ path: String) throws {
        let target = String(path.prefix { $0 != "/" })
        let run = try #require(FuzzTargets.all.first { $0.name == target }?.run)
        let bytes = try #require(FileManager.default.contents(atPath: Self.root + "/" + path))
        run([UInt8](bytes))
    }
}
