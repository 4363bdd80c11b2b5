import CarteiroConfig

/// Where and how to connect: the protocol, the server, and what TLS is demanded.
package struct MailEndpoint: Sendable, Hashable, CustomStringConvertible {
    package enum ServiceProtocol: String, Sendable {
        case imap, pop3, smtp, https
        var implicitTLSScheme: String { self == .https ? "https" : self.rawValue + "s" }
        package var displayName: String {
            switch self {
            case .imap: "IMAP"
            case .pop3: "POP3"
            case .smtp: "SMTP"
            case .https: "HTTPS"
            }
        }
    }

    package enum Security: Sendable, Hashable {
        /// TLS from the first byte (imaps, pop3s, smtps).
        case implicitTLS
        /// STARTTLS demanded: a server that does not offer it is an error, never a downgrade.
        case starttlsRequired
        /// STARTTLS when offered, plain text otherwise (the configuration opted in).
        case starttlsOptional
        /// Plain text (SMTP with tls = "none").
        case plain
    }

    package var serviceProtocol: ServiceProtocol
    package var host: String
    package var port: Int
    package var security: Security
    package var tls: TLSSettings
    package var timeout: Duration

    package init(serviceProtocol: ServiceProtocol, host: String, port: Int, security: Security, tls: TLSSettings, timeout: Duration) {
        self.serviceProtocol = serviceProtocol
        self.host = host
        self.port = port
        self.security = security
        self.tls = tls
        self.timeout = timeout
    }

    package init(_ mailbox: InboundMailbox) {
        let proto: ServiceProtocol
        switch mailbox.provider.family {
        case .imap: proto = .imap
        case .pop3: proto = .pop3
        case .graph: proto = .https
        }
        let security: Security = mailbox.provider.usesImplicitTLS ? .implicitTLS : (mailbox.starttls ? .starttlsRequired : .starttlsOptional)
        self.init(serviceProtocol: proto, host: mailbox.server, port: mailbox.port, security: security, tls: mailbox.tls, timeout: mailbox.timeout)
    }

    package init(_ mailbox: OutboundMailbox) {
        let security: Security = switch mailbox.tlsMode {
        case .tls: .implicitTLS
        case .starttls: .starttlsRequired
        case .none: .plain
        }
        self.init(serviceProtocol: .smtp, host: mailbox.server, port: mailbox.port, security: security, tls: mailbox.tls, timeout: mailbox.timeout)
    }

    /// The host as a URL authority: IPv6 literals need brackets.
    var urlHost: String { host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host }

    var scheme: String { security == .implicitTLS ? serviceProtocol.implicitTLSScheme : serviceProtocol.rawValue }

    package var description: String { "\(scheme)://\(urlHost):\(port)" }

    package var securityDescription: String {
        switch security {
        case .implicitTLS: "implicit TLS"
        case .starttlsRequired: "STARTTLS (required)"
        case .starttlsOptional: "STARTTLS if offered, else plain text"
        case .plain: "plain text"
        }
    }
}
