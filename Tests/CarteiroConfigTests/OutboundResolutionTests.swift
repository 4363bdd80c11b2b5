import Testing
@testable import CarteiroConfig

/// The seed's rules for which outbound mailbox a step sends through, branch by branch.
struct OutboundResolutionTests {
    static let text = """
    [daemon]
    system_outbound = "desk-out"
    [mailbox.desk-out]
    type = "outbound"
    server = "smtp.desk.example"
    sender = "desk@desk.example"
    [mailbox.acme-out]
    type = "outbound"
    server = "smtp.acme.example"
    sender = "support@acme.example"
    [mailbox.audit-out]
    type = "outbound"
    server = "smtp.desk.example"
    sender = "audit@desk.example"
    [contract.acme]
    outbound_mailbox = "acme-out"
    [contract.beta]
    [user.ana]
    email = "ana@desk.example"
    [user.ana2]
    name = "Ana again, same address"
    email = "ANA@desk.example"
    [user.bruno]
    email = "bruno@desk.example"
    [group.desk]
    members = ["bruno", "ana"]
    [workflow.w.step.by-contract]
    mailbox = "contract"
    to_users = ["ana", "ana2"]
    to_groups = ["desk"]
    subject = "s"
    body = "b"
    [workflow.w.step.specific]
    mailbox = "specific"
    specific_mailbox = "audit-out"
    subject = "s"
    body = "b"
    [workflow.w.step.default]
    subject = "s"
    body = "b"
    """

    let configuration: Configuration

    init() throws {
        let outcome = ConfigurationFile.load(text: Self.text, file: "r.conf")
        configuration = try #require(outcome.configuration, "\(outcome.errors)")
    }

    func step(_ id: String) -> WorkflowStep { configuration.workflow("w")!.steps.first { $0.id == id }! }

    @Test func contractStepUsesTheContractsMailbox() {
        let r = OutboundResolution.resolve(step: step("by-contract"), contract: configuration.contract("acme"), in: configuration)
        #expect(r == OutboundResolution(mailbox: "acme-out", reason: .contract))
    }

    @Test func contractWithoutMailboxFallsBackToTheSystems() {
        let r = OutboundResolution.resolve(step: step("by-contract"), contract: configuration.contract("beta"), in: configuration)
        #expect(r == OutboundResolution(mailbox: "desk-out", reason: .contractFallback))
        let none = OutboundResolution.resolve(step: step("by-contract"), contract: nil, in: configuration)
        #expect(none == OutboundResolution(mailbox: "desk-out", reason: .noContract))
    }

    @Test func specificStepIgnoresTheContract() {
        let r = OutboundResolution.resolve(step: step("specific"), contract: configuration.contract("acme"), in: configuration)
        #expect(r == OutboundResolution(mailbox: "audit-out", reason: .specific))
    }

    @Test func unsetMailboxAndNoStepUseTheSystems() {
        #expect(OutboundResolution.resolve(step: step("default"), contract: configuration.contract("acme"), in: configuration).mailbox == "desk-out")
        #expect(OutboundResolution.resolve(step: nil, contract: configuration.contract("acme"), in: configuration) == OutboundResolution(mailbox: "desk-out", reason: .system))
    }

    @Test func explicitMailboxWins() {
        let r = OutboundResolution.resolve(step: step("specific"), contract: configuration.contract("acme"), explicitMailbox: "acme-out", in: configuration)
        #expect(r == OutboundResolution(mailbox: "acme-out", reason: .explicit))
    }

    @Test func recipientsAreUsersThenGroupMembersWithoutDuplicates() {
        let recipients = configuration.recipients(of: step("by-contract")).map(\.id)
        #expect(recipients == ["ana", "bruno"])
    }
}
