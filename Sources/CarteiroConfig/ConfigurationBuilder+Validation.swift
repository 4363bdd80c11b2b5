extension ConfigurationBuilder {
    /// Ports that announce a different protocol than the one configured: worth a warning,
    /// since "imaps on 143" is the most common cause of a TLS handshake that never completes.
    static let wellKnownPorts: [Int: String] = [
        143: "imap", 993: "imaps", 110: "pop", 995: "pops", 25: "none", 587: "starttls", 465: "tls",
    ]

    func validate(_ configuration: inout Configuration, document: ConfigDocument, daemonTable: ConfigDocument.Table?,
                  brokenMailboxes: Set<String>, diagnostics: inout DiagnosticList) {
        let inboundNames = configuration.inboundMailboxes.map(\.name)
        let outboundNames = configuration.outboundMailboxes.map(\.name)
        let allMailboxes = inboundNames + outboundNames + brokenMailboxes

        /// Checks that `name` is an outbound mailbox; says what it is otherwise.
        func checkOutbound(_ name: String, at location: SourceLocation, role: String) {
            if outboundNames.contains(name) || brokenMailboxes.contains(name) { return }
            if inboundNames.contains(name) {
                diagnostics.error(location, "\(role) \"\(name)\" is an inbound mailbox; it must be an outbound one (type = \"outbound\")")
            } else {
                diagnostics.error(location, "\(role) names no mailbox: there is no [mailbox.\(name)]" + NearestName.hint(name, among: allMailboxes, quote: { "\"\($0)\"" }))
            }
        }

        // The system outbound mailbox.
        let daemonLocation = daemonTable?.location ?? SourceLocation(file: configuration.files.first ?? "", line: 1, column: 1)
        if daemonTable?.entry("system_outbound") == nil {
            if daemonTable == nil {
                diagnostics.error(daemonLocation, "no [daemon] table: it must name `system_outbound`, the system's default outbound mailbox")
            }
        } else if !configuration.daemon.systemOutbound.isEmpty {
            checkOutbound(configuration.daemon.systemOutbound, at: daemonTable?.entry("system_outbound")?.value.location ?? daemonLocation, role: "system_outbound")
        }

        // Contracts.
        var owner: [String: Contract] = [:]
        for contract in configuration.contracts {
            let table = document.table(["contract", contract.id])
            if let name = contract.outboundMailbox {
                checkOutbound(name, at: table?.entry("outbound_mailbox")?.value.location ?? contract.location, role: "outbound_mailbox")
            }
            let listed = table?.entry("inbound_mailboxes")?.value
            for (offset, name) in contract.inboundMailboxes.enumerated() {
                var location = listed?.location ?? contract.location
                if case .array(let items)? = listed?.kind, offset < items.count { location = items[offset].location }
                if outboundNames.contains(name) {
                    diagnostics.error(location, "inbound_mailboxes lists \"\(name)\", an outbound mailbox; it must be an inbound one (type = \"inbound\")")
                } else if !inboundNames.contains(name) && !brokenMailboxes.contains(name) {
                    diagnostics.error(location, "inbound_mailboxes names no mailbox: there is no [mailbox.\(name)]" + NearestName.hint(name, among: allMailboxes, quote: { "\"\($0)\"" }))
                } else if let first = owner[name] {
                    if first.id == contract.id {
                        diagnostics.error(location, "\"\(name)\" is listed twice")
                    } else {
                        diagnostics.error(location, "\"\(name)\" already belongs to contract \"\(first.id)\" (\(first.location)): a mailbox's requests belong to one contract")
                    }
                } else {
                    owner[name] = contract
                }
            }
        }

        // Inbound mailboxes.
        for mailbox in configuration.inboundMailboxes {
            let table = document.table(["mailbox", mailbox.name])
            func at(_ key: String) -> SourceLocation { table?.entry(key)?.keyLocation ?? mailbox.location }
            if !mailbox.provider.family.hasFolders {
                switch mailbox.afterFetch {
                case .seen, .move:
                    diagnostics.error(table?.entry("after_fetch")?.value.location ?? mailbox.location,
                                      "after_fetch = \"\(mailbox.afterFetch)\" needs IMAP; \(mailbox.provider.family.displayName) can only \"keep\" or \"delete\"")
                default: break
                }
                if let entry = table?.entry("folder"), mailbox.folder.uppercased() != "INBOX" {
                    diagnostics.error(entry.value.location, "POP3 reads only the inbox; `folder` must be \"INBOX\" or unset")
                }
            }
            if case .move(let folder) = mailbox.afterFetch, folder == mailbox.folder {
                diagnostics.error(table?.entry("after_fetch")?.value.location ?? mailbox.location, "after_fetch moves messages into the folder they are read from")
            }
            if table?.entry("starttls") != nil && mailbox.provider.usesImplicitTLS {
                diagnostics.error(at("starttls"), "`starttls` applies to imap and pop; \(mailbox.provider.rawValue) is always TLS from the first byte")
            } else if !mailbox.starttls {
                diagnostics.warning(at("starttls"), "starttls = false: if the server offers no STARTTLS, the password and the mail cross the network in plain text")
            }
            if !mailbox.tls.verify {
                diagnostics.warning(at("tls_verify"), "tls_verify = false: the server's certificate is not checked, so anyone on the path can read the password")
            }
            warnUnusualPort(mailbox.port, expected: mailbox.provider.rawValue, defaultPort: mailbox.provider.defaultPort, at: table?.entry("port")?.value.location, diagnostics: &diagnostics)
            if owner[mailbox.name] == nil {
                diagnostics.warning(mailbox.location, "inbound mailbox \"\(mailbox.name)\" belongs to no contract: its events will carry \"contract\": null")
            }
        }

        // Outbound mailboxes.
        for mailbox in configuration.outboundMailboxes {
            let table = document.table(["mailbox", mailbox.name])
            if mailbox.auth {
                if mailbox.user == nil {
                    diagnostics.error(table?.entry("auth")?.keyLocation ?? table?.entry("oauth")?.keyLocation ?? mailbox.location,
                                      mailbox.oauth == nil ? "auth = true needs `user`" : "`oauth` needs `user`: the mailbox's address the token is for")
                }
                if mailbox.password == nil && mailbox.oauth == nil {
                    diagnostics.error(table?.entry("auth")?.keyLocation ?? mailbox.location, "auth = true needs a password: set one of `password_credential`, `password_file`, `password_env` or `password`")
                }
            } else if mailbox.password != nil || mailbox.user != nil {
                diagnostics.warning(table?.entry("user")?.keyLocation ?? mailbox.location, "a user or password is set but auth is false: they are not used (set auth = true to log in)")
            }
            if !mailbox.tls.verify {
                diagnostics.warning(table?.entry("tls_verify")?.keyLocation ?? mailbox.location, "tls_verify = false: the server's certificate is not checked")
            }
            if mailbox.tlsMode == .none && mailbox.auth {
                diagnostics.warning(table?.entry("tls")?.keyLocation ?? mailbox.location, "tls = \"none\" with auth = true: the password crosses the network in plain text")
            }
            warnUnusualPort(mailbox.port, expected: mailbox.tlsMode.rawValue, defaultPort: mailbox.tlsMode.defaultPort, at: table?.entry("port")?.value.location, diagnostics: &diagnostics)
        }

        // Two inbound mailboxes on one account and folder would make every message two events.
        var accounts: [String: String] = [:]
        for mailbox in configuration.inboundMailboxes where mailbox.enabled {
            let folder = mailbox.provider.family.hasFolders ? mailbox.folder : "(\(mailbox.provider.family.displayName) inbox)"
            let key = "\(mailbox.server.lowercased()):\(mailbox.port)/\(mailbox.user.lowercased())/\(folder)"
            if let first = accounts[key] {
                diagnostics.warning(mailbox.location, "mailboxes \"\(first)\" and \"\(mailbox.name)\" read the same account and folder (\(mailbox.user) at \(mailbox.server), \(folder)): each message would be handed on by both")
            } else {
                accounts[key] = mailbox.name
            }
        }

        // OAuth clients and the mailboxes that use them.
        let clientNames = configuration.oauthClients.map(\.name)
        var usedClients: Set<String> = []
        let logins: [(String, OAuthLogin?)] = configuration.inboundMailboxes.map { ($0.name, $0.oauth) } + configuration.outboundMailboxes.map { ($0.name, $0.oauth) }
        for (name, login) in logins {
            guard let login else { continue }
            usedClients.insert(login.client)
            if !clientNames.contains(login.client) {
                let location = document.table(["mailbox", name])?.entry("oauth")?.value.location ?? configuration.files.first.map { SourceLocation(file: $0, line: 1, column: 1) }
                if let location {
                    diagnostics.error(location, "oauth = \"\(login.client)\" names no client: there is no [oauth.\(login.client)]" + NearestName.hint(login.client, among: clientNames, quote: { "\"\($0)\"" }))
                }
            }
        }
        for client in configuration.oauthClients where !usedClients.contains(client.name) {
            diagnostics.warning(client.location, "[oauth.\(client.name)] is used by no mailbox (oauth = \"\(client.name)\")")
        }
        // One token is for one resource: a Graph mailbox needs a client with Graph's scopes,
        // an IMAP, POP3 or SMTP mailbox one with the mail protocols'. A Microsoft client that
        // names no scopes gets Graph's when every mailbox of it uses Graph.
        for index in configuration.oauthClients.indices {
            let client = configuration.oauthClients[index]
            let graph = configuration.inboundMailboxes.filter { $0.oauth?.client == client.name && $0.provider.family == .graph }.map(\.name)
                + configuration.outboundMailboxes.filter { $0.oauth?.client == client.name && $0.sendsWith == .graph }.map(\.name)
            let other = configuration.inboundMailboxes.filter { $0.oauth?.client == client.name && $0.provider.family != .graph }.map(\.name)
                + configuration.outboundMailboxes.filter { $0.oauth?.client == client.name && $0.sendsWith != .graph }.map(\.name)
            let table = document.table(["oauth", client.name])
            if client.provider == .microsoft, table?.entry("scopes") == nil, !graph.isEmpty, other.isEmpty {
                configuration.oauthClients[index].scopes = client.grant == .clientCredentials ? OAuthPreset.graphAppOnlyScopes : OAuthPreset.graphDelegatedScopes
                continue
            }
            let location = table?.entry("scopes")?.value.location ?? client.location
            if !graph.isEmpty && !other.isEmpty {
                diagnostics.error(client.location, "[oauth.\(client.name)] serves Microsoft Graph mailboxes (\(graph.joined(separator: ", "))) and IMAP, POP3 or SMTP ones (\(other.joined(separator: ", "))): a token is for one resource; give each kind its own [oauth.NAME] (they may share the client_id)")
            } else if !graph.isEmpty, !OAuthPreset.isGraph(client.scopes) {
                diagnostics.error(location, "[oauth.\(client.name)] asks for scopes \(client.scopes.joined(separator: " ")), which are not Microsoft Graph's: a Graph mailbox (\(graph.joined(separator: ", "))) needs scopes = [\"\(OAuthPreset.graphAppOnlyScopes[0])\"] (client credentials) or Graph's delegated scopes; an IMAP or SMTP token is refused by Graph (401)")
            } else if !other.isEmpty, OAuthPreset.isGraph(client.scopes) {
                diagnostics.error(location, "[oauth.\(client.name)] asks for Microsoft Graph's scopes, but mailboxes \(other.joined(separator: ", ")) log in to IMAP, POP3 or SMTP, which refuse a Graph token: use the mail protocols' scopes, or provider = \"graph\" for the inbound mailbox")
            }
        }

        // Users and groups.
        let userNames = configuration.users.map(\.id)
        for group in configuration.groups {
            let value = document.table(["group", group.id])?.entry("members")?.value
            checkNames(group.members, in: value, known: userNames, kind: "user", diagnostics: &diagnostics)
        }

        // Workflow steps.
        let groupNames = configuration.groups.map(\.id)
        for workflow in configuration.workflows {
            for step in workflow.steps {
                let table = document.table(["workflow", workflow.id, "step", step.id])
                if case .specific(let name) = step.mailbox {
                    checkOutbound(name, at: table?.entry("specific_mailbox")?.value.location ?? step.location, role: "specific_mailbox")
                }
                checkNames(step.toUsers, in: table?.entry("to_users")?.value, known: userNames, kind: "user", diagnostics: &diagnostics)
                checkNames(step.toGroups, in: table?.entry("to_groups")?.value, known: groupNames, kind: "group", diagnostics: &diagnostics)
            }
        }
        validateRules(configuration, document: document, diagnostics: &diagnostics)
    }

    private func checkNames(_ names: [String], in value: ConfigValue?, known: [String], kind: String, diagnostics: inout DiagnosticList) {
        for (offset, name) in names.enumerated() where !known.contains(name) {
            var location = value?.location ?? SourceLocation(file: "", line: 1, column: 1)
            if case .array(let items)? = value?.kind, offset < items.count { location = items[offset].location }
            diagnostics.error(location, "\"\(name)\" is not a \(kind): there is no [\(kind).\(name)]" + NearestName.hint(name, among: known, quote: { "\"\($0)\"" }))
        }
    }

    private func warnUnusualPort(_ port: Int, expected: String, defaultPort: Int, at location: SourceLocation?, diagnostics: inout DiagnosticList) {
        guard let location, let usual = Self.wellKnownPorts[port], usual != expected,
              // 25 and 587 both carry STARTTLS and plain SMTP in practice.
              !(Set([usual, expected]).isSubset(of: ["none", "starttls"])) else { return }
        diagnostics.warning(location, "port \(port) usually speaks \(usual), not \(expected) (whose usual port is \(defaultPort))")
    }
}
