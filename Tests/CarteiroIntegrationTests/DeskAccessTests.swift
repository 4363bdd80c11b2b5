import Foundation
import Testing
import CarteiroStore
import CarteiroTesting

/// The ownership model as the desk and the operator meet it: the state directory belongs to the
/// daemon's user, its group is the desk's. Other users are played with setpriv(1): `nobody`, with
/// or without the state directory's group. Needs root (to become them).
@Suite(.enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs root and setpriv"))
struct DeskAccessTests {
    static let nobody: UInt32 = 65534
    /// The desk's group in these tests: `mail` (8), a group nobody is not in.
    static let deskGroup: UInt32 = 8

    /// Runs carteiro as `nobody`, in `groups` as supplementary groups.
    func runAsNobody(_ arguments: [String], groups: [UInt32]) throws -> ProcessResult {
        let groupOption = groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.map(String.init).joined(separator: ",")]
        return try runProgram("/usr/bin/setpriv", ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)"] + groupOption + ["--", carteiroExecutable()] + arguments,
                              environment: ["PATH": "/usr/bin:/bin"])
    }

    /// A configuration every user can read, and a state directory prepared by its owner (root
    /// here), with the desk's group on it, as the package's tmpfiles entry leaves it.
    func setUp(_ directory: TemporaryDirectory) throws -> (config: String, state: String) {
        chmod(directory.path, 0o755)
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: state, mailboxes: "", contractMailboxes: []), mode: 0o644)
        try StateDirectory(root: state, spool: state + "/events").prepare(mailboxes: [])
        try chownTree(state, uid: 0, gid: Self.deskGroup)
        return (config, state)
    }

    func chownTree(_ path: String, uid: UInt32, gid: UInt32) throws {
        #expect(chown(path, uid, gid) == 0)
        for entry in try FileManager.default.subpathsOfDirectory(atPath: path) {
            #expect(chown(path + "/" + entry, uid, gid) == 0)
        }
    }

    func files(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func theSharedFoldersCarryTheGroupsWriteBitAndSetgid() throws {
        let directory = try TemporaryDirectory()
        let (_, state) = try setUp(directory)
        for (path, mode) in [("", 0o2750), ("/events", 0o2770), ("/outbox", 0o2770), ("/outbox/rejected", 0o2770), ("/control", 0o2770), ("/raw", 0o2750), ("/attachments", 0o2750)] {
            var info = stat()
            #expect(stat(state + path, &info) == 0)
            #expect(Int(info.st_mode & 0o7777) == mode, "\(path): \(String(info.st_mode & 0o7777, radix: 8))")
        }
    }

    @Test func aDeskMemberSendsThroughTheOutboxAndTheDaemonTakesIt() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try setUp(directory)
        let sent = try runAsNobody(["send", "--config", config, "--mailbox", "out", "--to", "someone@example.com", "--subject", "From the desk", "--text", "hi"], groups: [Self.deskGroup])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(sent.stderr.contains("handed to the daemon"))
        #expect(sent.stderr.contains("the daemon is not running: the submission waits in \(state)/outbox"))
        // In the outbox, readable by the daemon's group; nothing written in the daemon's own files.
        let submissions = files(in: state + "/outbox").filter { $0.hasSuffix(".json") }
        #expect(submissions.count == 1)
        var info = stat()
        #expect(stat(state + "/outbox/" + (submissions.first ?? ""), &info) == 0)
        #expect(info.st_gid == Self.deskGroup && info.st_mode & 0o040 != 0, "group \(info.st_gid), mode \(String(info.st_mode & 0o777, radix: 8))")
        #expect(!FileManager.default.fileExists(atPath: state + "/threading.key"))
        #expect(!FileManager.default.fileExists(atPath: state + "/queue/out"))
        // The daemon (the owner) takes it: queued, the outbox empty.
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.stderr.contains("submission queued"), "\(run.stderr)")
        #expect(files(in: state + "/outbox").filter { $0.hasSuffix(".json") }.isEmpty)
        #expect(files(in: state + "/queue/out").contains { $0.hasSuffix(".json") })
    }

    @Test func aUserOutsideTheGroupIsToldWhatToDo() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try setUp(directory)
        let sent = try runAsNobody(["send", "--config", config, "--mailbox", "out", "--to", "someone@example.com", "--subject", "s", "--text", "t"], groups: [])
        #expect(sent.status == 65)
        #expect(sent.stderr.contains("cannot write into \(state)/outbox (permission denied)"), "\(sent.stderr)")
        #expect(sent.stderr.contains("group"))
        #expect(files(in: state + "/outbox").filter { $0.hasSuffix(".json") }.isEmpty)
    }

    @Test func aDeskMemberChangesTheQueueOnlyThroughTheDaemon() throws {
        let directory = try TemporaryDirectory()
        let (config, _) = try setUp(directory)
        let retried = try runAsNobody(["queue", "retry", "--config", config, "send-1-abcdef0123"], groups: [Self.deskGroup])
        #expect(retried.status == 74)
        #expect(retried.stderr.contains("the daemon is not running, and the queue belongs to root"), "\(retried.stderr)")
    }

    @Test func rootActsAsTheStateDirectorysOwner() throws {
        let directory = try TemporaryDirectory()
        let (config, state) = try setUp(directory)
        try chownTree(state, uid: Self.nobody, gid: Self.nobody)
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "out", "--to", "someone@example.com", "--subject", "As root", "--text", "hi"])
        #expect(sent.status == 0, "\(sent.stderr)")
        // Queued directly (no daemon runs), every file the owner's, none root's.
        #expect(files(in: state + "/queue/out").contains { $0.hasSuffix(".json") })
        for entry in try FileManager.default.subpathsOfDirectory(atPath: state) {
            var info = stat()
            #expect(lstat(state + "/" + entry, &info) == 0)
            #expect(info.st_uid == Self.nobody, "\(entry) belongs to uid \(info.st_uid)")
        }
        // The daemon itself is not run as root on the service's directory.
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 77)
        #expect(run.stderr.contains("belongs to nobody"), "\(run.stderr)")
    }

    @Test func unreadableConfigurationFilesSayPermissionDenied() throws {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        let config = try directory.write("carteiro.conf", "include = \"conf.d/*.conf\"\n" + daemonConfiguration(state: directory.path + "/state", mailboxes: "", contractMailboxes: []), mode: 0o644)
        try directory.write("conf.d/customer.conf", "# a customer\n", mode: 0o600)
        chmod(directory.path + "/conf.d", 0o755)
        let file = try runAsNobody(["check-config", "--config", config], groups: [])
        #expect(file.status == 78)
        #expect(file.stderr.contains("cannot include \(directory.path)/conf.d/customer.conf: it cannot be read (permission denied)"), "\(file.stderr)")
        // A folder that cannot be listed is no "empty conf.d".
        chmod(directory.path + "/conf.d", 0o700)
        let folder = try runAsNobody(["check-config", "--config", config], groups: [])
        #expect(folder.status == 78)
        #expect(folder.stderr.contains("cannot include \(directory.path)/conf.d/*.conf: cannot list its folder (permission denied)"), "\(folder.stderr)")
        // The main file: permission denied, and no second, spurious error about [daemon].
        chmod(config, 0o600)
        let main = try runAsNobody(["check-config", "--config", config], groups: [])
        #expect(main.status == 78)
        #expect(main.stderr.contains("cannot read the configuration \(config): it cannot be read (permission denied)"), "\(main.stderr)")
        #expect(!main.stderr.contains("[daemon]"), "\(main.stderr)")
    }
}
