import Foundation
import Testing
import CarteiroConfig
import CarteiroStore
import CarteiroTesting

/// One owner per piece of state: one daemon a state directory; admin commands go through it.
struct OwnershipTests {
    /// A configuration whose one inbound mailbox points at a port nobody listens on.
    static func configuration(_ directory: TemporaryDirectory) throws -> (config: String, state: String) {
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, pollInterval: "60s", mailboxes: """
            [mailbox.dead]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = 9
            user = "u"
            password = "p"
            timeout = "1s"

            """, contractMailboxes: ["dead"]), mode: 0o600)
        return (config, state)
    }

    @Test func aSecondDaemonOnOneStateDirectoryRefusesAndNamesTheFirst() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try Self.configuration(directory)
        let first = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/first.log")
        defer { first.kill() }
        // The first one holds the lock once it has started.
        let deadline = ContinuousClock.now + .seconds(20)
        while !StateLock.isHeld(stateDirectory: state).held && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(StateLock.isHeld(stateDirectory: state) == (true, first.process.processIdentifier))

        for arguments in [["run", "--config", config], ["run", "--once", "--config", config]] {
            let second = try runCarteiro(arguments)
            #expect(second.status == 75, "\(arguments): \(second.stderr)")
            #expect(second.stderr.contains("carteiro (pid \(first.process.processIdentifier)) already runs on this state directory"), "\(second.stderr)")
        }
        // However the first one ends, the directory is free again: no stale lock.
        first.kill()
        let after = try runCarteiro(["run", "--once", "--config", config])
        #expect(after.status == 1, "the dead mailbox fails, but the run goes ahead: \(after.stderr)")
        #expect(!after.stderr.contains("already runs"))
    }
}

/// Crash points of the outbound enqueue, replayed by hand: the state a crash leaves is built
/// from a real run, then the next run must end with every message queued exactly once.
struct EnqueueRecoveryTests {
    static func queued(_ state: String) -> [String] {
        let lane = state + "/queue/out"
        return ((try? FileManager.default.contentsOfDirectory(atPath: lane)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    /// A submission of two messages (ID-1, ID-2) interrupted between its two renames: ID-1 is
    /// in the queue, ID-2 only as its temporary file, the submission still taken. The next
    /// start used to see ID-1, drop the submission, and lose ID-2.
    @Test func aMultiMessageSubmissionCutBetweenItsRenamesLosesNothing() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try OwnershipTests.configuration(directory)
        try FileManager.default.createDirectory(atPath: state + "/outbox", withIntermediateDirectories: true)
        let submission = #"{"mailbox": "out", "to": ["a@x.example", "b@x.example"], "subject": "s", "text": "t"}"#
        try submission.write(toFile: state + "/outbox/two.json", atomically: true, encoding: .utf8)
        _ = try runCarteiro(["run", "--once", "--config", config]) // nothing listens on the SMTP port: both stay queued
        let first = Self.queued(state)
        #expect(first.count == 2, "\(first)")
        let id2 = try #require(first.last).dropLast(5)
        // The crash: the second rename never happened, the submission was never removed.
        try FileManager.default.moveItem(atPath: "\(state)/queue/out/\(id2).json", toPath: "\(state)/queue/out/.\(id2).json.tmp")
        try submission.write(toFile: state + "/outbox/.taken/two.json", atomically: true, encoding: .utf8)
        _ = try runCarteiro(["run", "--once", "--config", config])
        #expect(Self.queued(state) == first)
        #expect(!FileManager.default.fileExists(atPath: state + "/outbox/.taken/two.json"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox/rejected")) ?? []).isEmpty)
    }

    @Test func aFIFOInTheOutboxIsSetAsideNotWaitedFor() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try OwnershipTests.configuration(directory)
        try FileManager.default.createDirectory(atPath: state + "/outbox", withIntermediateDirectories: true)
        #expect(mkfifo(state + "/outbox/fifo.json", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: state + "/outbox/dir.json", withIntermediateDirectories: true)
        try #"{"mailbox": "out", "to": ["a@x.example"], "subject": "s", "text": "t"}"#.write(toFile: state + "/outbox/ok.json", atomically: true, encoding: .utf8)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(!result.crashed)
        #expect(Self.queued(state).count == 1, "the good submission behind them is queued: \(result.stderr)")
        let reason = try String(contentsOfFile: state + "/outbox/rejected/fifo.json.reason", encoding: .utf8)
        #expect(reason == "the submission is a FIFO, not a regular file\n")
        #expect(try String(contentsOfFile: state + "/outbox/rejected/dir.json.reason", encoding: .utf8) == "the submission is a directory\n")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/outbox/.taken")) ?? []).isEmpty)
    }
}

/// `queue retry|delete` and `send` reach the queue through its owner.
struct QueueAdminTests {
    @Test(arguments: ["../../../victim", "a/b", ".hidden", "", "x y"])
    func anIdThatIsNotAnIdIsRefusedUnread(_ id: String) throws {
        let directory = try TemporaryDirectory()
        let (config, _) = try OwnershipTests.configuration(directory)
        let victim = try directory.write("victim.json", "keep me", mode: 0o600)
        for verb in ["retry", "delete"] {
            let result = try runCarteiro(["queue", verb, id, "--config", config])
            #expect(result.status == 64, "\(verb) \(id): \(result.stderr)")
            #expect(result.stderr.contains("is not a queue id"))
        }
        #expect(FileManager.default.fileExists(atPath: victim))
    }

