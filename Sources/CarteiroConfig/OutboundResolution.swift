/// Which outbound mailbox a message goes through, by the product's original rules:
/// an explicit mailbox wins; a step with `specific` uses its `specific_mailbox`; a step with
/// `contract` uses the contract's outbound mailbox, or the system's when the contract has none;
/// anything else uses the system outbound mailbox.
package struct OutboundResolution: Sendable, Hashable {
    package enum Reason: Sendable, Hashable {
        case explicit
        case specific
        case contract
        /// The step says `contract` but the contract names no outbound mailbox.
        case contractFallback
        /// The step says `contract` but the submission names no contract.
        case noContract
        case system
    }

    package var mailbox: String
    package var reason: Reason

    package static func resolve(step: WorkflowStep?, contract: Contract?, explicitMailbox: String? = nil,
                               in configuration: Configuration) -> OutboundResolution {
        if let explicitMailbox { return OutboundResolution(mailbox: explicitMailbox, reason: .explicit) }
        let system = configuration.daemon.systemOutbound
        switch step?.mailbox {
        case .specific(let name)?:
            return OutboundResolution(mailbox: name, reason: .specific)
        case .contract?:
            guard let contract else { return OutboundResolution(mailbox: system, reason: .noContract) }
            if let name = contract.outboundMailbox { return OutboundResolution(mailbox: name, reason: .contract) }
            return OutboundResolution(mailbox: system, reason: .contractFallback)
        case .system?, nil:
            return OutboundResolution(mailbox: system, reason: .system)
        }
    }

    /// Words for check-config and the journal.
    package var explanation: String {
        switch reason {
        case .explicit: "named explicitly"
        case .specific: "the step's specific mailbox"
        case .contract: "the contract's outbound mailbox"
        case .contractFallback: "the system outbound mailbox: the contract has none"
        case .noContract: "the system outbound mailbox: no contract is named"
        case .system: "the system outbound mailbox"
        }
    }
}

extension Configuration {
    /// The step's recipients: its users and its groups' members, once each, in order.
    package func recipients(of step: WorkflowStep) -> [DirectoryUser] {
        var seen: Set<String> = []
        var result: [DirectoryUser] = []
        let ids = step.toUsers + step.toGroups.flatMap { group($0)?.members ?? [] }
        for id in ids {
            guard let user = user(id), seen.insert(user.email.address.lowercased()).inserted else { continue }
            result.append(user)
        }
        return result
    }
}
