/// The text `check-config` prints on success: what an operator checks at a glance.
/// Each contract with its mailboxes, and for every workflow step which mailbox it sends
/// through for each contract (the resolution rule, applied).
package enum ConfigSummary {
    package static func render(_ configuration: Configuration) -> String {
        var out: [String] = []
        let c = configuration
        let files = c.files.count == 1 ? "1 file" : "\(c.files.count) files"
        out.append("\(c.files.first ?? "configuration"): OK (\(files); \(plural(c.contracts.count, "contract")), \(plural(c.inboundMailboxes.count, "inbound mailbox", "inbound mailboxes")), \(plural(c.outboundMailboxes.count, "outbound mailbox", "outbound mailboxes")), \(plural(c.users.count, "user")), \(plural(c.groups.count, "group")), \(plural(c.workflows.reduce(0) { $0 + $1.steps.count }, "workflow step")))")
        out.append("")
        out.append("daemon")
        out.append("  system outbound  \(c.daemon.systemOutbound)")
        out.append("  state directory  \(c.daemon.stateDirectory)")
        // The key that makes replies thread: losing it breaks every open conversation.
        out.append("  threading key    \(c.daemon.stateDirectory)/threading.key (back it up with the state directory)")
        out.append("  event spool      \(c.events.spool)" + (c.events.webhook.map { ", webhook \($0)" } ?? ""))
        out.append("  polling          every \(ConfigDuration.format(c.daemon.pollInterval)) by default, \(c.daemon.maxParallelPolls) at a time")

        for contract in c.contracts {
            out.append("")
            out.append("contract \(contract.id)" + (contract.name != contract.id ? "  \"\(contract.name)\"" : ""))
            if contract.inboundMailboxes.isEmpty { out.append("  inbound   (none)") }
            for name in contract.inboundMailboxes {
                if let mailbox = c.inbound(name) { out.append("  inbound   " + describe(mailbox)) }
            }
            if let name = contract.outboundMailbox, let mailbox = c.outbound(name) {
                out.append("  outbound  " + describe(mailbox) + (name == c.daemon.systemOutbound ? "  (also the system's)" : ""))
            } else {
                out.append("  outbound  (none: steps with mailbox = \"contract\" use the system's, \(c.daemon.systemOutbound))")
            }
        }
        let unowned = c.inboundMailboxes.filter { c.contract(owning: $0.name) == nil }
        // A contract's own mailbox is listed under its contract (the system's too, if it is one).
        let contractOutbound = Set(c.contracts.compactMap(\.outboundMailbox))
        let otherOutbound = c.outboundMailboxes.filter { !contractOutbound.contains($0.name) }
        if !unowned.isEmpty || !otherOutbound.isEmpty {
            out.append("")
            out.append("mailboxes outside contracts")
            for mailbox in unowned { out.append("  inbound   " + describe(mailbox)) }
            for mailbox in otherOutbound {
                out.append("  outbound  " + describe(mailbox) + (mailbox.name == c.daemon.systemOutbound ? "  (system)" : ""))
            }
        }

        for client in c.oauthClients {
            out.append("")
            out.append(contentsOf: describe(client, in: c))
        }

        if !c.rules.isEmpty {
            out.append("")
            out.append("routing rules, in the order they are evaluated")
            for (number, rule) in c.rules.enumerated() {
                let scope = rule.mailboxes.isEmpty && rule.contracts.isEmpty ? "every inbound mailbox"
                    : (rule.mailboxes.map { "mailbox \($0)" } + rule.contracts.map { "contract \($0)" }).joined(separator: ", ")
                out.append("  \(number + 1). \(rule.name)  (\(scope))")
                out.append("     when \(rule.conditionSummary)")
                out.append("     then \(rule.actionSummary)")
            }
        }

        for workflow in c.workflows {
            for step in workflow.steps {
                out.append("")
                let choice: String = switch step.mailbox {
                case .system: "system"
                case .contract: "contract"
                case .specific(let name): "specific: \(name)"
                }
                out.append("workflow \(workflow.id) step \(step.id)  (mailbox: \(choice))")
                let recipients = c.recipients(of: step)
                let list = recipients.isEmpty ? "(only the addresses each submission names)" : recipients.map { "\($0.name) <\($0.email.address)>" }.joined(separator: ", ")
                out.append("  to        \(list)")
                if case .contract = step.mailbox {
                    for contract in c.contracts {
                        let resolution = OutboundResolution.resolve(step: step, contract: contract, in: c)
                        out.append("  \(pad("contract " + contract.id, to: 24)) → \(resolution.mailbox)  (\(resolution.explanation))")
                    }
                    let none = OutboundResolution.resolve(step: step, contract: nil, in: c)
                    out.append("  \(pad("no contract", to: 24)) → \(none.mailbox)  (\(none.explanation))")
                } else {
                    let resolution = OutboundResolution.resolve(step: step, contract: nil, in: c)
                    out.append("  \(pad("every contract", to: 24)) → \(resolution.mailbox)  (\(resolution.explanation))")
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func describe(_ mailbox: InboundMailbox) -> String {
        let tls = mailbox.provider.usesImplicitTLS ? "" : (mailbox.starttls ? "+STARTTLS" : " (plain text allowed)")
        let folder = mailbox.provider.family.hasFolders ? " \(mailbox.folder)" : ""
        return "\(pad(mailbox.name, to: 16)) \(mailbox.provider.rawValue)\(tls) \(mailbox.server):\(mailbox.port)\(folder) as \(mailbox.user)\(oauth(mailbox.oauth)), "
            + (mailbox.enabled ? "every \(ConfigDuration.format(mailbox.pollInterval)), after fetch: \(mailbox.afterFetch)" : "DISABLED (enabled = false): not polled")
            + (mailbox.authservIDs.isEmpty ? "" : ", trusts \(mailbox.authservIDs.joined(separator: ", ")) (a failed sender: \(mailbox.senderVerification.rawValue))")
            + described(mailbox.description)
    }

    static func oauth(_ login: OAuthLogin?) -> String {
        login.map { " with OAuth \($0.client) (\($0.mechanism.saslName))" } ?? ""
    }

    /// Each OAuth client: its grant, its endpoints and scopes as resolved, and who uses it.
    static func describe(_ client: OAuthClient, in c: Configuration) -> [String] {
        var lines = ["oauth \(client.name)  \(client.provider.rawValue)" + (client.tenant.map { " tenant \($0)" } ?? "") + ", grant \(client.grant.rawValue)"
                     + (client.clientID.isEmpty ? "" : ", client \(client.clientID)") + (client.clientSecret == nil ? "" : ", with a client secret")]
        if client.grant == .authorizationCode, let url = client.authorizationURL { lines.append("  authorization  \(url)") }
        if client.grant == .deviceCode, let url = client.deviceAuthorizationURL { lines.append("  device         \(url)") }
        lines.append("  token          \(client.tokenURL)")
        lines.append("  scopes         \(client.scopes.isEmpty ? "(none)" : client.scopes.joined(separator: " "))")
        if let lifetime = client.refreshTokenLifetime {
            lines.append("  refresh token  lives \(ConfigDuration.format(lifetime)) unused; alert \(ConfigDuration.format(client.expiryWarning)) before")
        }
        let users = c.inboundMailboxes.filter { $0.oauth?.client == client.name }.map { "\($0.name) (\($0.user), \($0.oauth?.mechanism.saslName ?? ""))" }
            + c.outboundMailboxes.filter { $0.oauth?.client == client.name }.map { "\($0.name) (\($0.user ?? ""), \($0.oauth?.mechanism.saslName ?? ""))" }
        lines.append("  mailboxes      \(users.isEmpty ? "(none)" : users.joined(separator: ", "))")
        if client.grant.isInteractive { lines.append("  authorize      carteiro authorize MAILBOX\(client.grant == .deviceCode ? " --device" : "") (once per mailbox user)") }
        return lines
    }

    /// A mailbox's `description`, for people, after its line.
    static func described(_ description: String) -> String {
        description.isEmpty ? "" : "  \"\(description)\""
    }

    static func describe(_ mailbox: OutboundMailbox) -> String {
        let auth = mailbox.auth ? ", login \(mailbox.user ?? "")\(oauth(mailbox.oauth))" : ""
        return "\(pad(mailbox.name, to: 16)) smtp \(mailbox.tlsMode.rawValue) \(mailbox.server):\(mailbox.port) as \(mailbox.sender)\(auth)"
            + described(mailbox.description)
    }

    static func pad(_ text: String, to width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func plural(_ n: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : (pluralForm ?? singular + "s"))"
    }
}
