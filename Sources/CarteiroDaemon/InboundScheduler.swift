import CarteiroJSON
import CarteiroConfig
import CarteiroEvents
import CarteiroStore
import Dispatch
import Foundation
import Synchronization

/// Polls every inbound mailbox on its own interval: one alarm over a calendar of every
/// mailbox's next poll, with jitter, at most `max_parallel_polls` at a time, exponential backoff
/// after failures. A mailbox that is down, slow or refusing delays nobody else: it only holds one
/// of the parallel slots for as long as its own timeout.
package final class InboundScheduler: Sendable {
    package typealias Poller = @Sendable () -> Result<PollOutcome, PollFailure>
    package typealias Alert = @Sendable (_ mailbox: InboundMailbox, _ status: MailboxStatus, _ recovered: Bool) -> Void

    let control = DispatchQueue(label: "carteiro.scheduler")
    let workers = DispatchQueue(label: "carteiro.polls", attributes: .concurrent)
    let log: DaemonLog
    let statusPath: String
    let alert: Alert
    /// Everything that changes, owned by `control`.
    let state: QueueOwned<State>

    struct State {
        /// Replaced by a reload.
        var mailboxes: [InboundMailbox]
        var pollers: [String: Poller] = [:]
        /// The contract owning each mailbox, for the `contract` field of log entries.
        var contracts: [String: String]
        var calendar = PollCalendar()
        /// Goes off for the calendar's earliest entry; armed for `alarmFrom` (nil: disarmed).
        var alarm: DispatchSourceTimer?
        var alarmFrom: UInt64?
        /// Which polls run, which wait, and where the lifecycle stands (see `SchedulerMachine`).
        var machine: SchedulerMachine
        var status: [String: MailboxStatus] = [:]
        /// When the status file is next written (nil: nothing waits to be written).
        var statusWriteAt: DispatchTime?
        var heartbeatTimer: DispatchSourceTimer?
        /// Who waits for the stop to complete, and for `run --once`.
        var stopWaiters: [@Sendable () -> Void] = []
        var onceCompletion: (@Sendable (Int) -> Void)?
        /// `carteiro poll`: who waits for a mailbox's next poll.
        var pollWaiters: [String: [@Sendable (Result<PollOutcome, PollFailure>) -> Void]] = [:]
        /// The result of each mailbox's last poll, for its waiters.
        var lastResult: [String: Result<PollOutcome, PollFailure>] = [:]
    }

    package init(mailboxes: [InboundMailbox], maxParallel: Int, statusPath: String, log: DaemonLog, contracts: [String: String] = [:],
                alert: @escaping Alert = { _, _, _ in }) {
        self.alert = alert
        self.log = log
        self.statusPath = statusPath
        var initial = State(mailboxes: mailboxes, contracts: contracts, machine: SchedulerMachine(maxParallel: maxParallel))
        for mailbox in mailboxes { initial.status[mailbox.name] = MailboxStatus(name: mailbox.name) }
        state = QueueOwned(initial, on: control)
    }

    /// The first mailboxes, before `start` (which schedules them).
    package func install(mailboxes: [InboundMailbox], pollers: [String: Poller], contracts: [String: String]) {
        control.sync { [self] in
            state.mailboxes = mailboxes
            state.pollers = pollers
            state.contracts = contracts
            for mailbox in mailboxes where state.status[mailbox.name] == nil { state.status[mailbox.name] = MailboxStatus(name: mailbox.name) }
        }
    }

    /// A reload: mailboxes added, changed or removed. Unchanged ones keep their next poll, their
    /// status and any poll in flight (which finishes with the poller it started with).
    package func update(mailboxes next: [InboundMailbox], pollers nextPollers: [String: Poller],
                       contracts nextContracts: [String: String], maxParallel nextMax: Int) {
        control.async { [self] in
            let before = Dictionary(uniqueKeysWithValues: state.mailboxes.map { ($0.name, $0) })
            let names = Set(next.map(\.name))
            let gone = Set(before.keys).subtracting(names)
            for name in gone {
                state.calendar.remove(name)
                state.status[name] = nil
            }
            state.machine.removed(gone)
            state.mailboxes = next
            state.pollers = nextPollers
            state.contracts = nextContracts
            state.machine.maxParallel = nextMax
            for mailbox in next {
                if let old = before[mailbox.name] {
                    // A new interval takes effect now; otherwise the timer runs on.
                    if old.pollInterval != mailbox.pollInterval, state.calendar.contains(mailbox.name) {
                        schedule(mailbox.name, after: mailbox.pollInterval)
                    }
                } else {
                    state.status[mailbox.name] = MailboxStatus(name: mailbox.name)
                    schedule(mailbox.name, after: .milliseconds(Int64.random(in: 0...1000)))
                }
            }
            perform(state.machine.fillSlots())
            armAlarm()
            writeStatus()
        }
    }

    /// Calls `beat` every `interval` from the scheduler's own queue: a stuck scheduler stops
    /// the beats, and systemd's watchdog restarts the service.
    package func heartbeat(every interval: Duration, _ beat: @escaping @Sendable () -> Void) {
        control.async { [self] in
            let timer = DispatchSource.makeTimerSource(queue: control)
            timer.schedule(deadline: .now(), repeating: .milliseconds(Int(interval.milliseconds)), leeway: .milliseconds(100))
            timer.setEventHandler(handler: beat)
            state.heartbeatTimer = timer
            timer.resume()
        }
    }

    /// "4 mailboxes: 3 ok, 1 failing; 12 handed on": the one line STATUS= carries.
    package func summary(_ done: @escaping @Sendable (String) -> Void) {
        control.async { [self] in
            let failing = state.status.values.filter { $0.consecutiveFailures > 0 }.count
            let handed = state.status.values.reduce(0) { $0 + $1.handedOn }
            done("\(state.mailboxes.count) mailboxes: \(state.mailboxes.count - failing) ok, \(failing) failing; \(handed) messages handed on")
        }
    }

    /// Polls `names` now (outside their schedule, within max_parallel_polls, never twice at
    /// once), and answers with each poll's outcome. Unknown or disabled names are left out.
    package func pollNow(_ names: [String], completion: @escaping @Sendable ([(String, Result<PollOutcome, PollFailure>)]) -> Void) {
        control.async { [self] in
            let known = names.filter { state.status[$0] != nil }
            guard !known.isEmpty, !state.machine.isStopping else { completion([]); return }
            let collected = PollResults(expected: known.count, completion: completion)
            for name in known {
                state.pollWaiters[name, default: []].append { result in collected.add(name, result) }
                state.calendar.remove(name)
                perform(state.machine.asked(name))
            }
        }
    }

    /// Polls every mailbox once, all at once (within max_parallel_polls), then calls
    /// `completion` with the number of failed polls: `carteiro run --once`.
    package func pollOnce(completion: @escaping @Sendable (Int) -> Void) {
        control.async { [self] in
            state.onceCompletion = completion
            for mailbox in state.mailboxes { state.calendar.remove(mailbox.name) }
            perform(state.machine.pollOnce(state.mailboxes.map(\.name)))
        }
    }

    package func start() {
        control.async { [self] in
            state.machine.start()
            writeStatusNow()
            for mailbox in state.mailboxes {
                // Spread the first polls so that 500 mailboxes do not connect in the same second.
                let spread = min(mailbox.pollInterval, .seconds(5))
                schedule(mailbox.name, after: .milliseconds(Int64.random(in: 0...max(1, spread.milliseconds))))
            }
        }
    }

    /// Stops scheduling, lets running polls finish, then calls `completion` (on the control queue).
    package func stop(completion: @escaping @Sendable () -> Void) {
        control.async { [self] in
            if state.machine.mode == .stopped { return completion() }
            state.stopWaiters.append(completion)
            state.heartbeatTimer?.cancel()
            state.heartbeatTimer = nil
            state.calendar.removeAll()
            state.alarm?.cancel()
            state.alarm = nil
            writeStatusNow()
            perform(state.machine.stop())
        }
    }

    /// Carries out what the machine decided.
    func perform(_ actions: [SchedulerMachine.Action]) {
        for action in actions {
            switch action {
            case .launch(let name): launch(name)
            case .schedule(let name, let delay): schedule(name, after: delay)
            case .answerWaiters(let name):
                guard let result = state.lastResult[name] else { continue }
                for waiter in state.pollWaiters.removeValue(forKey: name) ?? [] { waiter(result) }
            case .onceDone(let failures):
                writeStatusNow()
                let done = state.onceCompletion
                state.onceCompletion = nil
                done?(failures)
            case .stopped:
                writeStatusNow()
                let waiters = state.stopWaiters
                state.stopWaiters = []
                for waiter in waiters { waiter() }
            }
        }
    }

    func schedule(_ name: String, after delay: Duration) {
        guard !state.machine.isStopping else { return }
        // Up to 1 s early (2 % of the delay, at least 0.1 s): the alarm then goes off once for
        // the polls due together, not once for each of 500 mailboxes a minute.
        let slack = UInt64(min(1000, max(100, delay.milliseconds / 50))) * 1_000_000
        let now = DispatchTime.now().uptimeNanoseconds
        let nanoseconds = UInt64(clamping: delay.milliseconds) * 1_000_000
        state.calendar.set(name, at: now.addingReportingOverflow(nanoseconds).overflow ? .max : now + nanoseconds, slack: slack)
        state.status[name]?.nextPoll = Int64(Date().timeIntervalSince1970) + delay.components.seconds
        armAlarm()
    }

    /// Points the alarm at the calendar's earliest entry, if it is not already.
    func armAlarm() {
        guard !state.machine.isStopping else { return }
        let earliest = state.calendar.earliest()
        guard earliest?.from != state.alarmFrom else { return }
        state.alarmFrom = earliest?.from
        if state.alarm == nil {
            let timer = DispatchSource.makeTimerSource(queue: control)
            timer.setEventHandler { [weak self] in self?.ring() }
            timer.schedule(deadline: .distantFuture)
            timer.resume()
            state.alarm = timer
        }
        if let earliest {
            state.alarm?.schedule(deadline: DispatchTime(uptimeNanoseconds: max(1, earliest.from)), leeway: .nanoseconds(Int(clamping: earliest.slack)))
        } else {
            state.alarm?.schedule(deadline: .distantFuture)
        }
    }

    /// The alarm went off: every poll due by now starts (or waits for a slot).
    func ring() {
        state.alarmFrom = nil
        for name in state.calendar.takeDue(now: DispatchTime.now().uptimeNanoseconds) { fire(name) }
        armAlarm()
    }

    func fire(_ name: String) {
        state.calendar.remove(name)
        perform(state.machine.due(name))
    }

    func launch(_ name: String) {
        state.status[name]?.lastPoll = Int64(Date().timeIntervalSince1970)
        let poller = state.pollers[name]
        workers.async { [self] in
            let result = poller?() ?? .failure(.configuration("no poller for mailbox \(name)"))
            control.async { [self] in finish(name, result) }
        }
    }

    func finish(_ name: String, _ result: Result<PollOutcome, PollFailure>) {
        guard let mailbox = state.mailboxes.first(where: { $0.name == name }), var current = state.status[name] else {
            // Removed by a reload while it was polled.
            perform(state.machine.finished(name, failed: true, known: false, next: .zero, total: state.mailboxes.count))
            return
        }
        let now = Int64(Date().timeIntervalSince1970)
        var delay = mailbox.pollInterval
        switch result {
        case .success(let outcome):
            if current.consecutiveFailures > 0 {
                log.log(.notice, "mailbox recovered", ["mailbox": name, "contract": state.contracts[name] ?? "", "failures": String(current.consecutiveFailures)])
                if current.alerted { alert(mailbox, current, true) }
            }
            current.alerted = false
            current.consecutiveFailures = 0
            current.failingSince = nil
            current.lastError = nil
            current.lastSuccess = now
            current.handedOn += outcome.handedOn
            current.dropped += outcome.dropped
            if outcome.handedOn > 0 || outcome.skippedDuplicates > 0 || outcome.dropped > 0 {
                log.log(.info, "messages handed on", ["mailbox": name, "contract": state.contracts[name] ?? "", "count": String(outcome.handedOn),
                                                      "duplicates": String(outcome.skippedDuplicates), "dropped": String(outcome.dropped)])
            }
            if let problem = outcome.afterFetchProblem {
                log.log(.warning, "after_fetch failed", ["mailbox": name, "contract": state.contracts[name] ?? "", "reason": problem])
            }
        case .failure(let failure):
            current.consecutiveFailures += 1
            if current.failingSince == nil { current.failingSince = now }
            current.lastError = failure.description
            // 1, 2, 4, 8 … intervals, capped, with jitter so that retries do not synchronise.
            delay = RetryPolicy.poll(interval: mailbox.pollInterval).delay(after: current.consecutiveFailures)
            // A person must authorize again: that will not fix itself, so the desk hears of it at
            // once; and the poll is cheap (no server, no token endpoint is asked), so the mailbox
            // comes back one interval after `carteiro authorize`.
            var needsAuthorization = false
            if case .oauth(.needsAuthorization, _) = failure { needsAuthorization = true; delay = mailbox.pollInterval }
            if !current.alerted, let since = current.failingSince, needsAuthorization || now - since >= mailbox.alertAfter.components.seconds {
                current.alerted = true
                log.log(.error, "mailbox failing", ["mailbox": name, "contract": state.contracts[name] ?? "", "since": String(since), "reason": failure.description])
                alert(mailbox, current, false)
            }
            // Constant messages, one per thing an operator does about it (each has a MESSAGE_ID).
            var message = "poll failed"
            if case .connection(let error) = failure {
                if error.kind == .loginRejected { message = "login rejected" }
                if error.kind == .certificateUntrusted { message = "certificate untrusted" }
            }
            if needsAuthorization { message = "authorization needed" }
            if needsAuthorization && current.consecutiveFailures > 1 {
                // Said once per episode (with its MESSAGE_ID); not at every poll.
            } else {
            log.log(failure.isTransient ? .warning : .error, message, ["mailbox": name, "contract": state.contracts[name] ?? "", "failures": String(current.consecutiveFailures),
                                                                              "retry_in": ConfigDuration.format(delay), "reason": failure.description])
            }
        }
        // What an operator acts on (a failure, a recovery, mail handed on, a first poll) is in
        // the file within a second; a poll like the one before only moves its times.
        let routine = state.status[name].map { $0.consecutiveFailures == 0 && $0.lastSuccess != nil } == true
            && current.consecutiveFailures == 0 && current.handedOn == state.status[name]?.handedOn
        state.status[name] = current
        writeStatus(within: routine ? .seconds(10) : .seconds(1))
        state.lastResult[name] = result
        var failed = false
        if case .failure = result { failed = true }
        perform(state.machine.finished(name, failed: failed, known: true, next: delay, total: state.mailboxes.count))
    }

    /// Marks the status as changed; it is written within `delay`, once for every change made
    /// meanwhile (500 mailboxes finishing polls must not mean 500 file writes a minute, nor
    /// one every second when all they changed is the time of their last poll).
    func writeStatus(within delay: DispatchTimeInterval = .seconds(1)) {
        let at = DispatchTime.now() + delay
        if let pending = state.statusWriteAt, pending <= at { return }
        state.statusWriteAt = at
        control.asyncAfter(deadline: at, qos: .unspecified, flags: []) { [self] in
            // A sooner write was asked for after this one: that one wrote.
            guard state.statusWriteAt == at else { return }
            state.statusWriteAt = nil
            writeStatusNow()
        }
    }

    func writeStatusNow() {
        let document = JSONValue.object([
            ("pid", .number(Int64(getpid()))),
            ("written_at", .number(Int64(Date().timeIntervalSince1970))),
            ("mailboxes", .array(state.mailboxes.compactMap { state.status[$0.name]?.json() })),
        ])
        try? DurableFiles.replace(statusPath, with: document.renderedBytes())
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The answers of a `pollNow`, handed over once every mailbox has answered.
final class PollResults: Sendable {
    private let results = Mutex<[(String, Result<PollOutcome, PollFailure>)]>([])
    private let expected: Int
    private let completion: @Sendable ([(String, Result<PollOutcome, PollFailure>)]) -> Void

    init(expected: Int, completion: @escaping @Sendable ([(String, Result<PollOutcome, PollFailure>)]) -> Void) {
        self.expected = expected
        self.completion = completion
    }

    func add(_ name: String, _ result: Result<PollOutcome, PollFailure>) {
        let done = results.withLock { results in
            results.append((name, result))
            return results.count == expected ? results : nil
        }
        if let done { completion(done.sorted { $0.0 < $1.0 }) }
    }
}
