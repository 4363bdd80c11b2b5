import CarteiroConfig

/// Why talking to a mail server failed, in words an operator can act on, with what the
/// server said and whether trying again later can help.
public struct MailConnectionError: Error, Sendable, CustomStringConvertible {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Code: String, Sendable, Hashable {
            case nameNotResolved, connectionRefused, connectTimedOut, noAnswer, tlsFailed
            case certificateUntrusted, starttlsNotOffered, loginRejected, authNotOffered
            case folderMissing, connectionLost, protocolViolation, commandRefused, tooSlow, tooLarge, other
        }
        private let code: Code

        public static let nameNotResolved = Kind(code: .nameNotResolved)
        public static let connectionRefused = Kind(code: .connectionRefused)
        public static let connectTimedOut = Kind(code: .connectTimedOut)
        /// The server accepted the connection and then said nothing (or stopped mid-way).
        public static let noAnswer = Kind(code: .noAnswer)
        public static let tlsFailed = Kind(code: .tlsFailed)
        public static let certificateUntrusted = Kind(code: .certificateUntrusted)
        public static let starttlsNotOffered = Kind(code: .starttlsNotOffered)
        public static let loginRejected = Kind(code: .loginRejected)
        public static let authNotOffered = Kind(code: .authNotOffered)
        public static let folderMissing = Kind(code: .folderMissing)
        public static let connectionLost = Kind(code: .connectionLost)
        /// The server's reply does not follow the protocol (a wrong port, another service).
        public static let protocolViolation = Kind(code: .protocolViolation)
        /// The server answered a command with a refusal.
        public static let commandRefused = Kind(code: .commandRefused)
        /// The server kept sending, but too slowly to finish a reply (or the poll) in time.
        public static let tooSlow = Kind(code: .tooSlow)
        /// The server sent more than a reply of that kind may hold: lying, broken or hostile.
        public static let tooLarge = Kind(code: .tooLarge)
        public static let other = Kind(code: .other)

        public var description: String { code.rawValue }
    }

    public var kind: Kind
    public var endpoint: String
    /// The full explanation: what failed, where, and what to do about it.
    public var message: String
    /// The line the server sent that explains the failure, when there is one.
    public var serverReply: String?
    /// libcurl's error code, when libcurl reported the failure.
    public var curlCode: Int?

    public init(_ kind: Kind, endpoint: String, message: String, serverReply: String? = nil, curlCode: Int? = nil) {
        self.kind = kind
        self.endpoint = endpoint
        self.message = message
        self.serverReply = serverReply
        self.curlCode = curlCode
    }

    /// Worth retrying later without a configuration change: the network or the server may recover.
    /// A rejected login, an untrusted certificate or a missing folder will not fix themselves.
    public var isTransient: Bool {
        switch kind {
        case .connectionRefused, .connectTimedOut, .noAnswer, .connectionLost, .nameNotResolved, .tooSlow, .other: true
        default: false
        }
    }

    /// The same error with `secret` (in every form a server might echo) taken out of what
    /// the server said and of the message quoting it.
    public func redacting(_ secret: Secret?, user: String?) -> MailConnectionError {
        guard let secret else { return self }
        var copy = self
        copy.message = secret.redact(message, user: user)
        copy.serverReply = serverReply.map { secret.redact($0, user: user) }
        return copy
    }

    /// What the server said is escaped (see `PrintableText`): a reply may carry control
    /// characters that would forge a line or drive the terminal that shows it.
    public var description: String {
        var text = message
        if let serverReply, !message.contains(serverReply) { text += " (server said: \(serverReply))" }
        return PrintableText.escaped(text)
    }
}
