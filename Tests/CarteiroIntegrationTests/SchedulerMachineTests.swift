import Testing
@testable import CarteiroDaemon

/// The scheduler's decisions alone, event by event: no queue, no timer, no server.
struct SchedulerMachineTests {
    typealias Action = SchedulerMachine.Action

    @Test func pollsBeyondTheSlotsWaitAndTakeTheSlotsInTurn() {
        var machine = SchedulerMachine(maxParallel: 2)
        machine.start()
        #expect(machine.due("a") == [.launch("a")])
        #expect(machine.due("b") == [.launch("b")])
        #expect(machine.due("c") == [])
        #expect(machine.due("c") == [], "a mailbox waits once")
        #expect(machine.due("a") == [], "never two polls of one mailbox")
        #expect(machine.waiting == ["c"])
        #expect(machine.finished("a", failed: false, known: true, next: .seconds(60), total: 3)
                == [.answerWaiters("a"), .schedule("a", after: .seconds(60)), .launch("c")])
        #expect(machine.running == ["b", "c"])
    }

    @Test func aMailboxAskedForWhileItsPollRunsIsPolledOnceMoreAndOnlyThenAnswered() {
        var machine = SchedulerMachine(maxParallel: 4)
        machine.start()
        #expect(machine.asked("a") == [.launch("a")])
        #expect(machine.asked("a") == [])
        #expect(machine.finished("a", failed: false, known: true, next: .seconds(60), total: 1) == [.schedule("a", after: .zero)])
        #expect(machine.due("a") == [.launch("a")])
        #expect(machine.finished("a", failed: false, known: true, next: .seconds(60), total: 1)
                == [.answerWaiters("a"), .schedule("a", after: .seconds(60))])
    }

    @Test func runOnceAnswersWhenEveryMailboxWasPolledWithTheFailures() {
        var machine = SchedulerMachine(maxParallel: 1)
        #expect(machine.pollOnce(["a", "b"]) == [.launch("a")])
        #expect(machine.finished("a", failed: true, known: true, next: .seconds(5), total: 2) == [.answerWaiters("a"), .launch("b")])
        #expect(machine.finished("b", failed: false, known: true, next: .seconds(60), total: 2) == [.answerWaiters("b"), .onceDone(failures: 1)])
        #expect(machine.mode == .ready, "nothing is scheduled after it: the schedule was never started")
        // And again: each run counts afresh.
        #expect(machine.pollOnce(["a", "b"]) == [.launch("a")])
        #expect(machine.finished("a", failed: false, known: true, next: .seconds(60), total: 2) == [.answerWaiters("a"), .launch("b")])
        #expect(machine.finished("b", failed: false, known: true, next: .seconds(60), total: 2) == [.answerWaiters("b"), .onceDone(failures: 0)])
        #expect(machine.pollOnce([]) == [.onceDone(failures: 0)])
    }

    @Test func aStopWaitsForThePollsInFlightAndStartsNothingMore() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        #expect(machine.due("a") == [.launch("a")])
        #expect(machine.due("b") == [])
        #expect(machine.stop() == [])
        #expect(machine.mode == .stopping)
        #expect(machine.due("c") == [])
        #expect(machine.asked("a") == [])
        #expect(machine.finished("a", failed: false, known: true, next: .seconds(60), total: 2) == [.answerWaiters("a"), .stopped],
                "b waited: it never starts")
        #expect(machine.mode == .stopped)
        #expect(machine.stop() == [])
    }

    @Test func aStopWithNothingRunningIsDoneAtOnce() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        #expect(machine.stop() == [.stopped])
    }

    @Test func aMailboxARemovedWhileItsPollRanGivesItsSlotBack() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        #expect(machine.due("gone") == [.launch("gone")])
        #expect(machine.due("b") == [])
        #expect(machine.due("also-gone") == [])
        machine.removed(["gone", "also-gone"])
        #expect(machine.finished("gone", failed: false, known: false, next: .zero, total: 1) == [.launch("b")])
        #expect(machine.waiting.isEmpty)
    }

    @Test func aReloadWithMoreSlotsLetsTheWaitingStart() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        _ = machine.due("a")
        _ = machine.due("b")
        machine.maxParallel = 0
        #expect(machine.maxParallel == 1, "never fewer than one slot")
        machine.maxParallel = 2
        #expect(machine.fillSlots() == [.launch("b")])
    }
}
