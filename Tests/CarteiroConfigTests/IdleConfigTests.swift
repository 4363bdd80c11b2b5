import Testing
@testable import CarteiroConfig

/// `idle` and `idle_refresh`: IMAP only, at most 29 minutes, on by default.
struct IdleConfigTests {
    func load(_ mailbox: String) -> ConfigurationFile.Outcome {
        ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "o"
            [mailbox.o]
            type = "outbound"
            server = "h"
            sender = "a@b.c"
            [mailbox.m]
            type = "inbound"
            server = "h"
            user = "u"
            password = "p"
            \(mailbox)
            [contract.c]
            inbound_mailboxes = ["m"]
            """, file: "i.conf", environment: [:])
    }

    @Test func defaultsAndLimits() throws {
        let imap = try #require(load("provider = \"imaps\"").configuration?.inbound("m"))
        #expect(imap.idle && imap.idleRefresh == .seconds(600))
        let off = try #require(load("provider = \"imaps\"\nidle = false").configuration?.inbound("m"))
        #expect(!off.idle)
        let long = load("provider = \"imaps\"\nidle_refresh = \"1h\"")
        #expect(long.configuration?.inbound("m")?.idleRefresh == .seconds(29 * 60))
        #expect(long.warnings.contains { $0.description.contains("idle_refresh is at most 29m") })
        let pop = load("provider = \"pops\"\nidle = true")
        #expect(pop.configuration?.inbound("m")?.idle == false)
        #expect(pop.warnings.contains { $0.description.contains("`idle` applies to IMAP only") })
    }
}
