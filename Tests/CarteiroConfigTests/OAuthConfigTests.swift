import Testing
@testable import CarteiroConfig

/// `[oauth.NAME]`: the presets' endpoints and scopes (checked without any network), and the
/// mistakes check-config names.
struct OAuthConfigTests {
    func load(_ oauth: String, mailbox: String = "oauth = \"c\"") -> ConfigurationFile.Outcome {
        let text = """
        [daemon]
        system_outbound = "out"
        [oauth.c]
        \(oauth)
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "outlook.office365.com"
        user = "support@contoso.com"
        \(mailbox)
        [mailbox.out]
        type = "outbound"
        server = "smtp.office365.com"
        sender = "support@contoso.com"
        user = "support@contoso.com"
        oauth = "c"
        [contract.x]
        inbound_mailboxes = ["in"]
        """
        return ConfigurationFile.load(text: text, file: "/etc/carteiro/carteiro.conf", environment: [:])
    }

    @Test func microsoftDelegated() throws {
        let configuration = try #require(load("provider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"id\"").configuration)
        let client = try #require(configuration.oauthClient("c"))
        #expect(client.grant == .authorizationCode)
        #expect(client.authorizationURL == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize")
        #expect(client.deviceAuthorizationURL == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode")
        #expect(client.tokenURL == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
        #expect(client.scopes == ["https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser.All",
                                  "https://outlook.office.com/SMTP.Send", "offline_access"])
        #expect(client.refreshTokenLifetime == .seconds(90 * 86_400))
        #expect(configuration.inbound("in")?.oauth == OAuthLogin(client: "c", mechanism: .xoauth2))
        #expect(configuration.outbound("out")?.auth == true)
        // Without a tenant: the multi-tenant endpoint.
        let common = try #require(load("provider = \"microsoft\"\nclient_id = \"id\"").configuration?.oauthClient("c"))
        #expect(common.tokenURL == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
    }

    @Test func microsoftAppOnly() throws {
        let client = try #require(load("provider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"id\"\nclient_secret_env = \"S\"\ngrant = \"client_credentials\"").configuration?.oauthClient("c"))
        #expect(client.scopes == ["https://outlook.office365.com/.default"])
        #expect(client.refreshTokenLifetime == nil)
    }

    @Test func google() throws {
        let client = try #require(load("provider = \"google\"\nclient_id = \"x.apps.googleusercontent.com\"\nclient_secret = \"s\"", mailbox: "oauth = \"c\"\noauth_mechanism = \"oauthbearer\"").configuration?.oauthClient("c"))
        #expect(client.authorizationURL == "https://accounts.google.com/o/oauth2/v2/auth")
        #expect(client.tokenURL == "https://oauth2.googleapis.com/token")
        #expect(client.deviceAuthorizationURL == "https://oauth2.googleapis.com/device/code")
        #expect(client.scopes == ["https://mail.google.com/"])
        let serviceAccount = try #require(load("provider = \"google\"\ngrant = \"jwt_bearer\"\nservice_account_key_file = \"/k.json\"").configuration?.oauthClient("c"))
        #expect(serviceAccount.tokenURL == "https://oauth2.googleapis.com/token")
        #expect(serviceAccount.serviceAccountKey == .file("/k.json"))
    }

    @Test func mistakesAreErrorsWithTheirPlace() throws {
        func errors(_ oauth: String, mailbox: String = "oauth = \"c\"") -> [String] { load(oauth, mailbox: mailbox).errors.map(\.description) }
        #expect(errors("provider = \"google\"\nclient_id = \"x\"\nclient_secret = \"s\"\ngrant = \"client_credentials\"").contains { $0.contains("Google has no client credentials for mail") })
        #expect(errors("provider = \"microsoft\"\nclient_id = \"x\"\nclient_secret = \"s\"\ngrant = \"client_credentials\"").contains { $0.contains("needs the tenant's own id or domain") })
        #expect(errors("provider = \"microsoft\"\ntenant = \"t\"\nclient_id = \"x\"\ngrant = \"client_credentials\"").contains { $0.contains("client_credentials needs the client secret") })
        #expect(errors("provider = \"custom\"\nclient_id = \"x\"").contains { $0.contains("provider = \"custom\" needs `token_url`") })
        #expect(errors("provider = \"google\"\ngrant = \"jwt_bearer\"").contains { $0.contains("jwt_bearer needs the service account's JSON key") })
        #expect(errors("provider = \"microsoft\"\nclient_id = \"x\"", mailbox: "oauth = \"c\"\npassword = \"p\"").contains { $0.contains("`password` and `oauth` both say how to log in") })
        #expect(errors("provider = \"microsoft\"\nclient_id = \"x\"", mailbox: "oauth = \"d\"").contains { $0.contains("oauth = \"d\" names no client: there is no [oauth.d]; did you mean \"c\"?") })
        #expect(errors("provider = \"microsoft\"\nclient_id = \"x\"\ngrant = \"password\"").contains { $0.contains("grant") })
        #expect(errors("provider = \"microsoft\"\nclient_id = \"x\"\nscopes = \"a\"").contains { $0.contains("expected an array of strings") })
    }

    @Test func theSummaryShowsEndpointsGrantAndMechanism() throws {
        let configuration = try #require(load("provider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"id\"").configuration)
        let summary = ConfigSummary.render(configuration)
        #expect(summary.contains("as support@contoso.com with OAuth c (XOAUTH2)"))
        #expect(summary.contains("oauth c  microsoft tenant contoso.onmicrosoft.com, grant authorization_code, client id"))
        #expect(summary.contains("  token          https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        #expect(summary.contains("  authorize      carteiro authorize MAILBOX"))
    }
}
