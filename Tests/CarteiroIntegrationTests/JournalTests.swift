import Foundation
import Testing
import CarteiroTesting

/// The daemon against a real systemd-journald (started standalone by scripts/test): entries
/// arrive natively with their fields, and no password reaches any log at any level.
@Suite(.enabled(if: FileManager.default.fileExists(atPath: "/run/systemd/journal/stdout") || MailLab.isRequired, "needs a running systemd-journald"))
struct JournalTests {
    func journalctl(_ arguments: [String]) throws -> [[String: Any]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/journalctl")
        process.arguments = ["--no-pager", "-o", "json"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func entriesCarryStructuredFieldsAndNoPassword() throws {
        let directory = try TemporaryDirectory()
        let token = String(UUID().uuidString.prefix(8)).lowercased()
        let secret = "Journal-Secret-\(token)"
        let config = try directory.write("c.conf", """
        [daemon]
        system_outbound = "out"
        state_dir = "\(directory.path)/state"
        [mailbox.out]
        type = "outbound"
        server = "127.0.0.1"
        port = 1
        tls = "none"
        sender = "desk@desk.example"
        auth = true
        user = "desk"
        password = "\(secret)"
        [mailbox.jr-\(token)]
        type = "inbound"
        provider = "imaps"
        server = "127.0.0.1"
        port = 1
        user = "someone"
        password = "\(secret)"
        timeout = "2s"
        [contract.c-\(token)]
        inbound_mailboxes = ["jr-\(token)"]
        """, mode: 0o600)
        // systemd-cat connects stdout and stderr to the journal; JOURNAL_STREAM names that stream,
        // as systemd does for a service, so Carteiro switches to the native protocol.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-cat")
        process.arguments = ["-t", "carteiro-stream", "/bin/sh", "-c",
                             "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) CARTEIRO_LOG_LEVEL=debug exec \"$0\" run --once --config \"$1\"",
                             carteiroExecutable(), config]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 1, "one mailbox failed, so --once exits 1")
        var entries: [[String: Any]] = []
        _ = waitUntil(timeout: .seconds(10)) {
            entries = (try? journalctl(["CARTEIRO_CONTRACT=c-\(token)"])) ?? []
            return entries.contains { $0["MESSAGE"] as? String == "poll failed" }
        }
        let failed = try #require(entries.first { $0["MESSAGE"] as? String == "poll failed" }, "\(entries)")
        #expect(failed["SYSLOG_IDENTIFIER"] as? String == "carteiro")
        #expect(failed["CARTEIRO_MAILBOX"] as? String == "jr-\(token)")
        #expect(failed["MESSAGE_ID"] as? String == "7d0e6f1a2b3c4d5e8f90a1b2c3d4e5f8")
        #expect(["3", "4"].contains(failed["PRIORITY"] as? String ?? ""))
        #expect((failed["CARTEIRO_REASON"] as? String)?.contains("refused the connection") == true)
        // Nothing this run wrote to the journal, natively or on the stream, holds the password.
        let everything = try journalctl(["--since", "-5min"])
        #expect(!everything.isEmpty)
        #expect(!everything.contains { entry in entry.values.contains { "\($0)".contains(secret) } })
    }
}

@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct NoPasswordInLogsTests {
    /// Wrong passwords on every kind of mailbox, at debug level: the log shows the failures and
    /// never a password.
    @Test func debugLogsOfFailingLoginsHoldNoPassword() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let secret = "Never-Log-Me-\(UUID().uuidString.prefix(6))"
        let state = directory.path + "/state"
        var text = daemonConfiguration(state: state, mailboxes: """
        [mailbox.imap-bad]
        type = "inbound"
        provider = "imaps"
        server = "127.0.0.1"
        port = \(lab.imapsPort)
        user = "acme"
        password = "\(secret)"
        ca_file = "\(lab.caFile)"

        [mailbox.pop-bad]
        type = "inbound"
        provider = "pops"
        server = "127.0.0.1"
        port = \(lab.pop3sPort)
        user = "beta"
        password = "\(secret)"
        ca_file = "\(lab.caFile)"

        """, contractMailboxes: ["imap-bad", "pop-bad"])
        text = text.replacingOccurrences(of: "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"", with: """
        [mailbox.out]
        type = "outbound"
        server = "127.0.0.1"
        port = \(lab.smtpTLSPort)
        tls = "tls"
        auth = true
        user = "ana"
        password = "\(secret)"
        ca_file = "\(lab.caFile)"
        """)
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try runCarteiro(["send", "--config", config, "--to", "x@lab.test", "--subject", "s", "--text", "t"]).status == 0)
        var environment = ProcessInfo.processInfo.environment
        environment["CARTEIRO_LOG_LEVEL"] = "debug"
        let result = try runCarteiro(["run", "--once", "--config", config], environment: environment)
        #expect(result.status == 1)
        let log = result.stdout + result.stderr
        #expect(log.contains("login rejected mailbox=imap-bad"), "\(log)")
        #expect(log.contains("login rejected mailbox=pop-bad"))
        #expect(log.contains("smtp connection failed mailbox=out"))
        #expect(!log.contains(secret))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(!(check.stdout + check.stderr).contains(secret))
    }
}
