import CarteiroStore
import Dispatch

extension OutboundService {
    /// `carteiro queue retry|delete` while the daemon runs (see `QueueControl`): each request
    /// goes to the lane that owns the entry; entries no running lane owns (`failed/`, the lane
    /// of a mailbox removed from the configuration) are this watcher's.
    /// How many requests are pending (in flight ones included): 0 when the folder is quiet.
    @discardableResult
    func answerControlRequests() -> Int {
        dispatchPrecondition(condition: .onQueue(watcher))
        let (pending, refused) = control.pending()
        for entry in refused {
            log.log(.warning, RefusedEntry.message, entry.fields)
        }
        for request in pending where !state.requestsInFlight.contains(request.name) {
            let control = self.control
            if request.command == .poll {
                guard let pollHandler = state.pollHandler, request.id == "*" || QueueCommand.isValidID(request.id) else {
                    control.respond(to: request.name, QueueCommand.Answer(done: false, message: "\"\(request.id)\" is not a mailbox"))
                    continue
                }
                log.log(.notice, "poll requested", ["mailbox": request.id])
                state.requestsInFlight.insert(request.name)
                pollHandler(request.id) { [self] answer in
                    control.respond(to: request.name, answer)
                    watcher.async { [self] in _ = state.requestsInFlight.remove(request.name) }
                }
                continue
            }
            if request.command == .release || request.command == .discard {
                log.log(.notice, "quarantine command", ["event": request.id, "command": request.command.rawValue])
                control.respond(to: request.name, request.command.apply(name: request.id, quarantine: Quarantine(directory)))
                continue
            }
            guard QueueCommand.isValidID(request.id) else {
                control.respond(to: request.name, QueueCommand.Answer(done: false, message: "\"\(request.id)\" is not a queue id"))
                continue
            }
            log.log(.notice, "queue command", ["queue_id": request.id, "command": request.command.rawValue])
            if let lane = state.lanes.first(where: { queue.holds(request.id, in: $0.mailbox.name) }) {
                state.requestsInFlight.insert(request.name)
                lane.apply(request.command, id: request.id) { [self] answer in
                    control.respond(to: request.name, answer)
                    watcher.async { [self] in _ = state.requestsInFlight.remove(request.name) }
                }
            } else {
                control.respond(to: request.name, request.command.apply(id: request.id, queue: queue))
            }
        }
        return pending.count
    }
}
