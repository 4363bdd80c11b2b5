import Testing
@testable import CarteiroDaemon

/// The scheduler's decisions alone, event by event: no queue, no timer, no server.
struct SchedulerMachineTests {
    typealias Action = SchedulerMachine.Action

    @Test func pollsBeyondTheSlotsWaitAndTakeTheSlotsInTurn() {
        var machine = SchedulerMachine(maxParallel: 2)
        machine.start()
        let result1 = machine.due("a")
        #expect(result1 == [.launch("a")])
        let result2 = machine.due("b")
        #expect(result2 == [.launch("b")])
        let result3 = machine.due("c")
        #expect(result3 == [])
        let result4 = machine.due("c")
        #expect(result4 == [], "a mailbox waits once")
        let result5 = machine.due("a")
        #expect(result5 == [], "never two polls of one mailbox")
        #expect(machine.waiting == ["c"])
        let result6 = machine.finished("a", failed: false, known: true, next: .seconds(60), total: 3)
        #expect(result6
                == [.answerWaiters("a"), .schedule("a", after: .seconds(60)), .launch("c")])
        #expect(machine.running == ["b", "c"])
    }

    @Test func aMailboxAskedForWhileItsPollRunsIsPolledOnceMoreAndOnlyThenAnswered() {
        var machine = SchedulerMachine(maxParallel: 4)
        machine.start()
        let result7 = machine.asked("a")
        #expect(result7 == [.launch("a")])
        let result8 = machine.asked("a")
        #expect(result8 == [])
        let result9 = machine.finished("a", failed: false, known: true, next: .seconds(60), total: 1)
        #expect(result9 == [.schedule("a", after: .zero)])
        let result10 = machine.due("a")
        #expect(result10 == [.launch("a")])
        let result11 = machine.finished("a", failed: false, known: true, next: .seconds(60), total: 1)
        #expect(result11
                == [.answerWaiters("a"), .schedule("a", after: .seconds(60))])
    }

    @Test func runOnceAnswersWhenEveryMailboxWasPolledWithTheFailures() {
        var machine = SchedulerMachine(maxParallel: 1)
        let result12 = machine.pollOnce(["a", "b"])
        #expect(result12 == [.launch("a")])
        let result13 = machine.finished("a", failed: true, known: true, next: .seconds(5), total: 2)
        #expect(result13 == [.answerWaiters("a"), .launch("b")])
        let result14 = machine.finished("b", failed: false, known: true, next: .seconds(60), total: 2)
        #expect(result14 == [.answerWaiters("b"), .onceDone(failures: 1)])
        #expect(machine.mode == .ready, "nothing is scheduled after it: the schedule was never started")
        // And again: each run counts afresh.
        let result15 = machine.pollOnce(["a", "b"])
        #expect(result15 == [.launch("a")])
        let result16 = machine.finished("a", failed: false, known: true, next: .seconds(60), total: 2)
        #expect(result16 == [.answerWaiters("a"), .launch("b")])
        let result17 = machine.finished("b", failed: false, known: true, next: .seconds(60), total: 2)
        #expect(result17 == [.answerWaiters("b"), .onceDone(failures: 0)])
        let result18 = machine.pollOnce([])
        #expect(result18 == [.onceDone(failures: 0)])
    }

    @Test func aStopWaitsForThePollsInFlightAndStartsNothingMore() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        let result19 = machine.due("a")
        #expect(result19 == [.launch("a")])
        let result20 = machine.due("b")
        #expect(result20 == [])
        let result21 = machine.stop()
        #expect(result21 == [])
        #expect(machine.mode == .stopping)
        let result22 = machine.due("c")
        #expect(result22 == [])
        let result23 = machine.asked("a")
        #expect(result23 == [])
        let result24 = machine.finished("a", failed: false, known: true, next: .seconds(60), total: 2)
        #expect(result24 == [.answerWaiters("a"), .stopped],
                "b waited: it never starts")
        #expect(machine.mode == .stopped)
        let result25 = machine.stop()
        #expect(result25 == [])
    }

    @Test func aStopWithNothingRunningIsDoneAtOnce() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        let result26 = machine.stop()
        #expect(result26 == [.stopped])
    }

    @Test func aMailboxARemovedWhileItsPollRanGivesItsSlotBack() {
        var machine = SchedulerMachine(maxParallel: 1)
        machine.start()
        let result27 = machine.due("gone")
        #expect(result27 == [.launch("gone")])
        let result28 = machine.due("b")
        #expect(result28 == [])
        let result29 = machine.due("also-gone")
        #expect(result29 == [])
        machine.removed(["gone", "also-gone"])
        let result30 = machine.finished("gone", failed: false, known: false, next: .zero, total: 1)
        #expect(result30 == [.launch("b")])
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
        let result31 = machine.fillSlots()
        #expect(result31 == [.launch("b")])
    }
}
