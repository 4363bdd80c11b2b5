import CarteiroConfig
import CarteiroCurl

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

    public var description: String {
        switch self {
        case .connection(let error): error.description
        case .storage(let text): "the state directory: \(text)"
        case .configuration(let text): text
        }
    }

    public var isTransient: Bool {
        switch self {
        case .connection(let error): error.isTransient
        case .storage: true
        case .configuration: false
        }
    }
}

extension PollFailure {
    /// Connects, negotiates TLS and logs in for a poll.
    static func openSession(_ mailbox: InboundMailbox, password: Secret) throws(PollFailure) -> MailSession {
        do {
            let session = try MailSession.open(MailEndpoint(mailbox), credentials: .init(user: mailbox.user, password: password))
            session.sessionDeadline = ContinuousClock.now + mailbox.maxPollTime
            return session
        } catch {
            throw .connection(error.redacting(password, user: mailbox.user))
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
