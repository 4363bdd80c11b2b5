import ArgumentParser
import CarteiroConfig
import CarteiroOAuth
import Foundation

struct Authorize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorize",
        abstract: "Authorize an OAuth 2.0 mailbox once: a person signs in, and its refresh token is stored for the daemon.",
        discussion: """
            For mailboxes whose [oauth.NAME] client has grant = "authorization_code" (a browser: the redirect comes back on a loopback port, or is pasted here from a server reached over SSH) or "device_code" (--device: a code typed on any device). client_credentials and jwt_bearer need no person: check them with test-mailbox.
            The running daemon uses the new token at its next poll. Exit 0 once stored, 65 when the authorization failed, 78 for a configuration that cannot authorize.
            """
    )

    @Argument(help: "The mailbox, inbound or outbound, that logs in with OAuth.") var mailbox: String
    @Flag(help: "Use the device authorization grant: a code to enter on any device.") var device = false
    @Flag(name: .customLong("no-listen"), help: "Do not listen on a loopback port for the redirect: only a pasted address is read.") var noListen = false
    @Option(help: ArgumentHelp("How long to wait for the person, in seconds.", valueName: "seconds")) var timeout: Int = 600
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let (configuration, _) = try options.load()
        let login: OAuthLogin?
        let user: String?
        if let inbound = configuration.inbound(mailbox) {
            (login, user) = (inbound.oauth, inbound.user)
        } else if let outbound = configuration.outbound(mailbox) {
            (login, user) = (outbound.oauth, outbound.user)
        } else {
            Output.error("carteiro authorize: there is no mailbox named \"\(mailbox)\"")
            throw ExitCode(64)
        }
        guard let login, let user, let client = configuration.oauthClient(login.client) else {
            Output.error("carteiro authorize: mailbox \"\(mailbox)\" does not log in with OAuth (no `oauth = \"NAME\"`)")
            throw ExitCode(78)
        }
        guard client.grant.isInteractive else {
            Output.error("carteiro authorize: [oauth.\(client.name)] uses grant = \"\(client.grant.rawValue)\", which needs no person: `carteiro test-mailbox \(mailbox)` checks it")
            throw ExitCode(78)
        }
        let resolver = SecretResolver(environment: options.environment, configurationFile: configuration.files.first)
        var secret: Secret?
        if let source = client.clientSecret {
            switch resolver.resolve(source) {
            case .success(let value): secret = value
            case .failure(let failure):
                Output.error("carteiro authorize: [oauth.\(client.name)]: the client secret: \(failure)")
                throw ExitCode(78)
            }
        }
        let useDevice = device || client.grant == .deviceCode
        if useDevice && client.deviceAuthorizationURL == nil {
            Output.error("carteiro authorize: [oauth.\(client.name)] has no device_authorization_url")
            throw ExitCode(78)
        }
        let authorizer = Authorizer(client: client, secret: secret, user: user, say: { Output.line($0) })
        let response: TokenResponse
        do {
            response = useDevice ? try authorizer.device(timeout: .seconds(timeout))
                                 : try authorizer.authorizationCode(listen: !noListen, timeout: .seconds(timeout))
        } catch {
            Output.error("carteiro authorize: \(error.description)")
            throw ExitCode(65)
        }
        guard response.refreshToken != nil else {
            let hint = client.provider == .microsoft ? " (its scopes need offline_access)" : ""
            Output.error("carteiro authorize: the authorization server issued no refresh token\(hint); without one the daemon cannot renew access")
            throw ExitCode(65)
        }
        let broker = TokenBroker(stateDirectory: configuration.daemon.stateDirectory, clients: configuration.oauthClients, secrets: resolver)
        do {
            try broker.storeAuthorization(client: client.name, user: user, response: response)
        } catch {
            Output.error("carteiro authorize: cannot store the tokens: \(error)")
            throw ExitCode(73)
        }
        Output.line("authorized: \(user) for [oauth.\(client.name)]; the refresh token is stored in \(broker.store(client: client.name, user: user).path)")
        Output.line("the daemon uses it at its next poll of \(mailbox)")
    }
}
