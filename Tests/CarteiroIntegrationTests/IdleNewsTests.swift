import Foundation
import Testing
@testable import CarteiroDaemon

/// The IDLE news state machine alone: which lines are news, and how news becomes polls.
struct IdleNewsTests {
    let start = ContinuousClock.now

    @Test func onlyAGrowingFolderIsNews() {
        var news = IdleNews()
        news.reset(known: 5)
        do { let heard = news.heard("* 5 EXISTS"); #expect(!heard, "the same count again") }
        do { let heard = news.heard("* 3 RECENT"); #expect(!heard) }
        do { let heard = news.heard("* 6 EXISTS"); #expect(heard) }
        do { let heard = news.heard("* 6 EXISTS"); #expect(!heard) }
        do { let heard = news.heard("* 2 EXPUNGE"); #expect(!heard) }
        #expect(news.known == 5)
        do { let heard = news.heard("* 6 EXISTS"); #expect(heard, "after an expunge, the same count is a new message") }
        do { let heard = news.heard("* OK [UIDVALIDITY 99] the folder was recreated"); #expect(heard) }
        news.reset(known: nil)
        do { let heard = news.heard("* 6 EXISTS"); #expect(heard, "an unknown count: any EXISTS is news") }
    }

    /// 2,000 announcements a second for 15 s, each growing the folder: one poll at once, then one
    /// every `minimumSpacing`, never more than one pending.
    @Test func aFloodIsCoalescedIntoSpacedPolls() {
        var news = IdleNews()
        news.reset(known: 0)
        var polls: [ContinuousClock.Instant] = []
        var pending: ContinuousClock.Instant?
        var count = 0
        for step in 0..<30_000 {
            let now = start + .microseconds(500 * step)
            if let due = pending, due <= now {
                news.fire(now: now)
                polls.append(now)
                pending = nil
            }
            count += 1
            guard news.heard("* \(count) EXISTS") else { continue }
            switch news.news(now: now) {
            case .nothing: break
            case .pollNow: polls.append(now)
            case .pollAt(let at):
                #expect(pending == nil, "one pending poll at most")
                pending = at
            }
        }
        // 15 s of news, a poll at most every 2 s: 8 polls, the first at once.
        #expect(polls.count == 8, "\(polls.count)")
        #expect(polls.first == start)
        for (a, b) in zip(polls, polls.dropFirst()) { #expect(b - a >= IdleNews.minimumSpacing) }
    }

    @Test func newsAfterAQuietSpellIsPolledAtOnce() {
        var news = IdleNews()
        do { let action = news.news(now: start); #expect(action == .pollNow) }
        do { let action = news.news(now: start + .milliseconds(500)); #expect(action == .pollAt(start + IdleNews.minimumSpacing)) }
        do { let action = news.news(now: start + .milliseconds(900)); #expect(action == .nothing, "joins the pending poll") }
        news.fire(now: start + IdleNews.minimumSpacing)
        do { let action = news.news(now: start + .seconds(10)); #expect(action == .pollNow) }
    }
}
