import Foundation
import Testing
import CarteiroTesting

/// An IMAP server for IDLE storms, counting what the daemon does to it: EXAMINEs (the IDLE
/// connection's logins), SELECTs (polls), LOGINs. In IDLE it floods `* N EXISTS` (about 2,000
/// lines a second) until DONE, with N fixed or growing; or it drops every IDLE connection a
/// second after it began.
final class StormServer: @unchecked Sendable {
    enum Mode { case sameCount, growing, dropAfterASecond }
    let mode: Mode
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private var folderCount = 5
    /// Per connection: the IDLE tag, and the flood's stop flag and end signal.
    private var idling: [Int32: (tag: String, stop: Flood, done: DispatchSemaphore)] = [:]
    private(set) var server: ScriptedServer!

    init(_ mode: Mode) throws {
        self.mode = mode
        server = try ScriptedServer(greeting: "* OK [CAPABILITY IMAP4rev1 IDLE] storm\r\n") { [unowned self] line, writer in self.handle(line, writer) }
    }

    func count(_ command: String) -> Int { lock.withLock { counts[command, default: 0] } }

    private func handle(_ line: String, _ writer: ScriptedServer.Writer) {
        let words = line.split(separator: " ", maxSplits: 2).map(String.init)
        if words.first?.uppercased() == "DONE" {
            guard let idle = lock.withLock({ idling.removeValue(forKey: writer.connection) }) else { return }
            lock.withLock { idle.stop.stopped = true }
            idle.done.wait()
            writer.write("\(idle.tag) OK idle done\r\n")
            return
        }
        guard words.count >= 2 else { return }
        let tag = words[0], command = words[1].uppercased()
        lock.withLock { counts[command, default: 0] += 1 }
        let count = lock.withLock { folderCount }
        switch command {
        case "CAPABILITY": writer.write("* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n\(tag) OK done\r\n")
        case "SELECT", "EXAMINE": writer.write("* \(count) EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT \(count + 1)] n\r\n\(tag) OK done\r\n")
        case "UID": writer.write((words.count > 2 && words[2].uppercased().hasPrefix("SEARCH") ? "* SEARCH\r\n" : "") + "\(tag) OK done\r\n")
        case "LOGOUT": writer.write("* BYE bye\r\n\(tag) OK done\r\n")
        case "IDLE":
            writer.write("+ idling\r\n")
            if mode == .dropAfterASecond {
                DispatchQueue.global().asyncAfter(deadline: .now() + 1) { writer.hangUp() }
                return
            }
            let stop = Flood()
            let done = DispatchSemaphore(value: 0)
            lock.withLock { idling[writer.connection] = (tag, stop, done) }
            Thread { [self] in
                // 20 lines every 10 ms: about 2,000 a second.
                while !lock.withLock({ stop.stopped }) {
                    var burst = ""
                    for _ in 0..<20 {
                        let n = lock.withLock { () -> Int in
                            if mode == .growing { folderCount += 1 }
                            return folderCount
                        }
                        burst += "* \(n) EXISTS\r\n"
                    }
                    guard writer.write(burst) else { break }
                    usleep(10_000)
                }
                done.signal()
            }.start()
        default: writer.write("\(tag) OK done\r\n")
        }
    }
}

/// A flood's stop flag (under the server's lock).
final class Flood: @unchecked Sendable {
    var stopped = false
}

struct IdleStormTests {
    func daemon(_ server: StormServer, _ directory: TemporaryDirectory) throws -> DaemonProcess {
        let mailbox = """
            [mailbox.storm]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(server.server.port)
            user = "u"
            password = "p"
            timeout = "5s"
            after_fetch = "seen"

            """
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1h", mailboxes: mailbox, contractMailboxes: ["storm"]), mode: 0o600)
        return try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
    }

