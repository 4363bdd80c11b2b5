import Foundation
import Testing
import CarteiroTesting
@testable import CarteiroStore

/// The sending limits' ledger: when the next message may go, and that it outlives the process.
struct RateLedgerTests {
    @Test func perMinuteAndPerDayLimits() throws {
        let directory = try TemporaryDirectory()
        var ledger = RateLedger(path: directory.path + "/.rate")
        let now: Int64 = 1_800_000_000
        #expect(ledger.wait(now: now, recipients: 1, perMinute: 2, perDay: nil) == nil)
        try ledger.record(now: now, recipients: 1)
        try ledger.record(now: now + 10, recipients: 3)
        // Two in the last minute: the third waits until the first is a minute old.
        #expect(ledger.wait(now: now + 20, recipients: 1, perMinute: 2, perDay: nil) == now + 60)
        #expect(ledger.wait(now: now + 61, recipients: 1, perMinute: 2, perDay: nil) == nil)
        // Four recipients today; a limit of 5 lets one more through, not two.
        #expect(ledger.wait(now: now + 100, recipients: 1, perMinute: nil, perDay: 5) == nil)
        #expect(ledger.wait(now: now + 100, recipients: 2, perMinute: nil, perDay: 5) == now + 86_400)
        // Held across restarts: read back from its file.
        let again = RateLedger(path: directory.path + "/.rate")
        #expect(again.entries.map(\.time) == [now, now + 10])
        #expect(again.wait(now: now + 20, recipients: 1, perMinute: 2, perDay: nil) == now + 60)
        // A day later the old entries are gone when the next is recorded.
        var later = again
        try later.record(now: now + 90_000, recipients: 1)
        #expect(later.entries.count == 1)
    }

    @Test func aDamagedLedgerIsReadAsFarAsItMakesSense() throws {
        let directory = try TemporaryDirectory()
        try directory.write(".rate", "1800000000 2\ngarbage\n-5 x\n1800000010 99999999999\n1800000020 1\n")
        let ledger = RateLedger(path: directory.path + "/.rate")
        #expect(ledger.entries.map(\.time) == [1_800_000_000, 1_800_000_020])
    }

    /// A line ten years ahead (a clock that ran fast, or a hand-written line) used to hold the
    /// lane for 3,651 days; five a day ahead held it a day. Beyond a small skew they are not
    /// counted, are reported, and are dropped at the next record.
    @Test func entriesFromTheFutureAreIgnored() throws {
        let directory = try TemporaryDirectory()
        let now: Int64 = 1_800_000_000
        let text = "\(now + 10 * 365 * 86_400) 1\n" + (0..<5).map { "\(now + 86_400 + Int64($0)) 1\n" }.joined() + "\(now + 60) 1\n"
        try directory.write(".rate", text)
        var ledger = RateLedger(path: directory.path + "/.rate")
        #expect(ledger.future(now: now).count == 6)
        // One a minute: the entry a minute ahead (within the skew) counts; the rest do not.
        #expect(ledger.wait(now: now, recipients: 1, perMinute: 1, perDay: nil) == now + 120)
        #expect(ledger.wait(now: now, recipients: 1, perMinute: 2, perDay: 3) == nil)
        try ledger.record(now: now, recipients: 1)
        #expect(ledger.entries.map(\.time) == [now + 60, now])
        #expect(RateLedger(path: directory.path + "/.rate").future(now: now).isEmpty)
    }
}
