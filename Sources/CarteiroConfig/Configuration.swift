/// A complete, validated configuration: what the daemon and every command work from.
package struct Configuration: Sendable {
    package var files: [String]
    package var daemon: DaemonSettings
    package var events: EventSettings
    package var inboundMailboxes: [InboundMailbox]
    package var outboundMailboxes: [OutboundMailbox]
    package var oauthClients: [OAuthClient] = []
    package var contracts: [Contract]
    package var users: [DirectoryUser]
    package var groups: [UserGroup]
    package var workflows: [Workflow]
    /// Routing rules for inbound messages, in the file's order.
    package var rules: [RoutingRule] = []

    package func inbound(_ name: String) -> InboundMailbox? { inboundMailboxes.first { $0.name == name } }
    package func outbound(_ name: String) -> OutboundMailbox? { outboundMailboxes.first { $0.name == name } }
    package func contract(_ name: String) -> Contract? { contracts.first { $0.id == name } }
    package func oauthClient(_ name: String) -> OAuthClient? { oauthClients.first { $0.name == name } }

    /// Every secret the configuration needs at run time, with whose it is (for messages):
    /// the passwords of mailboxes that log in with one, OAuth clients' secrets and keys.
    package var secretSources: [(source: SecretSource, location: SourceLocation, owner: String)] {
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
            if let certificate = client.certificate { sources.append((certificate.key, client.location, "oauth client \"\(client.name)\" (certificate key)")) }
        }
        return sources
    }
    package func user(_ name: String) -> DirectoryUser? { users.first { $0.id == name } }
    package func group(_ name: String) -> UserGroup? { groups.first { $0.id == name } }
    package func workflow(_ name: String) -> Workflow? { workflows.first { $0.id == name } }

    /// The contract that owns an inbound mailbox, if any.
    package func contract(owning mailbox: String) -> Contract? {
        contracts.first { $0.inboundMailboxes.contains(mailbox) }
    }
}

package struct DaemonSettings: Sendable {
    package var systemOutbound: String
    package var stateDirectory: String
    package var pollInterval: Duration
    package var maxParallelPolls: Int
    package var alertAfter: Duration
    package var queueLifetime: Duration
    package var hostname: String?
    /// Retention: how long raw messages, attachments and given-up messages are kept.
    package var keepRaw: Duration
    package var keepAttachments: Duration
    package var keepFailed: Duration
}

package struct EventSettings: Sendable, Equatable {
    package var spool: String
    package var webhook: String?
    /// Signs each POST (HMAC-SHA-256 over the timestamp and the body).
    package var webhookSecret: SecretSource? = nil
    /// Sent as `Authorization: Bearer …`.
    package var webhookToken: SecretSource? = nil
    package var webhookTLS: TLSSettings = TLSSettings()
    package var webhookTimeout: Duration
    /// Attachments up to this many bytes in all go inline (base64) in the POST; 0: never.
    package var inlineAttachments: Int
}

/// TLS settings shared by every kind of mailbox.
package struct TLSSettings: Sendable, Hashable {
    /// Extra CA certificates (PEM) to trust besides the system's.
    package var caFile: String?
    /// false only when the configuration opts out explicitly.
    package var verify: Bool

    package init(caFile: String? = nil, verify: Bool = true) {
        self.caFile = caFile
        self.verify = verify
    }
}

/// The protocols Carteiro fetches mail with. Every place that depends on the protocol switches
/// over this, so that a new one is a compile error wherever it needs a decision, never a silent
/// fall into another protocol's branch.
package enum MailProtocol: String, Sendable {
    case imap, pop3, graph

    /// `IMAP`, `POP3`, `Microsoft Graph`: in messages.
    package var displayName: String {
        switch self {
        case .imap: "IMAP"
        case .pop3: "POP3"
        case .graph: "Microsoft Graph"
        }
    }

    /// Whether a mailbox names a folder on the server (`folder`, `move:` in after_fetch).
    package var hasFolders: Bool {
        switch self {
        case .imap, .graph: true
        case .pop3: false
        }
    }

    /// Whether the server can tell of new mail between polls (IMAP IDLE).
    package var canWaitForNews: Bool {
        switch self {
        case .imap: true
        case .pop3, .graph: false
        }
    }

    /// Whether a mailbox logs in with OAuth 2.0 only (no password, no STARTTLS).
    package var isWebAPI: Bool {
        switch self {
        case .graph: true
        case .imap, .pop3: false
        }
    }
}

package enum InboundProvider: String, Sendable, CaseIterable {
    case imaps, imap, pops, pop, graph

    package var family: MailProtocol {
        switch self {
        case .imaps, .imap: .imap
        case .pops, .pop: .pop3
        case .graph: .graph
        }
    }

    package var usesImplicitTLS: Bool {
        switch self {
        case .imaps, .pops, .graph: true
        case .imap, .pop: false
        }
    }
    package var defaultPort: Int {
        switch self {
        case .imaps: 993
        case .imap: 143
        case .pops: 995
        case .pop: 110
        case .graph: 443
        }
    }
}

