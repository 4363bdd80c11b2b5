import CarteiroConfig
import CarteiroCurl
import CarteiroOAuth

/// What one poll of one mailbox did.
package struct PollOutcome: Sendable {
    package var handedOn: Int = 0
    package var skippedDuplicates: Int = 0
    /// Dropped by a routing rule (left on the server, no event).
    package var dropped: Int = 0
    /// `after_fetch` failed after the messages were handed on: they are safe, the server unchanged.
    package var afterFetchProblem: String?
    package init() {}

    /// Adds what an earlier round of the same poll did.
    mutating func add(_ earlier: PollOutcome) {
        handedOn += earlier.handedOn
        skippedDuplicates += earlier.skippedDuplicates
        dropped += earlier.dropped
        if afterFetchProblem == nil { afterFetchProblem = earlier.afterFetchProblem }
    }
}

/// How one round of a poll ended: done, or cut by one message whose fetch broke the
/// connection (its strike is recorded). The poll then goes on without that message, on a new
/// connection, so that one failing message never stops the rest of its poll.
enum PollRound {
    case done(PollOutcome)
    case struck(key: String, cause: MailConnectionError, sofar: PollOutcome)

    /// Rounds a poll may take: each opens a connection and lists the folder again.
    static let maximum = 8

    /// A poll in rounds: a round cut by a message is followed by another without that message
    /// (on a new connection), up to `maximum` rounds and the poll's deadline.
    static func run(_ mailbox: InboundMailbox, log: DaemonLog, deadline: ContinuousClock.Instant,
                    _ round: (_ fresh: Bool, _ skipping: Set<String>) throws(PollFailure) -> PollRound) throws(PollFailure) -> PollOutcome {
        var skipping: Set<String> = []
        var earlier = PollOutcome()
        for number in 1...maximum {
            switch try round(number > 1, skipping) {
            case .done(var outcome):
                outcome.add(earlier)
                return outcome
            case .struck(let key, let cause, let sofar):
                earlier.add(sofar)
                guard number < maximum, ContinuousClock.now < deadline else { throw .connection(cause) }
                skipping.insert(key)
                log.log(.info, "going on without a message that broke the connection", ["mailbox": mailbox.name, "message": key])
            }
        }
        return earlier
    }

    /// What the connection's keeper is told: a cut round's connection is not kept.
    var failure: PollFailure? {
        if case .struck(_, let cause, _) = self { return .connection(cause) }
        return nil
    }
}

/// Why a poll failed: the connection, the server, or the local disk.
package enum PollFailure: Error, CustomStringConvertible {
    case connection(MailConnectionError)
    case storage(String)
    case configuration(String)
    /// No OAuth access token (the authorization server refused, or is down).
    case oauth(OAuthFailure, mailbox: String)

    package var description: String {
        switch self {
        case .connection(let error): error.description
        case .storage(let text): "the state directory: \(text)"
        case .configuration(let text): text
        case .oauth(let failure, let mailbox): MailboxLogin.explain(failure, mailbox: mailbox)
        }
    }

    package var isTransient: Bool {
        switch self {
        case .connection(let error): error.isTransient
        case .storage: true
        case .configuration: false
        case .oauth(let failure, _): failure.isTransient
        }
    }
}

extension PollFailure {
    /// The credentials for a poll: the password, or an OAuth access token.
    static func credentials(_ mailbox: InboundMailbox, login: MailboxLogin) throws(PollFailure) -> MailSession.Credentials {
        switch login.credentials(mailbox: mailbox.name) {
        case .success(let credentials): return credentials
        case .failure(let failure): throw .oauth(failure, mailbox: mailbox.name)
        }
    }

    /// Connects, negotiates TLS and logs in for a poll.
    static func openSession(_ mailbox: InboundMailbox, credentials: MailSession.Credentials, login: MailboxLogin) throws(PollFailure) -> MailSession {
        do {
            let session = try MailSession.open(MailEndpoint(mailbox), credentials: credentials)
            session.sessionDeadline = ContinuousClock.now + mailbox.maxPollTime
            return session
        } catch {
            if error.kind == .loginRejected { login.rejected(credentials) }
            throw .connection(error.redacting(credentials.password, user: mailbox.user))
        }
    }

    /// Runs a poll's body, sorting whatever it throws into connection, storage or configuration.
    /// The password is taken out of anything the server said (it reaches the journal, status
    /// and events).
    static func sorting<Result>(_ mailbox: InboundMailbox, password: Secret, _ body: () throws -> Result) throws(PollFailure) -> Result {
        do {
            return try body()
        } catch let error as MailConnectionError {
            throw .connection(error.redacting(password, user: mailbox.user))
        } catch let error as PollFailure {
            throw error
        } catch {
            throw .storage("\(error)")
        }
    }
}
