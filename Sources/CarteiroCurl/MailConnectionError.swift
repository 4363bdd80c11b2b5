import CarteiroConfig

/// Why talking to a mail server failed, in words an operator can act on, with what the
/// server said and whether trying again later can help.
package struct MailConnectionError: Error, Sendable, CustomStringConvertible {
    package struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Code: String, Sendable, Hashable {
            case nameNotResolved, connectionRefused, connectTimedOut, noAnswer, tlsFailed
            case certificateUntrusted, starttlsNotOffered, loginRejected, authNotOffered
            case folderMissing, connectionLost, protocolViolation, commandRefused, tooSlow, tooLarge, other
        }
        private let code: Code

        package static let nameNotResolved = Kind(code: .nameNotResolved)
        package static let connectionRefused = Kind(code: .connectionRefused)
        package static let connectTimedOut = Kind(code: .connectTimedOut)
        /// The server accepted the connection and then said nothing (or stopped mid-way).
        package static let noAnswer = Kind(code: .noAnswer)
        package static let tlsFailed = Kind(code: .tlsFailed)
        package static let certificateUntrusted = Kind(code: .certificateUntrusted)
        package static let starttlsNotOffered = Kind(code: .starttlsNotOffered)
        package static let loginRejected = Kind(code: .loginRejected)
        package static let authNotOffered = Kind(code: .authNotOffered)
        package static let folderMissing = Kind(code: .folderMissing)
        package static let connectionLost = Kind(code: .connectionLost)
        /// The server's reply does not follow the protocol (a wrong port, another service).
        package static let protocolViolation = Kind(code: .protocolViolation)
        /// The server answered a command with a refusal.
        package static let commandRefused = Kind(code: .commandRefused)
        /// The server kept sending, but too slowly to finish a reply (or the poll) in time.
        package static let tooSlow = Kind(code: .tooSlow)
        /// The server sent more than a reply of that kind may hold: lying, broken or hostile.
        package static let tooLarge = Kind(code: .tooLarge)
        package static let other = Kind(code: .other)

        package var description: String { code.rawValue }
    }

    package var kind: Kind
    package var endpoint: String
    /// The full explanation: what failed, where, and what to do about it.
    package var message: String
    /// The line the server sent that explains the failure, when there is one.
    package var serverReply: String?
    /// libcurl's error code, when libcurl reported the failure.
    package var curlCode: Int?

    package init(_ kind: Kind, endpoint: String, message: String, serverReply: String? = nil, curlCode: Int? = nil) {
        self.kind = kind
        self.endpoint = endpoint
        self.message = message
        self.serverReply = serverReply
        self.curlCode = curlCode
    }

    /// Worth retrying later without a configuration change: the network or the server may recover.
    /// A rejected login, an untrusted certificate or a missing folder will not fix themselves.
    package var isTransient: Bool {
        switch kind {
        case .connectionRefused, .connectTimedOut, .noAnswer, .connectionLost, .nameNotResolved, .tooSlow, .other: true
        default: false
        }
    }

    /// The same error with `secret` (in every form a server might echo) taken out of what
    /// the server said and of the message quoting it.
    package func redacting(_ secret: Secret?, user: String?) -> MailConnectionError {
        guard let secret else { return self }
        var copy = self
        copy.message = secret.redact(message, user: user)
        copy.serverReply = serverReply.map { secret.redact($0, user: user) }
        return copy
    }

    /// What the server said is escaped (see `PrintableText`): a reply may carry control
    /// characters that would forge a line or drive the terminal that shows it.
    package var description: String {
        var text = message
        if let serverReply, !message.contains(serverReply) { text += " (server said: \(serverReply))" }
        return PrintableText.escaped(text)
    }
}
