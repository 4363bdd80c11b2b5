import Testing
@testable import CarteiroConfig

/// Each default is declared once, in the schema: the builder takes it when the key is absent,
/// and the reference (and with it the man page) shows it. A file with only the required keys
/// must build exactly the schema's defaults, key by key; a new typed default without a line
/// here fails the last test.
struct ConfigDefaultTests {
    static let minimal = """
        [daemon]
        system_outbound = "out"
        state_dir = "/var/lib/carteiro-test"
        [events]
        [mailbox.in]
        type = "inbound"
        provider = "imaps"
        server = "mail.example"
        user = "u"
        password = "p"
        [mailbox.out]
        type = "outbound"
        server = "smtp.example"
        sender = "desk@desk.example"
        [oauth.o]
        provider = "custom"
        token_url = "https://login.example/token"
        client_id = "c"
        grant = "client_credentials"
        client_secret = "s"
        [contract.c]
        inbound_mailboxes = ["in"]
        [rule.r]
        header = "Subject"
        equals = "x"
        [oauth.cert]
        provider = "custom"
        token_url = "https://login.example/token"
        client_id = "c"
        grant = "client_credentials"
        client_certificate_file = "/etc/carteiro/credentials/cert.pem"
        """

    /// What the built model holds for each key that has a typed default: table, key, value.
    static func built() throws -> [String: TypedValue] {
        let outcome = ConfigurationFile.load(text: minimal, file: "c.conf")
        let configuration = try #require(outcome.configuration, "\(outcome.errors)")
        let daemon = configuration.daemon, events = configuration.events
        let inbound = try #require(configuration.inboundMailboxes.first)
        let outbound = try #require(configuration.outboundMailboxes.first)
        let oauth = try #require(configuration.oauthClients.first)
        let rule = try #require(configuration.rules.first)
        let certificate = try #require(configuration.oauthClients.compactMap(\.certificate).first)
        return [
            "oauth.client_assertion_algorithm": .string(certificate.algorithm.rawValue),
            "rule.case_sensitive": .boolean(rule.header?.pattern.caseSensitive ?? true),
            "rule.stop": .boolean(rule.stop),
            "daemon.poll_interval": .duration(daemon.pollInterval),
            "daemon.max_parallel_polls": .integer(daemon.maxParallelPolls),
            "daemon.alert_after": .duration(daemon.alertAfter),
            "daemon.queue_lifetime": .duration(daemon.queueLifetime),
            "daemon.keep_raw": .duration(daemon.keepRaw),
            "daemon.keep_attachments": .duration(daemon.keepAttachments),
            "daemon.keep_failed": .duration(daemon.keepFailed),
            "events.tls_verify": .boolean(events.webhookTLS.verify),
            "events.timeout": .duration(events.webhookTimeout),
            "events.inline_attachments": .size(events.inlineAttachments),
            "mailbox.tls_verify": .boolean(inbound.tls.verify),
            "mailbox.timeout": .duration(inbound.timeout),
            "mailbox.folder": .string(inbound.folder),
            "mailbox.idle": .boolean(inbound.idle),
            "mailbox.idle_refresh": .duration(inbound.idleRefresh),
            "mailbox.enabled": .boolean(inbound.enabled),
            "mailbox.after_fetch": .afterFetch(inbound.afterFetch),
            "mailbox.import_existing": .string(inbound.importExisting.rawValue),
            "mailbox.sender_verification": .string(inbound.senderVerification.rawValue),
            "mailbox.max_message_size": .size(inbound.maxMessageSize),
            "mailbox.max_messages_per_sender": .integer(inbound.maxMessagesPerSender),
            "mailbox.max_messages_per_domain": .integer(inbound.maxMessagesPerDomain),
            "mailbox.flood_window": .duration(inbound.floodWindow),
            "mailbox.max_notifications_per_recipient": .integer(outbound.maxNotificationsPerRecipient),
            "mailbox.recipient_window": .duration(outbound.recipientWindow),
            "mailbox.starttls": .boolean(inbound.starttls),
            "mailbox.max_poll_time": .duration(inbound.maxPollTime),
            "mailbox.tls": .string(outbound.tlsMode.rawValue),
            "mailbox.protocol": .string(outbound.sendsWith.rawValue),
            "mailbox.auth": .boolean(outbound.auth),
            "mailbox.max_attachment_size": .size(outbound.maxAttachmentSize),
            "oauth.expiry_warning": .duration(oauth.expiryWarning),
            "oauth.redirect_port": .integer(oauth.redirectPort),
            "oauth.tls_verify": .boolean(oauth.tls.verify),
            "oauth.timeout": .duration(oauth.timeout),
        ]
    }

    /// Every typed default the schema declares, by `table.key`.
    static var declared: [String: ConfigDefault] {
        var found: [String: ConfigDefault] = [:]
        for table in ConfigSchema.tables {
            for key in table.keys {
                guard let value = key.defaultValue, value.typed != nil else { continue }
                found["\(table.pattern[0]).\(key.key)"] = value
            }
        }
        return found
    }

    @Test func aFileWithoutTheKeysBuildsTheSchemasDefaults() throws {
        let built = try Self.built()
        for (name, declared) in Self.declared {
            guard let value = built[name] else { continue }
            #expect(ConfigDefault.value(value).description == declared.description.prefix { $0 != " " }.description,
                    "\(name): built \(ConfigDefault.value(value)), declared \(declared)")
        }
    }

    @Test func everyTypedDefaultIsCheckedHere() throws {
        let built = try Self.built()
        let unchecked = Set(Self.declared.keys).subtracting(built.keys)
        #expect(unchecked.isEmpty, "typed defaults with no line in built(): \(unchecked.sorted())")
    }

    @Test func theReferenceShowsEachDefaultAsDeclared() {
        let reference = ConfigReference.render()
        #expect(reference.contains("poll_interval = a duration such as \"30s\", \"5m\", \"1h\" or \"2d\", at least 1s; default: 1m"))
        #expect(reference.contains("default: 25MB"))
        #expect(reference.contains("inline_attachments = a size such as \"512KB\", \"25MB\" or \"1GB\"; default: 0 (never)"))
        #expect(reference.contains("redirect_port = an integer from 0 to 65535; default: 0 (any free port)"))
        #expect(reference.contains("after_fetch (inbound)"))
        for (name, value) in Self.declared {
            #expect(reference.contains("default: \(value)"), "\(name)")
        }
    }
}
