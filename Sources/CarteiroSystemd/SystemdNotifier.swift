import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd how the service is doing (sd_notify(3)): READY once the configuration is
/// loaded and polling runs, STATUS in one line, WATCHDOG while the scheduler is alive,
/// STOPPING at shutdown. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
package struct SystemdNotifier: Sendable {
    package init() {}

    package func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    package func status(_ text: String) { send("STATUS=\(text)") }
    package func stopping() { send("STOPPING=1\nSTATUS=stopping") }
    package func watchdog() { send("WATCHDOG=1") }

    /// systemd 253+ wants MONOTONIC_USEC with RELOADING=1; 252 ignores it.
    package func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=reloading")
    }

    /// How often to send WATCHDOG=1: half of WatchdogSec=, or nil when systemd does not watch.
    package var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds / 2))
    }

    func send(_ state: String) {
        _ = sd_notify(0, state)
    }
}
