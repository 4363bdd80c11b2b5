extension ConfigurationBuilder {
    func readTLS(_ reader: TableReader) -> TLSSettings {
        TLSSettings(caFile: reader.string("ca_file"), verify: reader.boolean("tls_verify") ?? true)
    }

    func readInbound(_ reader: TableReader, diagnostics: inout DiagnosticList) -> InboundMailbox {
        let provider = reader.string("provider").flatMap(InboundProvider.init(rawValue:)) ?? .imaps
        let password = reader.secretSource(diagnostics: &diagnostics)
        if password == nil && reader.has("provider") {
            diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs a password: set one of `password_credential`, `password_file`, `password_env` or `password`")
        }
        if !reader.has("user") {
            diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs `user`: the login name for \(provider.isIMAP ? "IMAP" : "POP3")")
        }
        return InboundMailbox(
            name: reader.name,
            description: reader.string("description") ?? "",
            provider: provider,
            server: reader.string("server") ?? "",
            port: reader.integer("port") ?? provider.defaultPort,
            user: reader.string("user") ?? "",
            password: password ?? .inline(Secret("")),
            folder: reader.string("folder") ?? "INBOX",
            afterFetch: reader.afterFetch("after_fetch") ?? .keep,
            importExisting: reader.string("import_existing").flatMap(ImportExisting.init(rawValue:)) ?? .unseen,
            maxMessageSize: reader.size("max_message_size") ?? 25 << 20,
            starttls: reader.boolean("starttls") ?? true,
            tls: readTLS(reader),
            timeout: reader.duration("timeout") ?? .seconds(30),
            pollInterval: reader.duration("poll_interval") ?? .seconds(60),
            alertAfter: reader.duration("alert_after") ?? .seconds(15 * 60),
            maxPollTime: reader.duration("max_poll_time") ?? .seconds(10 * 60),
            location: reader.table.location)
    }

    func readOutbound(_ reader: TableReader, diagnostics: inout DiagnosticList) -> OutboundMailbox {
        let mode = reader.string("tls").flatMap(OutboundTLSMode.init(rawValue:)) ?? .starttls
        return OutboundMailbox(
            name: reader.name,
            description: reader.string("description") ?? "",
            server: reader.string("server") ?? "",
            port: reader.integer("port") ?? mode.defaultPort,
            sender: reader.address("sender") ?? MailAddress(address: "invalid@invalid"),
            tlsMode: mode,
            auth: reader.boolean("auth") ?? false,
            user: reader.string("user"),
            password: reader.secretSource(diagnostics: &diagnostics),
            tls: readTLS(reader),
            timeout: reader.duration("timeout") ?? .seconds(30),
            location: reader.table.location)
    }

    func readStep(_ reader: TableReader, workflow: String, diagnostics: inout DiagnosticList) -> WorkflowStep {
        var choice = StepMailboxChoice.system
        switch reader.string("mailbox") {
        case "contract": choice = .contract
        case "specific":
            if let name = reader.string("specific_mailbox") {
                choice = .specific(name)
            } else {
                diagnostics.error(reader.keyLocation("mailbox"), "mailbox = \"specific\" needs `specific_mailbox`: the outbound mailbox this step sends through")
            }
        default:
            if reader.has("specific_mailbox") {
                diagnostics.warning(reader.keyLocation("specific_mailbox"), "`specific_mailbox` is ignored unless mailbox = \"specific\"")
            }
        }
        return WorkflowStep(
            workflow: workflow, id: reader.name, mailbox: choice,
            toUsers: reader.names("to_users") ?? [], toGroups: reader.names("to_groups") ?? [],
            subject: reader.string("subject") ?? "", body: reader.string("body") ?? "",
            html: reader.string("html"), location: reader.table.location)
    }
}
