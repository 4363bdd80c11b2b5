import CarteiroConfig
import CarteiroCurl
import Foundation
import Synchronization

/// Authenticated IMAP sessions kept between polls, at most one per mailbox: the next poll of
/// the mailbox opens its folder again on the kept session (EXAMINE or SELECT report UIDVALIDITY,
/// UIDNEXT and EXISTS afresh) instead of paying for TCP, TLS and a login. A poll takes the
/// mailbox's session (the scheduler never runs two polls of one mailbox at once) and gives it
/// back when the poll succeeded; a session that failed, that the server ended (`BYE`, a closed
/// connection, noticed before it is used), whose mailbox a reload changed or removed, or whose
/// credentials changed (a new password, a refreshed OAuth token) is closed instead.
final class KeptSessions: Sendable {
    /// A session between polls: nobody uses it until a poll takes it out.
    private struct Kept: Sendable {
        private let handle: Handover<IMAPClient>
        let mailbox: InboundMailbox
        let credentials: MailSession.Credentials
        init(client: IMAPClient, mailbox: InboundMailbox, credentials: MailSession.Credentials) {
            handle = Handover(client)
            self.mailbox = mailbox
            self.credentials = credentials
        }
        var client: IMAPClient { handle.value }
    }

    private let kept = Mutex<[String: Kept]>([:])
    /// The IDLE watcher of each mailbox in IDLE: its connection is lent to the mailbox's polls.
    private let watchers = Mutex<[String: IdleWatcher]>([:])

    /// A session for a poll: the mailbox's kept one, or its IDLE connection, lent.
    enum Taken {
        case kept(IMAPClient)
        case lent(IMAPClient, from: IdleWatcher)
        var client: IMAPClient {
            switch self {
            case .kept(let client), .lent(let client, _): client
            }
        }
    }

    /// The mailbox's IDLE watcher (nil: none any more).
    func register(_ watcher: IdleWatcher?, for name: String) {
        watchers.withLock { $0[name] = watcher }
    }

    /// For a poll: the IDLE connection when the mailbox idles on one just now, else the kept
    /// session (see `take(_:credentials:)`).
    func session(for mailbox: InboundMailbox, credentials: MailSession.Credentials) -> Taken? {
        if let watcher = watchers.withLock({ $0[mailbox.name] }), let client = watcher.lend() {
            // A session kept while the IDLE connection was down is one too many now.
            kept.withLock { $0.removeValue(forKey: mailbox.name) }?.client.session.interrupt()
            return .lent(client, from: watcher)
        }
        return take(mailbox, credentials: credentials).map { .kept($0) }
    }

    /// After a poll: a lent connection goes back to IDLE (or, after a failure, its watcher
    /// connects again); a poll's own connection is kept, unless the mailbox's IDLE connection
    /// is up (one connection per mailbox).
    func done(with client: IMAPClient, lentFrom watcher: IdleWatcher?, failure: Error?, mailbox: InboundMailbox, credentials: MailSession.Credentials) {
        if let watcher {
            let reason = failure.map { error -> MailConnectionError in
                (error as? MailConnectionError) ?? MailConnectionError(.other, endpoint: client.session.endpoint.description, message: "the poll on the IDLE connection failed: \(error)")
            }
            watcher.giveBack(client, failure: reason)
            return
        }
        guard failure == nil, watchers.withLock({ $0[mailbox.name] })?.hasConnection != true else {
            client.logout()
            return
        }
        keep(client, mailbox: mailbox, credentials: credentials)
    }

    /// Servers end sessions idle for 30 minutes (RFC 3501 §5.4); one polled less often than
    /// this would be dead whenever it is needed.
    static let longestInterval: Duration = .seconds(25 * 60)

    /// The mailbox's kept session, if it is still good for `mailbox` as configured now and
    /// `credentials`: whatever the server said since the last poll is read first, without
    /// waiting, and a `BYE` or a closed connection discards the session.
    func take(_ mailbox: InboundMailbox, credentials: MailSession.Credentials) -> IMAPClient? {
        guard let entry = kept.withLock({ $0.removeValue(forKey: mailbox.name) }) else { return nil }
        guard entry.mailbox == mailbox, entry.credentials.user == credentials.user, entry.credentials.password == credentials.password,
              entry.credentials.bearer == credentials.bearer, Self.drain(entry.client.session) else {
            entry.client.session.interrupt()
            return nil
        }
        return entry.client
    }

    /// Keeps `client` for the mailbox's next poll (or closes it, for a mailbox polled too rarely).
    func keep(_ client: IMAPClient, mailbox: InboundMailbox, credentials: MailSession.Credentials) {
        guard !client.session.isBroken, mailbox.pollInterval <= Self.longestInterval else {
            client.logout()
            return
        }
        client.session.sessionDeadline = nil
        client.session.shrinkBuffers()
        let entry = Kept(client: client, mailbox: mailbox, credentials: credentials)
        let old = kept.withLock { $0.updateValue(entry, forKey: mailbox.name) }
        old?.client.session.interrupt()
    }

    /// After a reload: sessions of mailboxes that are gone or changed are closed.
    func prune(keeping mailboxes: [InboundMailbox]) {
        let current = Dictionary(mailboxes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let closing = kept.withLock { kept -> [Kept] in
            let stale = kept.filter { current[$0.key] != $0.value.mailbox }
            for name in stale.keys { kept[name] = nil }
            return Array(stale.values)
        }
        for entry in closing { entry.client.session.interrupt() }
    }

    /// At shutdown: every kept session is logged out, all at once (each LOGOUT is bounded to
    /// 10 s, as at the end of any poll).
    func closeAll() {
        let closing = kept.withLock { kept -> [Kept] in
            defer { kept = [:] }
            return Array(kept.values)
        }
        DispatchQueue.concurrentPerform(iterations: closing.count) { closing[$0].client.logout() }
    }

    var count: Int { kept.withLock { $0.count } }

    /// Reads what the server sent unasked since the last poll (`* N EXISTS` and the like, which
    /// the poll's EXAMINE reports again); false when the session is no longer usable.
    private static func drain(_ session: MailSession) -> Bool {
        session.expectReply(to: "nothing (between polls)", bytes: 1 << 20)
        do {
            while let line = try session.readLineIfReady() {
                if line.uppercased().hasPrefix("* BYE") { return false }
            }
            return !session.isBroken
        } catch {
            return false
        }
    }
}
