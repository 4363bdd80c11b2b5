import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroDaemon
import CarteiroTesting

/// Runs the lab tests when the lab runs, and fails them (instead of skipping) when
/// `CARTEIRO_LAB_REQUIRED=1` says it must run.
let labIsAvailable = MailLab.current != nil || MailLab.isRequired

func requireLab() throws -> MailLab {
    try #require(MailLab.current, "the mail lab is not running: scripts/mail-lab start")
}

/// What `carteiro test-mailbox` would do, in process: the lines reported and the outcome.
struct MailboxTestRun {
    var lines: [String]
    var failure: MailboxTester.Failure?

    var connectionError: MailConnectionError? {
        if case .connection(let error)? = failure { return error }
        return nil
    }

    var text: String { (lines + [failure.map { "FAILED: \($0)" } ?? "OK"]).joined(separator: "\n") }
}

final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []
    func add(_ line: String) { lock.lock(); collected.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return collected }
}

/// Tests the mailbox `[mailbox.m]` whose body is `mailbox`, in a configuration around it.
func testMailbox(_ mailbox: String, environment: [String: String] = [:]) throws -> MailboxTestRun {
    let text = MailLab.configuration(name: "m", mailbox: mailbox)
    let outcome = ConfigurationFile.load(text: text, file: "lab.conf", environment: environment)
    let configuration = try #require(outcome.configuration, "\(outcome.errors)")
    let collector = LineCollector()
    let tester = MailboxTester(configuration: configuration, secrets: SecretResolver(environment: environment), report: collector.add)
    switch tester.test("m") {
    case .success: return MailboxTestRun(lines: collector.lines, failure: nil)
    case .failure(let failure): return MailboxTestRun(lines: collector.lines, failure: failure)
    }
}

/// The `carteiro` executable built next to the test bundle.
func carteiroExecutable() -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("carteiro").path
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Ended by a signal (a trap, a crash), not by exit: `status` is then the signal.
    var crashed = false
}

func runCarteiro(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    try runProgram(carteiroExecutable(), arguments, environment: environment)
}

/// Runs a program to its end with no input; its exit status and both outputs.
func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self),
                         crashed: process.terminationReason == .uncaughtSignal)
}