    /// With the daemon running, `send` hands the submission to it (the id it prints is the one
    /// queued), and `queue delete` is applied by the lane that owns the entry: the lane never
    /// writes its own copy back over the deletion.
    @Test func commandsGoThroughTheRunningDaemon() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try OwnershipTests.configuration(directory)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(20)) { StateLock.isHeld(stateDirectory: state).held })
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "out", "--to", "a@x.example", "--subject", "s", "--text", "t"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let id = sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The daemon took it from the outbox and queued it under that id (nothing listens on
        // the SMTP port: it waits there).
        #expect(waitUntil(timeout: .seconds(20)) { EnqueueRecoveryTests.queued(state).contains(id + ".json") }, "\(EnqueueRecoveryTests.queued(state)) \(daemon.log)")
        let retried = try runCarteiro(["queue", "retry", id, "--config", config])
        #expect(retried.status == 0, "\(retried.stderr)")
        #expect(retried.stdout == "\(id) is due now\n")
        let deleted = try runCarteiro(["queue", "delete", id, "--config", config])
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(daemon.log.contains("queue command"), "\(daemon.log)")
        // Several lane passes later the entry is still gone.
        Thread.sleep(forTimeInterval: 2.5)
        #expect(!EnqueueRecoveryTests.queued(state).contains(id + ".json"))
        let again = try runCarteiro(["queue", "delete", id, "--config", config])
        #expect(again.status == 1)
        #expect(again.stderr.contains("no queued or failed message \(id)"))
    }
}

/// Files that are not files: a FIFO would block a reader for ever (and with it a reload, and
/// then SIGTERM), a device would feed it without end.
struct SpecialFileTests {
    @Test func aFIFOAsAnIncludeOrAPasswordFileIsAnErrorNotAHang() throws {
        let directory = try TemporaryDirectory()
        #expect(mkfifo(directory.path + "/customer.conf", 0o600) == 0)
        #expect(mkfifo(directory.path + "/password", 0o600) == 0)
        let config = try directory.write("carteiro.conf", """
            include = ["\(directory.path)/customer.conf", "/dev/zero"]
            [daemon]
            system_outbound = "out"
            state_dir = "\(directory.path)/state"
            [mailbox.out]
            type = "outbound"
            server = "127.0.0.1"
            sender = "desk@desk.example"
            auth = true
            user = "u"
            password_file = "\(directory.path)/password"
            """, mode: 0o600)
        let started = ContinuousClock.now
        let result = try runCarteiro(["check-config", "--config", config])
        #expect(ContinuousClock.now - started < .seconds(20), "check-config waited on a FIFO")
        #expect(result.status == 78, "\(result.stdout) \(result.stderr)")
        #expect(result.stderr.contains("cannot include \(directory.path)/customer.conf: it is a FIFO, not a regular file"), "\(result.stderr)")
        #expect(result.stderr.contains("cannot include /dev/zero: it is a device, not a regular file"), "\(result.stderr)")
    }

    /// The service user meeting a configuration only root may read: "permission denied", not
    /// "does not exist" (run as `nobody` through runuser).
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser")))
    func anUnreadableConfigurationSaysPermissionDeniedNotMissing() throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let config = try directory.write("carteiro.conf", "[daemon]\n", mode: 0o600)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", "nobody", "--", carteiroExecutable(), "check-config", "--config", config]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard !text.contains("Permission denied") || text.contains("carteiro.conf") else {
            // nobody cannot even run the test build (its directories are private): nothing to learn.
            return
        }
        #expect(process.terminationStatus == 78, "\(text)")
        #expect(text.contains("cannot read the configuration \(config): it cannot be read (permission denied)"), "\(text)")
        #expect(!text.contains("does not exist"), "\(text)")
        #expect(!text.contains("[daemon]"), "one error, the real one: \(text)")
    }
}

/// A hostile or damaged state directory.
struct DamagedStateTests {
    @Test func anUnreadableQueueEntryIsSetAsideNotSkippedInSilence() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try OwnershipTests.configuration(directory)
        try FileManager.default.createDirectory(atPath: state + "/queue/out", withIntermediateDirectories: true)
        try "{\"id\": \"broken\", \"recip".write(toFile: state + "/queue/out/broken.json", atomically: true, encoding: .utf8)
        try "Subject: x\r\n\r\nbody\r\n".write(toFile: state + "/queue/out/broken.eml", atomically: true, encoding: .utf8)
        let result = try runCarteiro(["run", "--once", "--config", config])
        #expect(!result.crashed)
        #expect(result.stderr.contains("queue entry unreadable; set aside"), "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: state + "/queue/corrupt/out+broken.json"))
        #expect(FileManager.default.fileExists(atPath: state + "/queue/corrupt/out+broken.eml"))
        #expect(!FileManager.default.fileExists(atPath: state + "/queue/out/broken.json"))
        #expect(try runCarteiro(["queue", "list", "--config", config]).stdout == "the queue is empty\n")
    }
}
