import Foundation
import Testing
import CarteiroTesting

/// `carteiro run` as a child process, with its state directory, its log, and its events.
final class DaemonProcess {
    let process = Process()
    let logPath: String
    let spool: String

    init(config: String, spool: String, logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        self.spool = spool
        process.executableURL = URL(fileURLWithPath: carteiroExecutable())
        process.arguments = ["run", "--config", config]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The events in the spool, parsed.
    func events() -> [[String: Any]] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }
        return names.compactMap { name in
            (try? Data(contentsOf: URL(fileURLWithPath: spool + "/" + name))).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
    }

    /// Waits until `condition` holds on the events, or `timeout` passes.
    @discardableResult
    func waitForEvents(timeout: Duration, _ condition: ([[String: Any]]) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(events()) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return condition(events())
    }

    /// SIGTERM, and the exit status.
    func terminate() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        validateSpool()
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        validateSpool()
    }

    private var validated = false

    /// Every event the daemon left is valid against `schemas/event.schema.json` (the contract
    /// with the desk), checked once when the daemon ends.
    func validateSpool() {
        guard !validated, FileManager.default.fileExists(atPath: spool) else { return }
        validated = true
        let result = validateAgainstSchema([spool])
        #expect(result.status == 0, "events in \(spool) do not match the schema: \(result.stdout)")
    }
}

extension [String: Any] {
    var messageID: String? { (self["message"] as? [String: Any])?["message_id"] as? String }
}

/// A unique name for this test's lab users and files.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
}

/// An inbound mailbox of the lab. The lab's messages mostly share a sender: flood limits are off
/// here unless `extra` sets them (`FloodLimitTests` does).
func inboundMailbox(_ name: String, provider: String, port: Int, user: String, lab: MailLab, extra: String = "") -> String {
    """
    [mailbox.\(name)]
    type = "inbound"
    provider = "\(provider)"
    server = "127.0.0.1"
    port = \(port)
    user = "\(user)"
    password_file = "\(lab.passwordFile(of: user))"
    ca_file = "\(lab.caFile)"
    timeout = "10s"
    \(extra.contains("max_messages_per_") ? "" : "max_messages_per_sender = 0\nmax_messages_per_domain = 0")
    \(extra)

    """
}

func daemonConfiguration(state: String, pollInterval: String = "1s", maxParallel: Int = 8, mailboxes: String, contractMailboxes: [String]) -> String {
    """
    [daemon]
    system_outbound = "out"
    state_dir = "\(state)"
    poll_interval = "\(pollInterval)"
    max_parallel_polls = \(maxParallel)

    [mailbox.out]
    type = "outbound"
    server = "127.0.0.1"
    tls = "none"
    sender = "Desk <desk@desk.example>"

    \(mailboxes)
    [contract.lab]
    inbound_mailboxes = [\(contractMailboxes.map { "\"\($0)\"" }.joined(separator: ", "))]

    """
}

/// `scripts/validate-events` on files or folders (events; `submissions` for submissions).
func validateAgainstSchema(_ paths: [String], submissions: Bool = false) -> ProcessResult {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: root + "/scripts/validate-events")
    process.arguments = (submissions ? ["--submissions"] : []) + paths
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return ProcessResult(status: -1, stdout: "\(error)", stderr: "") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: data, as: UTF8.self), stderr: "")
}
