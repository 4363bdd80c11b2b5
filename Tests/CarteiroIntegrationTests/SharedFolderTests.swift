import Foundation
import Testing
import CarteiroDaemon
import CarteiroStore
import CarteiroTesting

/// What a member of the desk's group can put into the folders it shares with the daemon (the
/// spool, control/, the outbox and its rejected/): links to the service's secrets, FIFOs, hard
/// links, folders swapped for links, a file swapped for a link while it is read. The member is
/// played with setpriv(1) as `nobody` in the state directory's group; the daemon runs as the
/// directory's owner (root here). Needs root.
@Suite(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv"))
struct SharedFolderTests {
    static let nobody: UInt32 = 65534
    static let deskGroup: UInt32 = 8
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    /// 30 bytes (base64 without padding, on one line): what must never leave the service.
    static let secret = "REFRESH-TOKEN-0123456789ABCDEF"

    struct Setup {
        var directory: TemporaryDirectory
        var config: String
        var state: String
        /// A file only the service may read (a token file, say).
        var secretFile: String
    }

    /// A state directory as the package leaves it (the daemon's, the desk's group on it), a
    /// secret file in it, and a configuration with or without a webhook.
    func setUp(webhook: Int? = nil) throws -> Setup {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let state = directory.path + "/state"
        var text = daemonConfiguration(state: state, mailboxes: "", contractMailboxes: [])
        if let webhook {
            text = text.replacingOccurrences(of: "[mailbox.out]", with: "[events]\nwebhook = \"http://127.0.0.1:\(webhook)/hook\"\n\n[mailbox.out]")
        }
        let config = try directory.write("carteiro.conf", text, mode: 0o644)
        try StateDirectory(root: state, spool: state + "/events").prepare(mailboxes: [])
        try FileManager.default.createDirectory(atPath: state + "/oauth", withIntermediateDirectories: true)
        let secretFile = state + "/oauth/token.json"
        try Self.secret.write(toFile: secretFile, atomically: false, encoding: .utf8)
        chmod(secretFile, 0o600)
        chmod(state + "/oauth", 0o700)
        chown(state, 0, Self.deskGroup)
        for entry in try FileManager.default.subpathsOfDirectory(atPath: state) { chown(state + "/" + entry, 0, Self.deskGroup) }
        return Setup(directory: directory, config: config, state: state, secretFile: secretFile)
    }

    /// Runs a shell script as a member of the desk's group.
    @discardableResult
    func asMember(_ script: String) throws -> ProcessResult {
        let result = try runProgram("/usr/bin/setpriv", ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--groups=\(Self.deskGroup)", "--", "/bin/sh", "-c", script],
                                    environment: ["PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "as a member: \(script): \(result.stderr)")
        return result
    }

    /// Every file under `folder` (links not followed), as bytes, but `except`.
    func contents(under folder: String, except: String) -> [(String, String)] {
        var found: [(String, String)] = []
        for entry in (try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? [] where folder + "/" + entry != except {
            var info = stat()
            guard lstat(folder + "/" + entry, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            found.append((entry, String(decoding: FileManager.default.contents(atPath: folder + "/" + entry) ?? Data(), as: UTF8.self)))
        }
        return found
    }

    func leaks(_ setup: Setup, in text: String) -> Bool {
        text.contains(Self.secret) || text.contains(Data(Self.secret.utf8).base64EncodedString())
    }

    func wait(_ seconds: Double = 15, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    func isLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Links, a FIFO, a hard link and a member's own file planted in the spool: none is POSTed
    /// (the forwarder used to POST the secret's bytes verbatim), each is removed and reported.
    @Test func theForwarderPostsOnlyTheServicesOwnEvents() throws {
        let directory = try TemporaryDirectory()
        let received = directory.path + "/received.jsonl"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [Self.root + "/scripts/lab/webhook_server.py", "--envelope", "--log", received]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let port = try #require(Int(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))

        let setup = try setUp(webhook: port)
        let spool = setup.state + "/events"
        try asMember("""
            ln -s \(setup.secretFile) \(spool)/acme+1+1.json
            ln -s \(setup.state)/threading.key \(spool)/acme+1+2.json
            mkfifo \(spool)/acme+1+3.json
            printf '{"forged": true}' > \(spool)/acme+1+4.json
            """)
        // A hard link to the secret: the kernel's protected_hardlinks keeps a member from making
        // one to a file it cannot read; where that is off, this is what it would leave.
        #expect(link(setup.secretFile, spool + "/acme+1+5.json") == 0)
        // A device (only root can make one; a member could rename one in from elsewhere).
        #expect(mknod(spool + "/acme+1+6.json", S_IFCHR | 0o666, dev_t((1 << 8) | 3)) == 0) // 1:3, /dev/null
        let daemon = try DaemonProcess(config: setup.config, spool: spool, logPath: setup.directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(wait { (1...6).allSatisfy { !exists(spool + "/acme+1+\($0).json") } }, "\(daemon.log)")
        Thread.sleep(forTimeInterval: 0.5)
        let posted = (try? String(contentsOfFile: received, encoding: .utf8)) ?? ""
        #expect(posted.isEmpty, "posted: \(posted)")
        #expect(try String(contentsOfFile: setup.secretFile, encoding: .utf8) == Self.secret)
        let reports = daemon.log.components(separatedBy: "\n").filter { $0.contains("shared folder entry refused") }
        #expect(reports.count == 6, "\(daemon.log)")
        for (index, reason) in [(1, "is a symbolic link"), (2, "is a symbolic link"), (3, "is a FIFO"), (4, "belongs to nobody"), (5, "has 2 names"), (6, "is a device")] {
            #expect(reports.contains { $0.contains("\(spool)/acme+1+\(index).json") && $0.contains(reason) }, "\(index): \(reports)")
        }
    }

    /// Links planted where the daemon writes answers, at the answer's temporary name, and as a
    /// request: nothing is written through them, and the command still gets its answer.
    @Test func controlAnswersAreNeverWrittenThroughLinks() throws {
        let setup = try setUp()
        let control = setup.state + "/control"
        let key = setup.state + "/threading.key"
        let daemon = try DaemonProcess(config: setup.config, spool: setup.state + "/events", logPath: setup.directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        #expect(wait { exists(key) })
        let keyBefore = try #require(FileManager.default.contents(atPath: key))
        try asMember("""
            ln -s \(key) \(control)/n1.answer
            ln -s \(key) \(control)/.n1.answer.tmp
            ln -s \(setup.secretFile) \(control)/n2.request
            printf '{"command":"retry","id":"nothing-here"}' > \(control)/.n1.tmp && mv \(control)/.n1.tmp \(control)/n1.request
            """)
        #expect(wait { exists(control + "/n1.answer") && !isLink(control + "/n1.answer") }, "\(daemon.log)")
        #expect(FileManager.default.contents(atPath: key) == keyBefore)
        #expect(try String(contentsOfFile: setup.secretFile, encoding: .utf8) == Self.secret)
        let answer = (try? String(contentsOfFile: control + "/n1.answer", encoding: .utf8)) ?? ""
        #expect(answer.contains("no queued or failed message nothing-here"), "\(answer)")
        #expect(wait { !exists(control + "/n2.request") })
        #expect(!exists(control + "/n2.answer"))
        #expect(daemon.log.contains("shared folder entry refused") && daemon.log.contains("\(control)/n2.request"), "\(daemon.log)")
    }

    /// The outbox: a submission that is a link to a secret, a reason file planted as a link, and
    /// `.taken` swapped for a link to another folder of the service's.
    @Test func theOutboxTakesNoLinks() throws {
        let setup = try setUp()
        let outbox = setup.state + "/outbox"
        let victim = setup.state + "/victim"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        chmod(victim, 0o700)
        let reasonVictim = try setup.directory.write("reason-victim", "UNCHANGED", mode: 0o600)
        try asMember("""
            ln -s \(victim) \(outbox)/.taken
            ln -s \(reasonVictim) \(outbox)/rejected/s1.json.reason
            ln -s \(setup.secretFile) \(outbox)/s1.json
            """)
        let run = try runCarteiro(["run", "--once", "--config", setup.config])
        #expect(!isLink(outbox + "/.taken"), "\(run.stderr)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: victim)) ?? []).isEmpty)
        #expect(try String(contentsOfFile: reasonVictim, encoding: .utf8) == "UNCHANGED")
        #expect(try String(contentsOfFile: setup.secretFile, encoding: .utf8) == Self.secret)
        #expect(isLink(outbox + "/rejected/s1.json"), "the link itself is set aside, unread")
        let reason = (try? String(contentsOfFile: outbox + "/rejected/s1.json.reason", encoding: .utf8)) ?? ""
        #expect(reason == "the submission is a symbolic link (never followed here)\n", "\(reason)")
        #expect(run.stderr.contains("\(outbox)/.taken") && run.stderr.contains("moved aside"), "\(run.stderr)")
        for (name, text) in contents(under: setup.state, except: setup.secretFile) {
            #expect(!leaks(setup, in: text), "\(name) holds the secret")
        }
    }

    /// `.pending` (where events are written before they are renamed into the spool) lies in the
    /// spool, which members can write: moved away and replaced by a link to another folder of
    /// the service's, it is moved aside and made anew before anything is written through it.
    @Test func thePendingFolderSwappedForALinkIsMovedAsideAndMadeAnew() throws {
        let setup = try setUp()
        let spool = setup.state + "/events"
        let victim = setup.state + "/mailboxes"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        chmod(victim, 0o700)
        try asMember("mv \(spool)/.pending \(spool)/old-pending && ln -s \(victim) \(spool)/.pending")
        let refused = try StateDirectory(root: setup.state, spool: spool).prepare(mailboxes: [])
        #expect(refused.count == 1 && refused.first?.path == spool + "/.pending", "\(refused)")
        #expect(refused.first?.reason.contains("a symbolic link") == true)
        var info = stat()
        #expect(lstat(spool + "/.pending", &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid())
        // Swapped again while a poll runs: the next batch's check finds it.
        try asMember("mv \(spool)/.pending \(spool)/old-pending-2 && ln -s \(victim) \(spool)/.pending")
        let again = StateDirectory(root: setup.state, spool: spool).securePending()
        #expect(again.count == 1, "\(again)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: victim)) ?? []).isEmpty)
    }

    /// The clean-up reads the spool's events to know which raw messages and attachments are
    /// still pointed at: a FIFO planted there used to block it for ever, a link to have it read
    /// what the link pointed at. Both are passed over, and `status` counts neither.
    @Test func theCleanUpAndStatusPassOverPlantedEntries() throws {
        let setup = try setUp()
        let spool = setup.state + "/events"
        try asMember("mkfifo \(spool)/acme+1+1.json && ln -s \(setup.secretFile) \(spool)/acme+1+2.json")
        let done = DispatchSemaphore(value: 0)
        let directory = StateDirectory(root: setup.state, spool: spool)
        Thread {
            _ = Retention.clean(directory, keepRaw: .seconds(1), keepAttachments: .seconds(1), keepFailed: nil)
            done.signal()
        }.start()
        #expect(done.wait(timeout: .now() + 10) == .success, "the clean-up waited on a FIFO in the spool")
        #expect(StatusReport.backlog(spool: spool, now: Int64(time(nil))).count == 0)
    }

    /// A member swaps an attachment's file for a link to the secret and back, as fast as it can,
    /// while submissions that name it arrive: every one is sent with the public bytes or refused,
    /// none with the secret (before, 2 to 10 of each run's messages carried it).
    @Test func anAttachmentSwappedForALinkWhileReadIsNeverSent() throws {
        let setup = try setUp()
        let outbox = setup.state + "/outbox"
        let public30 = "PUBLIC-ATTACHMENT-0123456789AB"
        try asMember("mkdir \(outbox)/files && printf '\(public30)' > \(outbox)/files/plain")
        let swapper = Process()
        swapper.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        // As fast as Python swaps: a link and a file renamed over the name in turn.
        swapper.arguments = ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--groups=\(Self.deskGroup)", "--", "/usr/bin/python3", "-c", """
            import os
            os.chdir("\(outbox)/files")
            while True:
                os.symlink("\(setup.secretFile)", "a.lnk"); os.replace("a.lnk", "a.bin")
                with open("a.new", "w") as f: f.write("\(public30)")
                os.replace("a.new", "a.bin")
            """]
        try swapper.run()
        defer { kill(swapper.processIdentifier, SIGKILL); swapper.waitUntilExit() }
        let count = 200
        var script = ""
        for index in 0..<count {
            script += #"printf '{"mailbox":"out","to":["a@x.example"],"subject":"s\#(index)","text":"t","attachments":[{"name":"a.bin","path":"files/a.bin"}]}' > \#(outbox)/.s\#(index) && mv \#(outbox)/.s\#(index) \#(outbox)/s\#(index).json"# + "\n"
        }
        try asMember(script)
        let run = try runCarteiro(["run", "--once", "--config", setup.config])
        kill(swapper.processIdentifier, SIGKILL)
        let queued = ((try? FileManager.default.contentsOfDirectory(atPath: setup.state + "/queue/out")) ?? []).filter { $0.hasSuffix(".json") }
        let rejected = ((try? FileManager.default.contentsOfDirectory(atPath: outbox + "/rejected")) ?? []).filter { $0.hasSuffix(".reason") }
        #expect(queued.count + rejected.count == count, "\(run.stderr)")
        for name in rejected {
            let reason = (try? String(contentsOfFile: outbox + "/rejected/" + name, encoding: .utf8)) ?? ""
            #expect(reason.contains("is a symbolic link") || reason.contains("does not exist"), "\(reason)")
        }
        for (name, text) in contents(under: setup.state, except: setup.secretFile) {
            #expect(!leaks(setup, in: text), "\(name) holds the secret")
        }
    }
}
