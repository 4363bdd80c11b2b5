import Dispatch

/// State owned by one serial queue: a service's timers, waiters and tables, which its queue
/// reads and changes and nothing else does. Each member is reached through the box
/// (`state.calendar`), and each reach is checked to be on the owning queue in debug builds
/// (the tests), as swift-nio checks that a channel's state is touched on its event loop.
///
/// This and `Handover` are the only places in the daemon that vouch for sendability
/// themselves: the compiler cannot see that a serial queue is a lock, so the box says it once,
/// and every service built on it is checked `Sendable` (its other members are constants).
@dynamicMemberLookup
final class QueueOwned<State>: @unchecked Sendable {
    /// The queue that owns the state.
    let queue: DispatchQueue
    private var state: State

    init(_ state: State, on queue: DispatchQueue) {
        self.state = state
        self.queue = queue
    }

    subscript<Member>(dynamicMember member: WritableKeyPath<State, Member>) -> Member {
        get {
            checkOwner()
            return state[keyPath: member]
        }
        _modify {
            checkOwner()
            yield &state[keyPath: member]
        }
    }

    /// The whole state at once, for changes that touch several members together.
    func update<Result>(_ change: (inout State) throws -> Result) rethrows -> Result {
        checkOwner()
        return try change(&state)
    }

    @inline(__always)
    private func checkOwner() {
        #if DEBUG
        dispatchPrecondition(condition: .onQueue(queue))
        #endif
    }
}