package enum AfterFetch: Sendable, Hashable, CustomStringConvertible {
    case keep, seen, delete
    case move(String)

    package init?(parsing text: String) {
        switch text {
        case "keep": self = .keep
        case "seen": self = .seen
        case "delete": self = .delete
        default:
            guard text.hasPrefix("move:"), text.count > 5 else { return nil }
            self = .move(String(text.dropFirst(5)))
        }
    }

    package var description: String {
        switch self {
        case .keep: "keep"
        case .seen: "seen"
        case .delete: "delete"
        case .move(let folder): "move:\(folder)"
        }
    }
}

package enum ImportExisting: String, Sendable {
    case unseen, all, none
}

/// What a sender whose authentication failed means for a mailbox's messages.
package enum SenderVerification: String, Sendable {
    /// Handed on, flagged `unverified-sender`.
    case flag
    /// Held in the quarantine until someone releases it.
    case quarantine
    /// Handed on as it is.
    case off
}

package struct InboundMailbox: Sendable, Equatable {
    package var name: String
    package var description: String
    package var provider: InboundProvider
    package var server: String
    package var port: Int
    package var user: String
    package var password: SecretSource
    /// OAuth 2.0 instead of the password (which is then unused).
    package var oauth: OAuthLogin? = nil
    /// false: configured but not polled.
    package var enabled: Bool
    /// IMAP IDLE between polls (when the server offers it), and how often it is begun again.
    package var idle: Bool
    package var idleRefresh: Duration
    package var folder: String
    package var afterFetch: AfterFetch
    package var importExisting: ImportExisting
    package var maxMessageSize: Int
    /// imap and pop: STARTTLS demanded (true) or a plain-text session allowed (false).
    package var starttls: Bool
    package var tls: TLSSettings
    package var timeout: Duration
    package var pollInterval: Duration
    package var alertAfter: Duration
    /// The longest one poll may take, however the server trickles; what was handed on by
    /// then stays handed on, and the next poll goes on from there.
    package var maxPollTime: Duration
    /// The receiving servers whose Authentication-Results this mailbox trusts (lower case).
    package var authservIDs: [String] = []
    package var senderVerification: SenderVerification = .flag
    /// Flood limits per correspondent (0: none), counted within `floodWindow`.
    package var maxMessagesPerSender = 30
    package var maxMessagesPerDomain = 300
    package var floodWindow: Duration = .seconds(3600)
    package var location: SourceLocation
}

package enum OutboundTLSMode: String, Sendable {
    case none, starttls, tls

    package var defaultPort: Int {
        switch self {
        case .none: 25
        case .starttls: 587
        case .tls: 465
        }
    }
}

/// How an outbound mailbox sends.
package enum OutboundProtocol: String, Sendable {
    /// SMTP submission.
    case smtp
    /// Microsoft Graph's sendMail (the MIME, base64), over HTTPS.
    case graph
}

package struct OutboundMailbox: Sendable, Equatable {
    package var name: String
    package var description: String
    package var sendsWith: OutboundProtocol = .smtp
    package var server: String
    package var port: Int
    package var sender: MailAddress
    package var tlsMode: OutboundTLSMode
    package var auth: Bool
    package var user: String?
    package var password: SecretSource?
    /// OAuth 2.0 instead of a password (`auth` is then true).
    package var oauth: OAuthLogin? = nil
    /// The most a notification's attachments may hold together.
    package var maxAttachmentSize: Int
    /// Sending limits; nil: none.
    package var maxMessagesPerMinute: Int? = nil
    package var maxRecipientsPerDay: Int? = nil
    /// At most this many notifications to one address within `recipientWindow` (0: no limit).
    package var maxNotificationsPerRecipient = 20
    package var recipientWindow: Duration = .seconds(3600)
    package var tls: TLSSettings
    package var timeout: Duration
    package var location: SourceLocation
}

package struct Contract: Sendable {
    package var id: String
    package var name: String
    package var outboundMailbox: String?
    package var inboundMailboxes: [String]
    package var location: SourceLocation
    /// Appended to the text (and HTML) of every notification of this contract (templates).
    package var signature: String? = nil
    package var signatureHTML: String? = nil
}

package struct DirectoryUser: Sendable {
    package var id: String
    package var name: String
    package var email: MailAddress
}

package struct UserGroup: Sendable {
    package var id: String
    package var name: String
    package var members: [String]
}

package struct Workflow: Sendable {
    package var id: String
    package var description: String
    package var steps: [WorkflowStep]
}

/// Which outbound mailbox a workflow step sends through (the product's original rules).
package enum StepMailboxChoice: Sendable, Hashable {
    /// Unset: the system outbound mailbox.
    case system
    /// The request's contract's outbound mailbox, or the system's when the contract has none.
    case contract
    case specific(String)
}

package struct WorkflowStep: Sendable {
    package var workflow: String
    package var id: String
    package var mailbox: StepMailboxChoice
    package var toUsers: [String]
    package var toGroups: [String]
    package var subject: String
    package var body: String
    package var html: String?
    package var location: SourceLocation
}
