import Dispatch
import Synchronization

/// A request to stop, seen at once by the pass it should interrupt. Set from any thread; read
/// between units of work by the thread doing them. (A flag set by a block queued behind the
/// running pass would be seen only once that pass had finished.)
final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    var isRaised: Bool { raised.load(ordering: .acquiring) }
    func raise() { raised.store(true, ordering: .releasing) }
}

/// How the daemon ends: the first exit status given wins, and `main`, waiting in `wait`, gets
/// it (and exits with it: nothing below `main` ends the process).
final class DaemonEnding: Sendable {
    private let status = Mutex<Int32?>(nil)
    private let ended = DispatchSemaphore(value: 0)

    func end(_ code: Int32) {
        let first = status.withLock { current -> Bool in
            guard current == nil else { return false }
            current = code
            return true
        }
        if first { ended.signal() }
    }

    func wait() -> Int32 {
        ended.wait()
        return status.withLock { $0 } ?? 0
    }
}

/// The pipe the signal handlers write to (see `Daemon.catchSignals`): made once, before any
/// signal can come. Atomics, since a signal handler may read them on any thread, and they are
/// lock-free (safe in a handler).
enum SignalPipe {
    static let read = Atomic<Int32>(-1)
    static let write = Atomic<Int32>(-1)
}
