/// A complete, validated configuration: what the daemon and every command work from.
public struct Configuration: Sendable {
    public var files: [String]
    public var daemon: DaemonSettings
    public var events: EventSettings
    public var inboundMailboxes: [InboundMailbox]
    public var outboundMailboxes: [OutboundMailbox]
    public var oauthClients: [OAuthClient] = []
    public var contracts: [Contract]
    public var users: [DirectoryUser]
    public var groups: [UserGroup]
    public var workflows: [Workflow]

    public func inbound(_ name: String) -> InboundMailbox? { inboundMailboxes.first { $0.name == name } }
    public func outbound(_ name: String) -> OutboundMailbox? { outboundMailboxes.first { $0.name == name } }
    public func contract(_ name: String) -> Contract? { contracts.first { $0.id == name } }
    public func oauthClient(_ name: String) -> OAuthClient? { oauthClients.first { $0.name == name } }

    /// Every secret the configuration needs at run time, with whose it is (for messages):
    /// the passwords of mailboxes that log in with one, OAuth clients' secrets and keys.
    public var secretSources: [(source: SecretSource, location: SourceLocation, owner: String)] {
        var sources: [(SecretSource, SourceLocation, String)] = inboundMailboxes.compactMap {
            $0.oauth == nil ? ($0.password, $0.location, "mailbox \"\($0.name)\"") : nil
        }
        for mailbox in outboundMailboxes where mailbox.auth && mailbox.oauth == nil {
            if let password = mailbox.password { sources.append((password, mailbox.location, "mailbox \"\(mailbox.name)\"")) }
        }
        if let secret = events.webhookSecret { sources.append((secret, files.first.map { SourceLocation(file: $0, line: 1, column: 1) } ?? SourceLocation(file: "", line: 1, column: 1), "the webhook's signing secret")) }
        if let token = events.webhookToken { sources.append((token, files.first.map { SourceLocation(file: $0, line: 1, column: 1) } ?? SourceLocation(file: "", line: 1, column: 1), "the webhook's bearer token")) }
        for client in oauthClients {
            if let secret = client.clientSecret { sources.append((secret, client.location, "oauth client \"\(client.name)\"")) }
            if let key = client.serviceAccountKey { sources.append((key, client.location, "oauth client \"\(client.name)\" (service account key)")) }
        }
        return sources
    }
    public func user(_ name: String) -> DirectoryUser? { users.first { $0.id == name } }
    public func group(_ name: String) -> UserGroup? { groups.first { $0.id == name } }
    public func workflow(_ name: String) -> Workflow? { workflows.first { $0.id == name } }

    /// The contract that owns an inbound mailbox, if any.
    public func contract(owning mailbox: String) -> Contract? {
        contracts.first { $0.inboundMailboxes.contains(mailbox) }
    }
}

public struct DaemonSettings: Sendable {
    public var systemOutbound: String
    public var stateDirectory: String
    public var pollInterval: Duration
    public var maxParallelPolls: Int
    public var alertAfter: Duration
    public var queueLifetime: Duration
    public var hostname: String?
    /// Retention: how long raw messages, attachments and given-up messages are kept.
    public var keepRaw: Duration = .seconds(90 * 86_400)
    public var keepAttachments: Duration = .seconds(90 * 86_400)
    public var keepFailed: Duration = .seconds(30 * 86_400)
}

public struct EventSettings: Sendable, Equatable {
    public var spool: String
    public var webhook: String?
    /// Signs each POST (HMAC-SHA-256 over the timestamp and the body).
    public var webhookSecret: SecretSource? = nil
    /// Sent as `Authorization: Bearer …`.
    public var webhookToken: SecretSource? = nil
    public var webhookTLS: TLSSettings = TLSSettings()
    public var webhookTimeout: Duration = .seconds(30)
    /// Attachments up to this many bytes in all go inline (base64) in the POST; 0: never.
    public var inlineAttachments: Int = 0
}

/// TLS settings shared by every kind of mailbox.
public struct TLSSettings: Sendable, Hashable {
    /// Extra CA certificates (PEM) to trust besides the system's.
    public var caFile: String?
    /// false only when the configuration opts out explicitly.
    public var verify: Bool

    public init(caFile: String? = nil, verify: Bool = true) {
        self.caFile = caFile
        self.verify = verify
    }
}

/// The protocols Carteiro fetches mail with. Every place that depends on the protocol switches
/// over this, so that a new one is a compile error wherever it needs a decision, never a silent
/// fall into another protocol's branch.
public enum MailProtocol: String, Sendable {
    case imap, pop3

    /// `IMAP`, `POP3`: in messages.
    public var displayName: String {
        switch self {
        case .imap: "IMAP"
        case .pop3: "POP3"
        }
    }

