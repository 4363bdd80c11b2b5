import Testing
@testable import CarteiroConfig

/// Microsoft Graph mailboxes in the configuration: OAuth only, one token per resource, Graph's
/// scopes filled in for a Microsoft client whose mailboxes all use Graph.
struct GraphConfigTests {
    func load(_ text: String) -> ConfigurationFile.Outcome {
        ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "o"
            [mailbox.o]
            type = "outbound"
            server = "h"
            sender = "a@b.c"
            \(text)
            """, file: "g.conf", environment: [:])
    }

    static let client = """
        [oauth.m365]
        provider = "microsoft"
        tenant = "contoso.onmicrosoft.com"
        client_id = "c"
        client_secret = "s"
        grant = "client_credentials"
        """

    @Test func aMicrosoftClientOfGraphMailboxesGetsGraphsScope() throws {
        let outcome = load("""
            [mailbox.in]
            type = "inbound"
            provider = "graph"
            server = "graph.microsoft.com"
            user = "support@contoso.com"
            oauth = "m365"
            [mailbox.g-out]
            type = "outbound"
            protocol = "graph"
            server = "graph.microsoft.com"
            user = "support@contoso.com"
            sender = "support@contoso.com"
            oauth = "m365"
            \(Self.client)
            """)
        let configuration = try #require(outcome.configuration, "\(outcome.diagnostics)")
        #expect(configuration.oauthClient("m365")?.scopes == OAuthPreset.graphAppOnlyScopes)
        #expect(configuration.inbound("in")?.port == 443 && configuration.inbound("in")?.idle == false)
        #expect(configuration.outbound("g-out")?.sendsWith == .graph && configuration.outbound("g-out")?.port == 443)
    }

    @Test func aTokenIsForOneResourceAndGraphTakesNoPassword() {
        // The same client for a Graph mailbox and an IMAP one.
        let mixed = load("""
            [mailbox.in]
            type = "inbound"
            provider = "graph"
            server = "graph.microsoft.com"
            user = "support@contoso.com"
            oauth = "m365"
            [mailbox.imap-in]
            type = "inbound"
            provider = "imaps"
            server = "outlook.office365.com"
            user = "help@contoso.com"
            oauth = "m365"
            \(Self.client)
            """)
        #expect(mixed.errors.contains { $0.message.contains("a token is for one resource") }, "\(mixed.diagnostics)")
        let password = load("""
            [mailbox.in]
            type = "inbound"
            provider = "graph"
            server = "graph.microsoft.com"
            user = "support@contoso.com"
            password = "secret"
            [mailbox.g-out]
            type = "outbound"
            protocol = "graph"
            server = "graph.microsoft.com"
            sender = "support@contoso.com"
            """)
        let messages = password.errors.map(\.message)
        #expect(messages.contains { $0.contains("needs `oauth`: Microsoft Graph takes an OAuth 2.0 token") }, "\(messages)")
        #expect(messages.contains { $0.contains("Microsoft Graph takes no password") }, "\(messages)")
        #expect(messages.contains { $0.contains("needs `user`: the mailbox that sends") }, "\(messages)")
        // A certificate and a secret both: one is enough.
        let both = load(Self.client + "\nclient_certificate_file = \"/etc/carteiro/credentials/c.pem\"\n")
        #expect(both.errors.contains { $0.message.contains("both authenticate the client") }, "\(both.diagnostics)")
    }
}
