import CarteiroConfig
import CarteiroCurl

/// The senders Carteiro has, one file each beside this one's peers (`SMTPSender`, `GraphSender`
/// in CarteiroCurl): the lane opens the one its mailbox names and drives it through `MailSender`
/// without knowing its protocol.
enum Senders {
    static let open: OutboundLane.OpenSender = { mailbox, credentials, ehloName throws(MailConnectionError) in
        switch mailbox.sendsWith {
        case .smtp:
            return try SMTPSender.open(MailEndpoint(mailbox), credentials: credentials, ehloName: ehloName)
        case .graph:
            guard let credentials else {
                throw MailConnectionError(.loginRejected, endpoint: mailbox.server, message: "mailbox \"\(mailbox.name)\" has no token for Microsoft Graph")
            }
            // A send waits out Graph's Retry-After up to the mailbox's timeout, twice over.
            let api = GraphAPI(base: GraphAPI.base(server: mailbox.server, port: mailbox.port), user: mailbox.user ?? "",
                               token: credentials.password, tls: mailbox.tls, timeout: mailbox.timeout,
                               deadline: ContinuousClock.now + mailbox.timeout * 2)
            return GraphSender(api: api)
        }
    }
}
