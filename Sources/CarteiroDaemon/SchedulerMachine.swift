/// The scheduler's decisions, without I/O: which polls start now and which wait for one of the
/// `max_parallel_polls` slots, when a mailbox is polled again, when `run --once` and `stop` are
/// answered. `InboundScheduler` feeds it events (a mailbox due, a poll finished, a stop) and
/// carries out the actions it returns (start a poll, set the next one on the calendar, answer a
/// waiter); the machine is tested alone, event by event.
struct SchedulerMachine: Equatable {
    enum Mode: Equatable {
        /// Made, not started: polls run only when asked for.
        case ready
        /// Every mailbox on its schedule.
        case running
        /// `run --once`: every mailbox polled once; `started` says what follows it.
        case once(polled: Set<String>, failures: Int, started: Bool)
        /// No new poll; the ones running finish.
        case stopping
        /// Nothing runs, nothing will.
        case stopped
    }

    enum Action: Equatable {
        /// Start a poll of the mailbox (a slot is taken).
        case launch(String)
        /// Put the mailbox's next poll on the calendar, after `after`.
        case schedule(String, after: Duration)
        /// Answer whoever waits for the mailbox's poll (`carteiro poll`).
        case answerWaiters(String)
        /// Every mailbox was polled once: answer `run --once` with the failures.
        case onceDone(failures: Int)
        /// The stop is complete: answer it.
        case stopped
    }

    private(set) var mode: Mode = .ready
    private(set) var running: Set<String> = []
    private(set) var waiting: [String] = []
    /// Asked for while their poll ran (which may have started before the new mail): polled
    /// once more as soon as it ends.
    private(set) var pollAgain: Set<String> = []
    var maxParallel: Int {
        didSet { maxParallel = max(1, maxParallel) }
    }

    init(maxParallel: Int) {
        self.maxParallel = max(1, maxParallel)
    }

    var isStopping: Bool {
        switch mode {
        case .stopping, .stopped: true
        default: false
        }
    }

    /// The schedule begins.
    mutating func start() {
        if case .ready = mode { mode = .running }
        if case .once(let polled, let failures, _) = mode { mode = .once(polled: polled, failures: failures, started: true) }
    }

    /// The mailbox is due (its alarm, a request, IDLE's news): it starts if a slot is free,
    /// else waits for one; never twice at once, never once stopping.
    mutating func due(_ name: String) -> [Action] {
        guard !isStopping, !running.contains(name) else { return [] }
        guard running.count < maxParallel else {
            if !waiting.contains(name) { waiting.append(name) }
            return []
        }
        running.insert(name)
        return [.launch(name)]
    }

    /// `carteiro poll`: a mailbox whose poll runs is polled once more when it ends.
    mutating func asked(_ name: String) -> [Action] {
        guard !isStopping else { return [] }
        if running.contains(name) {
            pollAgain.insert(name)
            return []
        }
        return due(name)
    }

    /// `run --once`: every one of `names` polled now.
    mutating func pollOnce(_ names: [String]) -> [Action] {
        guard !isStopping else { return [] }
        let started = mode == .running
        guard !names.isEmpty else { return [.onceDone(failures: 0)] }
        mode = .once(polled: [], failures: 0, started: started)
        return names.flatMap { due($0) }
    }

    /// Mailboxes a reload removed wait no more.
    mutating func removed(_ names: Set<String>) {
        waiting.removeAll { names.contains($0) }
        pollAgain.subtract(names)
    }

    /// A poll ended. `known`: its mailbox is still configured; `next`: when it is due again
    /// (its interval, or the backoff after a failure); `total`: how many mailboxes there are.
    mutating func finished(_ name: String, failed: Bool, known: Bool, next: Duration, total: Int) -> [Action] {
        running.remove(name)
        guard known else { return fillSlots() + stoppedIfIdle() }
        if pollAgain.remove(name) != nil, !isStopping {
            // Polled once more now; the waiters hear of that poll.
            return [.schedule(name, after: .zero)] + fillSlots()
        }
        var actions: [Action] = [.answerWaiters(name)]
        switch mode {
        case .once(var polled, var failures, let started):
            polled.insert(name)
            if failed { failures += 1 }
            actions += fillSlots()
            if polled.count >= total {
                mode = started ? .running : .ready
                actions.append(.onceDone(failures: failures))
            } else {
                mode = .once(polled: polled, failures: failures, started: started)
            }
        case .stopping, .stopped:
            actions += stoppedIfIdle()
        case .ready, .running:
            actions.append(.schedule(name, after: next))
            actions += fillSlots()
        }
        return actions
    }

    /// No new poll from now on; answered once the running ones end.
    mutating func stop() -> [Action] {
        guard !isStopping else { return [] }
        mode = .stopping
        waiting.removeAll()
        pollAgain.removeAll()
        return stoppedIfIdle()
    }

    /// The waiting mailboxes take the free slots.
    mutating func fillSlots() -> [Action] {
        var actions: [Action] = []
        while !isStopping, running.count < maxParallel, !waiting.isEmpty {
            let name = waiting.removeFirst()
            running.insert(name)
            actions.append(.launch(name))
        }
        return actions
    }

    private mutating func stoppedIfIdle() -> [Action] {
        guard mode == .stopping, running.isEmpty else { return [] }
        mode = .stopped
        return [.stopped]
    }
}
