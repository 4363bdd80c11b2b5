import Foundation
import Testing
import CarteiroConfig
import CarteiroTesting
@testable import CarteiroEvents
@testable import CarteiroMail

/// Routing rules: read from the configuration with their errors at their place, evaluated in
/// order against real header syntax, addresses matched as addresses, and bounded whatever the
/// pattern and the header.
struct RoutingRulesTests {
    static let base = """
        [daemon]
        system_outbound = "o"
        [mailbox.o]
        type = "outbound"
        server = "h"
        sender = "a@b.c"
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "h"
        user = "u"
        password = "p"
        [mailbox.other-in]
        type = "inbound"
        provider = "imaps"
        server = "h"
        user = "u2"
        password = "p"
        [contract.acme]
        inbound_mailboxes = ["in"]
        [contract.beta]
        inbound_mailboxes = ["other-in"]

        """

    func load(_ rules: String) -> ConfigurationFile.Outcome {
        ConfigurationFile.load(text: Self.base + rules, file: "r.conf", environment: [:])
    }

    func rules(_ text: String) throws -> RoutingRules {
        let outcome = load(text)
        #expect(outcome.errors.isEmpty, "\(outcome.diagnostics)")
        return RoutingRules(try #require(outcome.configuration).rules)
    }

    func header(_ lines: String) -> HeaderBlock {
        HeaderBlock.parse(Array((lines.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n\r\n").utf8)[...]).header
    }

    func route(_ rules: RoutingRules, _ lines: String, mailbox: String = "in", contract: String? = "acme", verdict: String = "unknown") -> Routing {
        rules.route(header(lines), mailbox: mailbox, contract: contract, verdict: verdict)
    }

    @Test func rulesApplyInOrderUntilOneDropsOrStops() throws {
        let rules = try rules("""
            [rule.vip]
            from = "*@vip.example"
            add_tags = ["vip"]
            set_priority = "high"
            [rule.billing]
            to = "support+billing@acme.example"
            set_queue = "billing"
            add_tags = ["finance", "vip"]
            [rule.urgent]
            header = "Subject"
            regex = '(^|\\W)urgent(\\W|$)|^\\[P1\\]'
            set_priority = "urgent"
            stop = true
            [rule.news]
            header = "Subject"
            glob = "[news]*"
            drop = "newsletters go to marketing"
            """)
        let vipBilling = route(rules, "From: Ana <ana@VIP.example>\nTo: Support <support+billing@acme.example>\nSubject: invoice")
        #expect(vipBilling.rules == ["vip", "billing"])
        #expect(vipBilling.tags == ["vip", "finance"], "tags add up, each once")
        #expect(vipBilling.priority == "high" && vipBilling.queue == "billing")
        #expect(vipBilling.dropped == nil)
        // A later rule wins the priority, and `stop` ends the evaluation before the drop.
        let urgent = route(rules, "From: ana@vip.example\nSubject: [P1] [news] down")
        #expect(urgent.rules == ["vip", "urgent"] && urgent.priority == "urgent" && urgent.dropped == nil)
        let news = route(rules, "From: list@news.example\nSubject: [NEWS] December")
        #expect(news.rules == ["news"])
        #expect(news.dropped == Routing.Drop(rule: "news", reason: "newsletters go to marketing"))
        #expect(route(rules, "From: someone@else.example\nSubject: hello").isEmpty)
    }

    @Test func addressesAreMatchedAsAddressesWithPlusExtensions() throws {
        let rules = try rules("""
            [rule.plain]
            to = "support@acme.example"
            add_tags = ["plain"]
            [rule.extension]
            header = "Delivered-To"
            equals = "Support+Billing@acme.example"
            add_tags = ["extension"]
            [rule.glob]
            header = "Cc"
            glob = "*+*@acme.example"
            add_tags = ["glob"]
            """)
        // The address without an extension matches it with any; the case does not matter.
        #expect(route(rules, "To: SUPPORT+x@ACME.example").tags == ["plain"])
        #expect(route(rules, "To: \"support@acme.example\" <someone@else.example>").isEmpty, "a display name is not an address")
        #expect(route(rules, "To: support@acme.example.evil").isEmpty)
        #expect(route(rules, "Delivered-To: support+billing@acme.example").tags == ["plain", "extension"])
        #expect(route(rules, "Delivered-To: support+other@acme.example").tags == ["plain"], "an extension named matches that one only")
        #expect(route(rules, "Cc: a@b.example, Team <x+y@acme.example>").tags == ["glob"])
        // Groups, comments and encoded names are read as address lists are.
        #expect(route(rules, "To: Team: =?utf-8?q?Jo=C3=A3o?= <support@acme.example>;").tags == ["plain"])
    }

    @Test func scopesVerdictsAndCaseRules() throws {
        let rules = try rules("""
            [rule.acme-only]
            mailboxes = ["in"]
            add_tags = ["acme"]
            [rule.beta-only]
            contracts = ["beta"]
            add_tags = ["beta"]
            set_contract = "acme"
            [rule.forged]
            verdict = ["fail", "none"]
            add_tags = ["suspect"]
            [rule.exact]
            header = "x-mailer"
            equals = "Desk Bot"
            case_sensitive = true
            add_tags = ["bot"]
            [rule.folded]
            header = "Subject"
            equals = "café ao leite"
            add_tags = ["folded"]
            """)
        #expect(route(rules, "Subject: x").tags == ["acme"])
        let beta = route(rules, "Subject: x", mailbox: "other-in", contract: "beta")
        #expect(beta.tags == ["beta"] && beta.contract == "acme")
        #expect(route(rules, "Subject: x", verdict: "fail").tags == ["acme", "suspect"])
        #expect(route(rules, "Subject: x", verdict: "pass").tags == ["acme"])
        #expect(route(rules, "X-Mailer: Desk Bot").tags == ["acme", "bot"])
        #expect(route(rules, "X-Mailer: desk bot").tags == ["acme"], "case_sensitive keeps the case")
        // Values are tested decoded and unfolded, case ignored by default.
        #expect(route(rules, "Subject: =?iso-8859-1?q?CAF=C9?=\n AO LEITE").tags == ["acme", "folded"])
    }

    @Test func aBadRuleIsRefusedAtItsPlace() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("c.conf", Self.base + """
            [rule.broken]
            header = "Subject"
            regex = "^(\\\\d+"
            [rule.literal]
            header = "Subject"
            regex = 'a{5,2}'
            [rule.escaped]
            header = "Subject"
            regex = "\\\\d(x"
            [rule.both]
            header = "Subject"
            glob = "a*"
            regex = "a"
            [rule.nothing]
            header = "Subject"
            [rule.orphan]
            equals = "x"
            [rule.names]
            mailboxes = ["o", "nowhere"]
            contracts = ["acme", "gamma"]
            set_contract = "betta"
            verdict = ["pass", "forged"]
            [rule.drop]
            drop = "spam"
            add_tags = ["x"]
            [rule.priority]
            set_priority = "asap"
            """)
        let outcome = ConfigurationFile.load(path: file, environment: [:])
        #expect(outcome.configuration == nil)
        let errors = outcome.errors.map(\.description)
        func error(_ fragment: String) -> String? { errors.first { $0.contains(fragment) } }
        let base = Self.base.split(separator: "\n", omittingEmptySubsequences: false).count - 1
        // `regex = "^(\\d+"`: the unclosed group's `(` stands in column 11, right after `^`.
        #expect(errors.contains { $0.hasPrefix("\(file):\(base + 3):11: `regex` does not compile: unclosed `(`") }, "\(errors)")
        #expect(errors.contains { $0.hasPrefix("\(file):\(base + 6):11:") && $0.contains("the maximum is below the minimum") }, "\(errors)")
        // `regex = "\\\\d(x"`: the pattern's third character, past an escape of two, is column 13.
        #expect(errors.contains { $0.hasPrefix("\(file):\(base + 9):13: `regex` does not compile: unclosed `(`") }, "\(errors)")
        #expect(error("both say how") != nil)
        #expect(error("needs one of `equals`, `glob` or `regex`") != nil)
        #expect(error("`equals` needs `header`") != nil)
        #expect(error("\"o\" is an outbound mailbox") != nil)
        #expect(error("\"nowhere\" names no inbound mailbox") != nil)
        #expect(error("\"gamma\" names no contract") != nil)
        #expect(error("\"betta\" names no contract")?.contains("did you mean \"beta\"") == true, "\(errors)")
        #expect(error("\"forged\" is not a verdict") != nil)
        #expect(error("`add_tags` beside `drop`") != nil)
        #expect(error("set_priority") != nil)
    }

    @Test func aHostilePatternAndAHostileHeaderCannotStallTheRules() throws {
        // The worst the configuration language allows: a pattern of some 20,000 instructions,
        // every thread alive at every character, against the longest values a header has.
        let hostile = String(repeating: "(a|a?)", count: 150) + "b"
        let rules = try rules((0..<50).map { """
            [rule.r\($0)]
            header = "Subject"
            regex = '\(hostile)'
            add_tags = ["t\($0)"]

            """ }.joined())
        let subject = "Subject: " + String(repeating: "a", count: 1 << 20)
        let received = (0..<5_000).map { "Received: from h\($0) by mx" }.joined(separator: "\n")
        let block = header(subject + "\n" + received)
        let start = ContinuousClock.now
        let routed = rules.route(block, mailbox: "in", contract: "acme", verdict: "unknown")
        let elapsed = ContinuousClock.now - start
        #expect(routed.problem?.contains("more than \(RoutingLimits.stepsPerMessage) steps") == true)
        #expect(routed.rules.isEmpty)
        // Not a timing assertion: the budget is what bounds it; this says it ended at all.
        print("hostile rules: \(elapsed)")
        // The exponential case for a backtracking engine is linear here.
        let classic = try SafeRegex("(a+)+$")
        var budget = RoutingLimits.stepsPerMessage
        #expect(classic.matches(String(repeating: "a", count: 20_000) + "!", budget: &budget) == false)
        // A glob with many stars over a long text is bounded by the same budget.
        let glob = Glob(String(repeating: "*a", count: 500) + "b", caseInsensitive: true)
        var small = 100_000
        #expect(glob.matches(String(repeating: "a", count: 100_000), budget: &small) == nil)
    }

    @Test func theEventCarriesTheRoutingAndTheContractItSets() throws {
        let configuration = try #require(load("""
            [rule.to-beta]
            header = "Subject"
            glob = "*beta*"
            set_contract = "beta"
            add_tags = ["moved"]
            set_queue = "tier-2"
            """).configuration)
        let builder = EventBuilder(threading: RequestThreading(secret: Array(repeating: 7, count: 32)), ownAddresses: [],
                                   rules: RoutingRules(configuration.rules))
        let raw = Array("From: a@b.example\r\nSubject: about Beta\r\nMessage-ID: <1@b.example>\r\n\r\nhello\r\n".utf8)
        let input = EventBuilder.Input(mailbox: "in", contract: "acme", origin: .imap(uidValidity: 1, uid: 1), receivedAt: 0,
                                       bytes: raw, size: raw.count, oversize: false)
        let event = builder.build(input).event
        #expect(event.contract == "beta")
        #expect(event.routing?.rules == ["to-beta"] && event.routing?.queue == "tier-2")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(event.renderedBytes())) as? [String: Any])
        let routing = try #require(object["routing"] as? [String: Any])
        #expect(routing["rules"] as? [String] == ["to-beta"] && routing["tags"] as? [String] == ["moved"])
        #expect(routing["priority"] is NSNull && routing["queue"] as? String == "tier-2")
        #expect(object["contract"] as? String == "beta")
        #expect(event.json().renderedBytes() == event.renderedBytes())
    }
}