    /// Whether a mailbox names a folder on the server (`folder`, `move:` in after_fetch).
    public var hasFolders: Bool {
        switch self {
        case .imap: true
        case .pop3: false
        }
    }

    /// Whether the server can tell of new mail between polls (IMAP IDLE).
    public var canWaitForNews: Bool {
        switch self {
        case .imap: true
        case .pop3: false
        }
    }
}

public enum InboundProvider: String, Sendable, CaseIterable {
    case imaps, imap, pops, pop

    public var family: MailProtocol {
        switch self {
        case .imaps, .imap: .imap
        case .pops, .pop: .pop3
        }
    }

    public var usesImplicitTLS: Bool {
        switch self {
        case .imaps, .pops: true
        case .imap, .pop: false
        }
    }
    public var defaultPort: Int {
        switch self {
        case .imaps: 993
        case .imap: 143
        case .pops: 995
        case .pop: 110
        }
    }
}

public enum AfterFetch: Sendable, Hashable, CustomStringConvertible {
    case keep, seen, delete
    case move(String)

    public init?(parsing text: String) {
        switch text {
        case "keep": self = .keep
        case "seen": self = .seen
        case "delete": self = .delete
        default:
            guard text.hasPrefix("move:"), text.count > 5 else { return nil }
            self = .move(String(text.dropFirst(5)))
        }
    }

    public var description: String {
        switch self {
        case .keep: "keep"
        case .seen: "seen"
        case .delete: "delete"
        case .move(let folder): "move:\(folder)"
        }
    }
}

public enum ImportExisting: String, Sendable {
    case unseen, all, none
}

public struct InboundMailbox: Sendable, Equatable {
    public var name: String
    public var description: String
    public var provider: InboundProvider
    public var server: String
    public var port: Int
    public var user: String
    public var password: SecretSource
    /// OAuth 2.0 instead of the password (which is then unused).
    public var oauth: OAuthLogin? = nil
    /// false: configured but not polled.
    public var enabled: Bool = true
    /// IMAP IDLE between polls (when the server offers it), and how often it is begun again.
    public var idle: Bool = true
    public var idleRefresh: Duration = .seconds(600)
    public var folder: String
    public var afterFetch: AfterFetch
    public var importExisting: ImportExisting
    public var maxMessageSize: Int
    /// imap and pop: STARTTLS demanded (true) or a plain-text session allowed (false).
    public var starttls: Bool
    public var tls: TLSSettings
    public var timeout: Duration
    public var pollInterval: Duration
    public var alertAfter: Duration
    /// The longest one poll may take, however the server trickles; what was handed on by
    /// then stays handed on, and the next poll goes on from there.
    public var maxPollTime: Duration
    public var location: SourceLocation
}

public enum OutboundTLSMode: String, Sendable {
    case none, starttls, tls

    public var defaultPort: Int {
        switch self {
        case .none: 25
        case .starttls: 587
        case .tls: 465
        }
    }
}

public struct OutboundMailbox: Sendable, Equatable {
    public var name: String
    public var description: String
    public var server: String
    public var port: Int
    public var sender: MailAddress
    public var tlsMode: OutboundTLSMode
    public var auth: Bool
    public var user: String?
    public var password: SecretSource?
    /// OAuth 2.0 instead of a password (`auth` is then true).
    public var oauth: OAuthLogin? = nil
    /// The most a notification's attachments may hold together.
    public var maxAttachmentSize: Int = 25 << 20
    /// Sending limits; nil: none.
    public var maxMessagesPerMinute: Int? = nil
    public var maxRecipientsPerDay: Int? = nil
    public var tls: TLSSettings
    public var timeout: Duration
    public var location: SourceLocation
}

public struct Contract: Sendable {
    public var id: String
    public var name: String
    public var outboundMailbox: String?
    public var inboundMailboxes: [String]
    public var location: SourceLocation
    /// Appended to the text (and HTML) of every notification of this contract (templates).
    public var signature: String? = nil
    public var signatureHTML: String? = nil
}

public struct DirectoryUser: Sendable {
    public var id: String
    public var name: String
    public var email: MailAddress
}

public struct UserGroup: Sendable {
    public var id: String
    public var name: String
    public var members: [String]
}

public struct Workflow: Sendable {
    public var id: String
    public var description: String
    public var steps: [WorkflowStep]
}

/// Which outbound mailbox a workflow step sends through (the product's original rules).
public enum StepMailboxChoice: Sendable, Hashable {
    /// Unset: the system outbound mailbox.
    case system
    /// The request's contract's outbound mailbox, or the system's when the contract has none.
    case contract
    case specific(String)
}

public struct WorkflowStep: Sendable {
    public var workflow: String
    public var id: String
    public var mailbox: StepMailboxChoice
    public var toUsers: [String]
    public var toGroups: [String]
    public var subject: String
    public var body: String
    public var html: String?
    public var location: SourceLocation
}
