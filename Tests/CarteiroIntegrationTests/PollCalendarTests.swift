@testable import CarteiroDaemon
import CarteiroTesting
import Testing

/// The scheduler's calendar: one alarm for every mailbox's next poll.
struct PollCalendarTests {
    @Test func takesWhatIsDueEarliestFirstWithinEachSlack() {
        var calendar = PollCalendar()
        calendar.set("c", at: 3_000, slack: 0)
        calendar.set("a", at: 1_000, slack: 100)
        calendar.set("b", at: 2_000, slack: 500)
        #expect(calendar.earliest()! == (900, 100))
        #expect(calendar.takeDue(now: 899).isEmpty)
        #expect(calendar.takeDue(now: 900) == ["a"])
        // b may go 500 early, c not at all.
        #expect(calendar.takeDue(now: 1_600) == ["b"])
        #expect(calendar.earliest()! == (3_000, 0))
        #expect(calendar.takeDue(now: 2_999).isEmpty)
        #expect(calendar.takeDue(now: 10_000) == ["c"])
        #expect(calendar.isEmpty && calendar.earliest() == nil)
    }

    @Test func aNewPlanReplacesTheOldAndRemovedEntriesNeverComeDue() {
        var calendar = PollCalendar()
        calendar.set("a", at: 1_000, slack: 0)
        calendar.set("b", at: 2_000, slack: 0)
        calendar.set("a", at: 5_000, slack: 0)
        calendar.remove("b")
        #expect(calendar.count == 1 && calendar.contains("a") && !calendar.contains("b"))
        #expect(calendar.earliest()! == (5_000, 0))
        #expect(calendar.takeDue(now: 4_999).isEmpty)
        #expect(calendar.takeDue(now: 5_000) == ["a"])
        // A slack larger than the time itself starts at zero, never wraps round.
        calendar.set("z", at: 10, slack: 1_000)
        #expect(calendar.earliest()! == (0, 10))
    }

    /// Against a plain dictionary, through random plans, replacements, removals and takes: the
    /// same names come due, and none is left behind past its time.
    @Test func agreesWithADictionaryThroughRandomUse() {
        var generator = SeededGenerator(seed: 20261130)
        var calendar = PollCalendar()
        var model: [String: (at: UInt64, slack: UInt64)] = [:]
        var now: UInt64 = 0
        for _ in 0..<20_000 {
            let name = "m\(Int.random(in: 0..<200, using: &generator))"
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<5:
                let at = now + UInt64.random(in: 0..<10_000, using: &generator), slack = UInt64.random(in: 0..<300, using: &generator)
                calendar.set(name, at: at, slack: slack)
                model[name] = (at, min(slack, at))
            case 5:
                calendar.remove(name)
                model[name] = nil
            default:
                now += UInt64.random(in: 0..<400, using: &generator)
                let taken = calendar.takeDue(now: now)
                for name in taken {
                    #expect(model[name].map { $0.at - $0.slack <= now } == true)
                    model[name] = nil
                }
                // Nothing left behind is overdue, and the alarm goes off for the earliest.
                #expect(model.values.allSatisfy { $0.at > now })
                if let earliest = calendar.earliest(), let first = model.values.map(\.at).min() {
                    #expect(model.values.contains { $0.at == first && $0.at - $0.slack == earliest.from })
                } else {
                    #expect(model.isEmpty && calendar.earliest() == nil)
                }
            }
            #expect(calendar.count == model.count)
        }
    }
}
