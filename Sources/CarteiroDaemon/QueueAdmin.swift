import CarteiroStore
import Foundation

/// `carteiro queue retry|delete` and `carteiro quarantine release|delete` as a command line runs them: through the running daemon when
/// there is one (the queue's owner, see `QueueControl`), else under the state directory's lock.
package enum QueueAdmin {
    package enum Outcome: Equatable {
        case done(String)
        case notFound(String)
        /// Not a queue id: refused before anything is touched.
        case invalid(String)
        /// The daemon did not answer in time; the request stays and is applied later.
        case pending(String)
        case failed(String)
    }

    /// `spool`: where the quarantine is (beside the spool), for `release` and `discard`.
    package static func perform(_ command: QueueCommand, id: String, stateDirectory: String, spool: String? = nil,
                                timeout: Duration = .seconds(30)) -> Outcome {
        let quarantined = command == .release || command == .discard
        if quarantined {
            guard Quarantine.isValidName(id) else { return .invalid("\"\(id)\" is not a held event (names are what `carteiro quarantine list` shows)") }
        } else {
            guard QueueCommand.isValidID(id) else { return .invalid("\"\(id)\" is not a queue id (ids are what `carteiro queue list` shows)") }
        }
        if case .member(let owner) = StateAccess.of(stateDirectory) {
            // The desk's users ask the daemon; only its owner changes the queue directly.
            let (held, pid) = StateLock.isHeld(stateDirectory: stateDirectory)
            guard held else {
                return .failed("the daemon is not running, and the queue belongs to \(owner): start it (systemctl start carteiro), or run this as root")
            }
            return throughDaemon(command, id: id, stateDirectory: stateDirectory, pid: pid, timeout: timeout)
        }
        let lock: StateLock
        do {
            lock = try StateLock.acquire(stateDirectory: stateDirectory)
        } catch {
            guard case .held(_, let pid) = error else { return .failed(error.description) }
            return throughDaemon(command, id: id, stateDirectory: stateDirectory, pid: pid, timeout: timeout)
        }
        // No daemon runs, and none can start while this holds the lock.
        let answer = withExtendedLifetime(lock) {
            quarantined ? command.apply(name: id, quarantine: Quarantine(StateDirectory(root: stateDirectory, spool: spool ?? stateDirectory + "/events")))
                        : command.apply(id: id, queue: OutboundQueue(stateDirectory: stateDirectory))
        }
        return answer.done ? .done(answer.message) : .notFound(answer.message)
    }

    static func throughDaemon(_ command: QueueCommand, id: String, stateDirectory: String, pid: Int32?, timeout: Duration) -> Outcome {
        let control = QueueControl(stateDirectory: stateDirectory)
        let name: String
        do {
            name = try control.send(command, id: id)
        } catch {
            return .failed("cannot hand the request to the running daemon: \(error.description)")
        }
        guard let answer = control.answer(to: name, timeout: timeout) else {
            let who = pid.map { "the daemon (pid \($0))" } ?? "the daemon"
            return .pending("\(who) has not answered within \(timeout.components.seconds)s (it may be busy sending); the request stays and is applied when it gets to it")
        }
        return answer.done ? .done(answer.message) : .notFound(answer.message)
    }
}
