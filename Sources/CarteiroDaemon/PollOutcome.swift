import CarteiroConfig
import CarteiroCurl
import CarteiroOAuth

/// What one poll of one mailbox did.
public struct PollOutcome: Sendable {
    public var handedOn: Int = 0
    public var skippedDuplicates: Int = 0
    /// `after_fetch` failed after the messages were handed on: they are safe, the server unchanged.
    public var afterFetchProblem: String?
    public init() {}
}

/// Why a poll failed: the connection, the server, or the local disk.
public enum PollFailure: Error, CustomStringConvertible {
    case connection(MailConnectionError)
    case storage(String)
    case configuration(String)
    /// No OAuth access token (the authorization server refused, or is down).
    case oauth(OAuthFailure, mailbox: String)

    public var description: String {
        switch self {
        case .connection(let error): error.description
        case .storage(let text): "the state directory: \(text)"
        case .configuration(let text): text
        case .oauth(let failure, let mailbox): MailboxLogin.explain(failure, mailbox: mailbox)
        }
    }

    public var isTransient: Bool {
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
    static func sorting(_ mailbox: InboundMailbox, password: Secret, _ body: () throws -> PollOutcome) throws(PollFailure) -> PollOutcome {
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
