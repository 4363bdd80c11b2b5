import CarteiroConfig
import CarteiroCurl
import CarteiroOAuth

/// How a mailbox logs in: with its password, or with an OAuth 2.0 access token asked of the
/// broker at each connection (reused while it is valid, refreshed ahead of its expiry).
package struct MailboxLogin: Sendable {
    enum Method: Sendable {
        case password(Secret)
        case oauth(TokenBroker, client: String, mechanism: OAuthMechanism)
    }

    let user: String
    let method: Method

    package static func password(user: String, _ secret: Secret) -> MailboxLogin {
        MailboxLogin(user: user, method: .password(secret))
    }

    package static func oauth(user: String, _ login: OAuthLogin, broker: TokenBroker) -> MailboxLogin {
        MailboxLogin(user: user, method: .oauth(broker, client: login.client, mechanism: login.mechanism))
    }

    /// The password, when it is one (fixed for the login's life): reloads compare it.
    var fixedPassword: Secret? {
        if case .password(let secret) = method { return secret }
        return nil
    }

    /// The credentials for one connection of mailbox `name`.
    func credentials(mailbox name: String) -> Result<MailSession.Credentials, OAuthFailure> {
        switch method {
        case .password(let secret):
            return .success(.init(user: user, password: secret))
        case .oauth(let broker, let client, let mechanism):
            return broker.accessToken(client: client, user: user).map { .init(user: user, password: $0, bearer: mechanism) }
        }
    }

    /// The server refused these credentials: a token is not offered again.
    func rejected(_ credentials: MailSession.Credentials) {
        guard case .oauth(let broker, let client, _) = method, credentials.bearer != nil else { return }
        broker.refused(client: client, user: user, token: credentials.password)
    }

    /// A failure to get a token, in words that say what to do.
    static func explain(_ failure: OAuthFailure, mailbox: String) -> String {
        switch failure {
        case .needsAuthorization(let reason): "\(reason); run `carteiro authorize \(mailbox)`"
        case .configuration(let text): text
        case .transient(let text): text
        }
    }
}
