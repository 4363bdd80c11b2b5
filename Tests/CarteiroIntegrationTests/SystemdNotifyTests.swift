#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import CarteiroTesting

/// sd_notify as systemd sees it: a datagram socket named by $NOTIFY_SOCKET.
struct SystemdNotifyTests {
    /// A bound AF_UNIX datagram socket that collects what the daemon sends.
    final class NotifySocket {
        let path: String
        let fd: Int32

        init(path: String) throws {
            self.path = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (i, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[i] = byte }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd); unlink(path) }

        /// Every datagram received until `until` holds or `timeout` passes.
        func collect(timeout: Duration, until: ([String]) -> Bool) -> [String] {
            var messages: [String] = []
            let deadline = ContinuousClock.now + timeout
            var buffer = [UInt8](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline && !until(messages) {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count > 0 { messages.append(String(decoding: buffer[0..<count], as: UTF8.self)) }
            }
            return messages
        }
    }

    /// `carteiro run` with $NOTIFY_SOCKET (and $WATCHDOG_USEC when given) as systemd sets them.
    static func daemon(config: String, socket: NotifySocket, watchdogUsec: String?) throws -> Process {
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = socket.path
        environment["WATCHDOG_USEC"] = watchdogUsec
        environment.removeValue(forKey: "WATCHDOG_PID")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: carteiroExecutable())
        process.arguments = ["run", "--config", config]
        process.environment = environment
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return process
    }

    @Test func readyWatchdogStatusStopping() throws {
        let directory = try TemporaryDirectory()
        let socket = try NotifySocket(path: directory.path + "/notify")
        let config = try directory.write("c.conf", """
        [daemon]
        system_outbound = "o"
        state_dir = "\(directory.path)/state"
        [mailbox.o]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "127.0.0.1"
        port = 1
        user = "u"
        password = "p"
        [contract.c]
        inbound_mailboxes = ["in"]
        """, mode: 0o600)
        let process = try Self.daemon(config: config, socket: socket, watchdogUsec: "400000")
        let running = socket.collect(timeout: .seconds(10)) { messages in
            messages.contains { $0.hasPrefix("READY=1") } && messages.filter { $0 == "WATCHDOG=1" }.count >= 3
        }
        kill(process.processIdentifier, SIGHUP)
        let reloading = socket.collect(timeout: .seconds(10)) { messages in
            messages.contains { $0.hasPrefix("RELOADING=1") } && messages.contains { $0.hasPrefix("READY=1") }
        }
        process.terminate()
        let stopping = socket.collect(timeout: .seconds(10)) { $0.contains { $0.hasPrefix("STOPPING=1") } }
        let reload = try #require(reloading.first { $0.hasPrefix("RELOADING=1") }, "\(reloading)")
        #expect(reload.contains("MONOTONIC_USEC="))
        let afterReload = reloading.drop { !$0.hasPrefix("RELOADING=1") }
        #expect(afterReload.contains { $0.hasPrefix("READY=1") }, "READY=1 after the reload: \(reloading)")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let ready = try #require(running.first { $0.hasPrefix("READY=1") }, "\(running)")
        #expect(ready.contains("STATUS=1 inbound mailboxes, polling"))
        #expect(running.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(running)")
        #expect(stopping.contains { $0.hasPrefix("STOPPING=1") }, "\(stopping)")
    }

    /// systemd may send SIGHUP (or SIGTERM) the moment READY=1 arrives: the handlers must be
    /// in place by then, or the default action of SIGHUP ends the daemon.
    @Test func aSIGHUPRightAfterREADYReloads() throws {
        let directory = try TemporaryDirectory()
        let socket = try NotifySocket(path: directory.path + "/notify")
        let config = try directory.write("c.conf", """
        [daemon]
        system_outbound = "o"
        state_dir = "\(directory.path)/state"
        [mailbox.o]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        """, mode: 0o600)
        for _ in 1...3 {
            let process = try Self.daemon(config: config, socket: socket, watchdogUsec: nil)
            let before = socket.collect(timeout: .seconds(30)) { $0.contains { $0.hasPrefix("READY=1") } }
            #expect(before.contains { $0.hasPrefix("READY=1") }, "\(before)")
            kill(process.processIdentifier, SIGHUP)
            let after = socket.collect(timeout: .seconds(30)) { $0.contains { $0.hasPrefix("READY=1") } }
            #expect(process.isRunning, "SIGHUP at READY ended the daemon")
            #expect(after.contains { $0.hasPrefix("RELOADING=1") }, "\(after)")
            process.terminate()
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        }
    }

    /// STATUS= carries the outbound queue as the lanes count it: here two messages queued for a
    /// server that cannot be reached, so both are deferred after the lane's first try.
    @Test func statusCountsQueuedAndDeferredMessages() throws {
        let directory = try TemporaryDirectory()
        let socket = try NotifySocket(path: directory.path + "/notify")
        let config = try directory.write("c.conf", """
        [daemon]
        system_outbound = "o"
        state_dir = "\(directory.path)/state"
        [mailbox.o]
        type = "outbound"
        server = "no-such-host.invalid"
        tls = "none"
        sender = "a@b.c"
        """, mode: 0o600)
        for n in 1...2 {
            let queued = try runCarteiro(["send", "--config", config, "--to", "cliente\(n)@acme.example", "--subject", "Aviso \(n)", "--text", "Texto"])
            #expect(queued.status == 0, "\(queued.stderr)")
        }
        let process = try Self.daemon(config: config, socket: socket, watchdogUsec: nil)
        let messages = socket.collect(timeout: .seconds(20)) { $0.contains { $0.contains("2 queued, 2 deferred") } }
        process.terminate()
        process.waitUntilExit()
        #expect(messages.contains { $0.hasPrefix("STATUS=0 mailboxes") && $0.contains("; 2 queued, 2 deferred") }, "\(messages)")
    }
}
