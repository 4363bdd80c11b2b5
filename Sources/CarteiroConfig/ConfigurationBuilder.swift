/// Turns a `ConfigDocument` into a `Configuration`: every table read against the schema,
/// defaults applied, then every cross-reference checked (`ConfigurationBuilder+Validation`).
package struct ConfigurationBuilder {
    /// The process environment, for `$STATE_DIRECTORY` (defaults depend on it).
    package var environment: [String: String]

    package init(environment: [String: String]) {
        self.environment = environment
    }

    /// Table names become folder names in the state directory and parts of event ids.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.count <= 128
            && name.unicodeScalars.allSatisfy { ConfigParser.isBareKeyScalar($0) || $0 == "." }
    }

    package func build(_ document: ConfigDocument, files: [String], diagnostics: inout DiagnosticList) -> Configuration? {
        var inbound: [InboundMailbox] = []
        var outbound: [OutboundMailbox] = []
        var oauthClients: [OAuthClient] = []
        var contracts: [Contract] = []
        var users: [DirectoryUser] = []
        var groups: [UserGroup] = []
        var workflows: [Workflow] = []
        var rules: [RoutingRule] = []
        var daemonReader: TableReader?
        var eventsReader: TableReader?
        /// Mailboxes whose table could not be read well enough to know their type.
        var brokenMailboxes: Set<String> = []

        for entry in document.root.entries {
            let hint = ConfigSchema.daemon.key(entry.key) != nil ? "; did you mean to put it under [daemon]?" : ""
            diagnostics.error(entry.keyLocation, "`\(entry.key)` stands before any [table] header, where only `include` is allowed\(hint)")
        }

        for table in document.tables.dropFirst() where !table.isDuplicate {
            let path = table.path
            guard let spec = ConfigSchema.spec(for: path) else {
                reportUnknownTable(table, diagnostics: &diagnostics)
                continue
            }
            if path.count > 1, let name = path.last, !Self.isValidName(name) {
                diagnostics.error(table.location, "\"\(name)\" cannot be a name: use letters, digits, `-`, `_` and `.` (names become folder names and parts of event ids)")
                continue
            }
            // A mailbox's name is its queue's folder, beside queue/failed and queue/corrupt.
            if path.count == 2, path[0] == "mailbox", let name = path.last, Self.reservedMailboxNames.contains(name) {
                diagnostics.error(table.location, "\"\(name)\" is reserved (the queue keeps given-up and unreadable messages under it): choose another mailbox name")
                continue
            }
            switch path[0] {
            case "daemon":
                daemonReader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
            case "events":
                eventsReader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
            case "mailbox":
                switch mailboxType(table) {
                case "inbound":
                    let reader = TableReader(table, spec: spec, scope: .inbound, scopeLabel: "an inbound mailbox", diagnostics: &diagnostics)
                    inbound.append(readInbound(reader, diagnostics: &diagnostics))
                case "outbound":
                    let reader = TableReader(table, spec: spec, scope: .outbound, scopeLabel: "an outbound mailbox", diagnostics: &diagnostics)
                    outbound.append(readOutbound(reader, diagnostics: &diagnostics))
                default:
                    // The reader reports the missing or wrong `type`, and every other problem it can see.
                    _ = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                    brokenMailboxes.insert(path[1])
                }
            case "oauth":
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                oauthClients.append(readOAuthClient(reader, diagnostics: &diagnostics))
            case "contract":
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                contracts.append(Contract(id: reader.name, name: reader.string("name") ?? reader.name,
                                          outboundMailbox: reader.string("outbound_mailbox"),
                                          inboundMailboxes: reader.names("inbound_mailboxes") ?? [], location: table.location,
                                          signature: reader.string("signature"), signatureHTML: reader.string("signature_html")))
            case "rule":
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                rules.append(readRule(reader, diagnostics: &diagnostics))
            case "user":
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                users.append(DirectoryUser(id: reader.name, name: reader.string("name") ?? reader.name,
                                           email: reader.address("email") ?? MailAddress(address: "invalid@invalid")))
            case "group":
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                groups.append(UserGroup(id: reader.name, name: reader.string("name") ?? reader.name, members: reader.names("members") ?? []))
            case "workflow" where path.count == 2:
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                workflows.append(Workflow(id: reader.name, description: reader.string("description") ?? "", steps: []))
            default: // a step
                let reader = TableReader(table, spec: spec, scope: nil, diagnostics: &diagnostics)
                let step = readStep(reader, workflow: path[1], diagnostics: &diagnostics)
                if let index = workflows.firstIndex(where: { $0.id == path[1] }) {
                    workflows[index].steps.append(step)
                } else {
                    workflows.append(Workflow(id: path[1], description: "", steps: [step]))
                }
            }
        }

        let stateDirectory = daemonReader?.string("state_dir") ?? Self.defaultStateDirectory(environment, configurationFile: files.first)
        let schema = ConfigSchema.daemon
        let daemon = DaemonSettings(
            systemOutbound: daemonReader?.string("system_outbound") ?? "",
            stateDirectory: stateDirectory,
            pollInterval: daemonReader?.duration("poll_interval") ?? schema.defaultDuration("poll_interval"),
            maxParallelPolls: daemonReader?.integer("max_parallel_polls") ?? schema.defaultInteger("max_parallel_polls"),
            alertAfter: daemonReader?.duration("alert_after") ?? schema.defaultDuration("alert_after"),
            queueLifetime: daemonReader?.duration("queue_lifetime") ?? schema.defaultDuration("queue_lifetime"),
            hostname: daemonReader?.string("hostname"),
            keepRaw: daemonReader?.duration("keep_raw") ?? schema.defaultDuration("keep_raw"),
            keepAttachments: daemonReader?.duration("keep_attachments") ?? schema.defaultDuration("keep_attachments"),
            keepFailed: daemonReader?.duration("keep_failed") ?? schema.defaultDuration("keep_failed"))
        var events = EventSettings(spool: eventsReader?.string("spool") ?? stateDirectory + "/events",
                                   webhook: eventsReader?.string("webhook"),
                                   webhookTimeout: eventsReader?.duration("timeout") ?? ConfigSchema.events.defaultDuration("timeout"),
                                   inlineAttachments: eventsReader?.size("inline_attachments") ?? ConfigSchema.events.defaultSize("inline_attachments"))
        if let reader = eventsReader {
            events.webhookSecret = reader.secretSource("webhook_secret", diagnostics: &diagnostics)
            events.webhookToken = reader.secretSource("webhook_token", diagnostics: &diagnostics)
            events.webhookTLS = TLSSettings(caFile: reader.string("ca_file"), verify: reader.booleanOrDefault("tls_verify"))
            if events.webhook == nil, let key = ["webhook_secret", "webhook_token", "inline_attachments"].first(where: reader.has) {
                diagnostics.warning(reader.keyLocation(key), "`\(key)` is unused without `webhook`")
            }
        }
        // Inbound mailboxes inherit the daemon's interval and alert delay unless they set their own.
        for i in inbound.indices {
            let table = document.table(["mailbox", inbound[i].name])
            if table?.entry("poll_interval") == nil { inbound[i].pollInterval = daemon.pollInterval }
            if table?.entry("alert_after") == nil { inbound[i].alertAfter = daemon.alertAfter }
        }

        var configuration = Configuration(files: files, daemon: daemon, events: events, inboundMailboxes: inbound,
                                          outboundMailboxes: outbound, oauthClients: oauthClients, contracts: contracts, users: users,
                                          groups: groups, workflows: workflows, rules: rules)
        validate(&configuration, document: document, daemonTable: daemonReader?.table, brokenMailboxes: brokenMailboxes, diagnostics: &diagnostics)
        return diagnostics.hasErrors ? nil : configuration
    }

    static func isInstanceNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_" || scalar == "."
    }

    package static func defaultStateDirectory(_ environment: [String: String], configurationFile: String?) -> String {
        // systemd may list several directories separated by colons; the first is ours.
        if let value = environment["STATE_DIRECTORY"], let first = value.split(separator: ":").first, !first.isEmpty {
            return String(first)
        }
        // An instance's configuration (`/etc/carteiro/NAME.conf`, run by carteiro@NAME) keeps its
        // state where its unit's StateDirectory=carteiro-NAME puts it, from a shell too.
        if let file = configurationFile {
            let base = file.split(separator: "/").last.map(String.init) ?? file
            if base.hasSuffix(".conf"), base != "carteiro.conf" {
                let name = String(base.dropLast(5))
                if !name.isEmpty, name.unicodeScalars.allSatisfy(Self.isInstanceNameScalar) {
                    return "/var/lib/carteiro-\(name)"
                }
            }
        }
        return "/var/lib/carteiro"
    }

    private func mailboxType(_ table: ConfigDocument.Table) -> String? {
        guard case .string(let type)? = table.entry("type")?.value.kind else { return nil }
        return type
    }

    static let reservedMailboxNames: Set<String> = ["failed", "corrupt"]

    private func reportUnknownTable(_ table: ConfigDocument.Table, diagnostics: inout DiagnosticList) {
        let path = table.path
        let rendered = ConfigDocument.render(path)
        if ConfigSchema.isContainer(path) {
            if let first = table.entries.first {
                let example = path == ["workflow", path.count > 1 ? path[1] : "", "step"] ? "[\(rendered).STEP]" : "[\(rendered).NAME]"
                diagnostics.error(first.keyLocation, "`\(first.key)` must go in a named table such as \(example), not in [\(rendered)]")
            }
            return
        }
        if table.isImplicit && table.entries.isEmpty { return }
        let location = table.isImplicit ? (table.entries.first?.keyLocation ?? table.location) : table.location
        let known = ConfigSchema.tableNames
        if !known.contains(path[0]) {
            diagnostics.error(location, "unknown table [\(rendered)]" + NearestName.hint(path[0], among: known, quote: { "[\($0)…]" }))
            return
        }
        let specs = ConfigSchema.tables.filter { $0.pattern[0] == path[0] }
        let shapes = specs.map(\.title).joined(separator: " or ")
        if table.isImplicit, let entry = table.entries.first, ConfigSchema.spec(for: Array(path.dropLast())) != nil {
            // `a.b = 1` inside a table: a dotted key that names a sub-table no spec knows.
            diagnostics.error(entry.keyLocation, "unknown key `\(path.last ?? "").\(entry.key)` in [\(ConfigDocument.render(Array(path.dropLast())))]")
            return
        }
        diagnostics.error(location, "unknown table [\(rendered)]: expected \(shapes)")
    }
}
