import Testing
@testable import CarteiroDaemon

/// The IDLE connection's lifecycle alone, event by event: no socket, no server, no clock but the
/// instants given.
struct IdleMachineTests {
    let start = ContinuousClock.now

    @Test func connectsIdlesRefreshesAndLends() {
        var machine = IdleMachine(pollInterval: .seconds(60))
        let result1 = machine.start()
        #expect(result1 == .connect)
        let result2 = machine.start()
        #expect(result2 == .none, "started once")
        #expect(machine.holdsConnection)
        let result3 = machine.connected(at: start)
        #expect(result3 == .wait)
        let result4 = machine.refreshDue()
        #expect(result4 == .renew)
        let result5 = machine.lend()
        #expect(!result5, "a connection in the middle of its refresh is not lent")
        let result6 = machine.resumed()
        #expect(result6 == .wait)
        let result7 = machine.lend()
        #expect(result7)
        #expect(machine.state == .lent)
        let result8 = machine.refreshDue()
        #expect(result8 == .none, "a lent connection is the poll's")
        #expect(machine.holdsConnection, "a poll's own connection is not kept meanwhile")
        let result9 = machine.resumed()
        #expect(result9 == .wait)
        #expect(machine.state == .idling)
    }

    @Test func reconnectsBackOffFiveTenTwentyUpToThePollInterval() {
        var machine = IdleMachine(pollInterval: .seconds(30))
        _ = machine.start()
        var delays: [Duration] = []
        for second in 0..<5 {
            guard case .reconnect(let delay) = machine.lost(at: start + .seconds(second)) else { Issue.record("no reconnect"); return }
            delays.append(delay)
            #expect(!machine.holdsConnection)
            let result10 = machine.reconnectDue()
            #expect(result10 == .connect)
            let result11 = machine.connected(at: start + .seconds(second) + .milliseconds(500))
            #expect(result11 == .wait)
        }
        #expect(delays == [.seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(30)])
    }

    @Test func onlyAConnectionThatLastedStartsTheBackoffAgain() {
        var machine = IdleMachine(pollInterval: .seconds(600))
        _ = machine.start()
        let result12 = machine.lost(at: start)
        #expect(result12 == .reconnect(after: .seconds(5)))
        _ = machine.reconnectDue()
        _ = machine.connected(at: start + .seconds(5))
        let result13 = machine.lost(at: start + .seconds(6))
        #expect(result13 == .reconnect(after: .seconds(10)), "a second is not lasting")
        _ = machine.reconnectDue()
        _ = machine.connected(at: start + .seconds(20))
        let result14 = machine.lost(at: start + .seconds(20) + IdleMachine.lastingConnection)
        #expect(result14 == .reconnect(after: .seconds(5)))
    }

    @Test func aStopEndsEverythingAndWhatComesBackAfterItIsDiscarded() {
        var idling = IdleMachine(pollInterval: .seconds(60))
        _ = idling.start()
        _ = idling.connected(at: start)
        let result15 = idling.stop()
        #expect(result15 == .close)
        let result16 = idling.lost(at: start)
        #expect(result16 == .none, "no reconnect after a stop")
        let result17 = idling.reconnectDue()
        #expect(result17 == .none)
        let result18 = idling.lend()
        #expect(!result18)

        var connecting = IdleMachine(pollInterval: .seconds(60))
        _ = connecting.start()
        let result19 = connecting.stop()
        #expect(result19 == .none, "the worker holds the connection")
        let result20 = connecting.connected(at: start)
        #expect(result20 == .discard, "it comes back after the stop: closed")

        var lent = IdleMachine(pollInterval: .seconds(60))
        _ = lent.start()
        _ = lent.connected(at: start)
        _ = lent.lend()
        let result21 = lent.stop()
        #expect(result21 == .none)
        let result22 = lent.resumed()
        #expect(result22 == .discard, "given back after the stop: closed")

        var backingOff = IdleMachine(pollInterval: .seconds(60))
        _ = backingOff.start()
        _ = backingOff.lost(at: start)
        _ = backingOff.stop()
        let result23 = backingOff.reconnectDue()
        #expect(result23 == .none)
    }

    @Test func aServerWithoutIdleIsPolledOnly() {
        var machine = IdleMachine(pollInterval: .seconds(60))
        _ = machine.start()
        machine.offersNoIdle()
        #expect(machine.state == .pollingOnly)
        #expect(!machine.holdsConnection)
        let result24 = machine.refreshDue()
        #expect(result24 == .none)
        let result25 = machine.reconnectDue()
        #expect(result25 == .none)
    }
}