    /// The polls (SELECTs) a daemon asks of `server` in the 12 s after its IDLE began.
    func pollsIn12Seconds(_ server: StormServer) throws -> Int {
        let directory = try TemporaryDirectory()
        defer { server.server.stop() }
        let daemon = try daemon(server, directory)
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(15)) { daemon.log.contains("idle mailbox=storm") }, "\(daemon.log.suffix(2000))")
        let selectsAtIdle = server.count("SELECT")
        Thread.sleep(forTimeInterval: 12)
        return server.count("SELECT") - selectsAtIdle
    }

    /// ~2,000 `* 5 EXISTS` a second, the count never changing, for 12 s: nothing is new, so no
    /// poll beyond the first (before, ~1,500 polls in 15 s).
    @Test func aFloodOfTheSameCountAsksNoPoll() throws {
        let server = try StormServer(.sameCount)
        let polls = try pollsIn12Seconds(server)
        print("IDLE flood, same count: \(polls) polls in 12 s, \(server.count("LOGIN")) logins")
        #expect(polls <= 1, "\(polls) polls")
        #expect(server.count("LOGIN") <= 3)
    }

    /// ~2,000 `* N EXISTS` a second, N growing each time, for 12 s: the news is real, and it is
    /// gathered into a poll at most every 2 s (so at most 7 in 12 s), never one per burst.
    @Test func aFloodOfNewMailIsPolledAtMostEveryTwoSeconds() throws {
        let server = try StormServer(.growing)
        let polls = try pollsIn12Seconds(server)
        print("IDLE flood, growing count: \(polls) polls in 12 s")
        #expect(polls >= 2, "news keeps being polled: \(polls)")
        #expect(polls <= 7, "\(polls) polls")
    }

    /// A server that drops every IDLE connection a second after it began: the reconnect waits
    /// 5 s, then 10 s, then 20 s (before: 5 s for ever), counted by the IDLE connections made
/// (each opens the folder with EXAMINE; polls, with `after_fetch = "seen"`, SELECT).
    @Test func reconnectsBackOffWhenEveryConnectionDrops() throws {
        let directory = try TemporaryDirectory()
        let server = try StormServer(.dropAfterASecond)
        defer { server.server.stop() }
        let daemon = try daemon(server, directory)
        defer { _ = daemon.terminate() }
        #expect(waitUntil(timeout: .seconds(40)) { daemon.log.contains("retry_in=20s") }, "\(daemon.log.suffix(3000))")
        let retries = daemon.log.components(separatedBy: "\n").filter { $0.contains("idle connection lost") }.compactMap { line in
            line.range(of: "retry_in=").map { String(line[$0.upperBound...].prefix { $0 != " " && $0 != "\"" }) }
        }
        print("IDLE drops: retries \(retries), \(server.count("EXAMINE")) IDLE logins")
        #expect(Array(retries.prefix(3)) == ["5s", "10s", "20s"], "\(retries)")
        #expect(server.count("EXAMINE") == 3, "\(server.count("EXAMINE"))")
    }
}

/// Eight mailboxes whose servers trickle every reply (a byte every quarter second), and one
/// healthy mailbox, in one daemon with 8 poll slots: the tricklers fail at the floor within
/// their 2 s timeout and back off, and the healthy one keeps its 1 s interval (before, the
/// eight held every slot until max_poll_time, 10 minutes).
struct TrickleSchedulingTests {
    @Test func eightTricklersDoNotStopAHealthyMailbox() throws {
        let directory = try TemporaryDirectory()
        let healthy = try StormServer(.sameCount)
        defer { healthy.server.stop() }
        let tricklers = try (0..<8).map { _ in
            try HostileServerTests.imap { _, command, writer in
                guard command.hasPrefix("EXAMINE") || command.hasPrefix("SELECT") else { return false }
                HostileServerTests.trickle("* 1 EXISTS\r\n", writer)
                return true
            }
        }
        defer { for server in tricklers { server.stop() } }
        func mailbox(_ name: String, _ port: Int) -> String {
            """
            [mailbox.\(name)]
            type = "inbound"
            provider = "imap"
            starttls = false
            server = "127.0.0.1"
            port = \(port)
            user = "u"
            password = "p"
            timeout = "2s"
            idle = false

            """
        }
        let names = ["healthy"] + (0..<8).map { "slow\($0)" }
        let text = mailbox("healthy", healthy.server.port) + tricklers.enumerated().map { mailbox("slow\($0.offset)", $0.element.port) }.joined()
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", pollInterval: "1s", maxParallel: 8,
                                                                                 mailboxes: text, contractMailboxes: names), mode: 0o600)
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        Thread.sleep(forTimeInterval: 20)
        let polls = healthy.count("EXAMINE")
        let slow = daemon.log.components(separatedBy: "below the floor").count - 1
        print("eight tricklers: the healthy mailbox was polled \(polls) times in 20 s; \(slow) trickled polls failed at the floor")
        #expect(polls >= 10, "\(polls) polls of the healthy mailbox: \(daemon.log.suffix(3000))")
        #expect(slow >= 8, "\(daemon.log.suffix(3000))")
    }
}
