extension ConfigurationBuilder {
    func readTLS(_ reader: TableReader) -> TLSSettings {
        TLSSettings(caFile: reader.string("ca_file"), verify: reader.booleanOrDefault("tls_verify"))
    }

    func readInbound(_ reader: TableReader, diagnostics: inout DiagnosticList) -> InboundMailbox {
        let provider = reader.string("provider").flatMap(InboundProvider.init(rawValue:)) ?? .imaps
        let password = reader.secretSource(diagnostics: &diagnostics)
        let oauth = readOAuthLogin(reader, hasPassword: password != nil, diagnostics: &diagnostics)
        if provider.family.isWebAPI {
            if oauth == nil && reader.has("provider") {
                diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs `oauth`: \(provider.family.displayName) takes an OAuth 2.0 token, never a password")
            }
            if let key = ["password", "password_file", "password_env", "password_credential"].first(where: reader.has) {
                diagnostics.error(reader.keyLocation(key), "`\(key)`: \(provider.family.displayName) takes no password; it logs in with `oauth`")
            }
        } else if password == nil && oauth == nil && reader.has("provider") {
            diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs a password: set one of `password_credential`, `password_file`, `password_env` or `password`")
        }
        if !reader.has("user") {
            diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs `user`: the login name for \(provider.family.displayName)")
        }
        if !provider.family.canWaitForNews, let key = ["idle", "idle_refresh"].first(where: reader.has) {
            diagnostics.warning(reader.keyLocation(key), "`\(key)` applies to IMAP only: \(provider.family.displayName) has no IDLE, this mailbox is polled")
        }
        if let refresh = reader.duration("idle_refresh"), refresh > .seconds(29 * 60) {
            diagnostics.warning(reader.keyLocation("idle_refresh"), "idle_refresh is at most 29m (RFC 2177: servers may drop an IDLE after 30 minutes); 29m is used")
        }
        return InboundMailbox(
            name: reader.name,
            description: reader.string("description") ?? "",
            provider: provider,
            server: reader.string("server") ?? "",
            port: reader.integer("port") ?? provider.defaultPort,
            user: reader.string("user") ?? "",
            password: password ?? .inline(Secret("")),
            oauth: oauth,
            enabled: reader.booleanOrDefault("enabled"),
            idle: reader.booleanOrDefault("idle") && provider.family.canWaitForNews,
            idleRefresh: min(reader.durationOrDefault("idle_refresh"), .seconds(29 * 60)),
            folder: reader.stringOrDefault("folder"),
            afterFetch: reader.afterFetch("after_fetch") ?? reader.spec.defaultAfterFetch("after_fetch"),
            importExisting: ImportExisting(rawValue: reader.stringOrDefault("import_existing")) ?? .unseen,
            maxMessageSize: reader.sizeOrDefault("max_message_size"),
            starttls: reader.booleanOrDefault("starttls"),
            tls: readTLS(reader),
            timeout: reader.durationOrDefault("timeout"),
            // Until the daemon's own are known (the builder sets them when the mailbox has none).
            pollInterval: reader.duration("poll_interval") ?? ConfigSchema.daemon.defaultDuration("poll_interval"),
            alertAfter: reader.duration("alert_after") ?? ConfigSchema.daemon.defaultDuration("alert_after"),
            maxPollTime: reader.durationOrDefault("max_poll_time"),
            authservIDs: (reader.names("authserv_ids") ?? []).map { $0.lowercased() },
            senderVerification: SenderVerification(rawValue: reader.stringOrDefault("sender_verification")) ?? .flag,
            maxMessagesPerSender: reader.integerOrDefault("max_messages_per_sender"),
            maxMessagesPerDomain: reader.integerOrDefault("max_messages_per_domain"),
            floodWindow: reader.durationOrDefault("flood_window"),
            location: reader.table.location)
    }

    func readOutbound(_ reader: TableReader, diagnostics: inout DiagnosticList) -> OutboundMailbox {
        let mode = OutboundTLSMode(rawValue: reader.stringOrDefault("tls")) ?? .starttls
        let password = reader.secretSource(diagnostics: &diagnostics)
        let oauth = readOAuthLogin(reader, hasPassword: password != nil, diagnostics: &diagnostics)
        if oauth != nil, reader.boolean("auth") == false {
            diagnostics.error(reader.keyLocation("auth"), "`oauth` logs in with a token: auth = false contradicts it; remove one")
        }
        let sendsWith = OutboundProtocol(rawValue: reader.stringOrDefault("protocol")) ?? .smtp
        if sendsWith == .graph {
            if oauth == nil {
                diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs `oauth`: Microsoft Graph takes an OAuth 2.0 token, never a password")
            }
            if let key = ["password", "password_file", "password_env", "password_credential"].first(where: reader.has) {
                diagnostics.error(reader.keyLocation(key), "`\(key)`: Microsoft Graph takes no password; it sends with `oauth`")
            }
            if !reader.has("user") {
                diagnostics.error(reader.table.location, "[\(ConfigDocument.render(reader.table.path))] needs `user`: the mailbox that sends (and keeps each message in its Sent Items)")
            }
            if let key = ["tls", "oauth_mechanism"].first(where: reader.has) {
                diagnostics.warning(reader.keyLocation(key), "`\(key)` applies to SMTP; Microsoft Graph is HTTPS with a bearer token")
            }
        }
        return OutboundMailbox(
            name: reader.name,
            description: reader.string("description") ?? "",
            sendsWith: sendsWith,
            server: reader.string("server") ?? "",
            port: reader.integer("port") ?? (sendsWith == .graph ? 443 : mode.defaultPort),
            sender: reader.address("sender") ?? MailAddress(address: "invalid@invalid"),
            tlsMode: mode,
            auth: oauth != nil || reader.booleanOrDefault("auth"),
            user: reader.string("user"),
            password: password,
            oauth: oauth,
            maxAttachmentSize: reader.sizeOrDefault("max_attachment_size"),
            maxMessagesPerMinute: reader.integer("max_messages_per_minute"),
            maxRecipientsPerDay: reader.integer("max_recipients_per_day"),
            maxNotificationsPerRecipient: reader.integerOrDefault("max_notifications_per_recipient"),
            recipientWindow: reader.durationOrDefault("recipient_window"),
            tls: readTLS(reader),
            timeout: reader.durationOrDefault("timeout"),
            location: reader.table.location)
    }

    func readOAuthLogin(_ reader: TableReader, hasPassword: Bool, diagnostics: inout DiagnosticList) -> OAuthLogin? {
        guard let client = reader.string("oauth") else {
            if reader.has("oauth_mechanism") {
                diagnostics.warning(reader.keyLocation("oauth_mechanism"), "`oauth_mechanism` is ignored without `oauth`")
            }
            return nil
        }
        if hasPassword {
            let key = ["password", "password_file", "password_env", "password_credential"].first(where: reader.has) ?? "password"
            diagnostics.error(reader.keyLocation(key), "`\(key)` and `oauth` both say how to log in; keep one")
        }
        let mechanism = reader.string("oauth_mechanism").flatMap(OAuthMechanism.init(rawValue:)) ?? .xoauth2
        return OAuthLogin(client: client, mechanism: mechanism)
    }

    func readOAuthClient(_ reader: TableReader, diagnostics: inout DiagnosticList) -> OAuthClient {
        let here = "[\(ConfigDocument.render(reader.table.path))]"
        let provider = reader.string("provider").flatMap(OAuthClient.Provider.init(rawValue:)) ?? .custom
        let grant = reader.string("grant").flatMap(OAuthClient.Grant.init(rawValue:)) ?? .authorizationCode
        let secret = reader.secretSource("client_secret", diagnostics: &diagnostics)
        let key = reader.secretSource("service_account_key", diagnostics: &diagnostics)
        let tenant = reader.string("tenant")
        if provider == .microsoft, grant == .clientCredentials, tenant == nil || ["organizations", "common", "consumers"].contains(tenant ?? "") {
            diagnostics.error(reader.has("tenant") ? reader.keyLocation("tenant") : reader.table.location,
                              "\(here): app-only access (client_credentials) needs the tenant's own id or domain in `tenant`, such as \"contoso.onmicrosoft.com\"")
        }
        if provider != .microsoft, reader.has("tenant") {
            diagnostics.warning(reader.keyLocation("tenant"), "`tenant` applies to provider = \"microsoft\" only; it is ignored")
        }
        if provider == .google, grant == .clientCredentials {
            diagnostics.error(reader.keyLocation("grant"), "\(here): Google has no client credentials for mail; a service account with domain-wide delegation uses grant = \"jwt_bearer\"")
        }
        if provider == .microsoft, grant == .jwtBearer {
            diagnostics.error(reader.keyLocation("grant"), "\(here): jwt_bearer is for Google service accounts; Microsoft 365 app-only access uses grant = \"client_credentials\"")
        }
        // A certificate instead of a secret: its key signs a client assertion at each request.
        var certificate: ClientCertificate?
        let certificateKey = reader.secretSource("client_certificate_key", diagnostics: &diagnostics)
        if let file = reader.string("client_certificate_file") {
            if let secretKey = ["client_secret", "client_secret_file", "client_secret_env", "client_secret_credential"].first(where: reader.has) {
                diagnostics.error(reader.keyLocation(secretKey), "`\(secretKey)` and `client_certificate_file` both authenticate the client; keep one")
            }
            if grant == .jwtBearer {
                diagnostics.error(reader.keyLocation("client_certificate_file"), "\(here): jwt_bearer signs with the service account's key; a client certificate does not apply")
            }
            let algorithm = ClientCertificate.Algorithm(rawValue: reader.stringOrDefault("client_assertion_algorithm")) ?? .rs256
            certificate = ClientCertificate(file: file, key: certificateKey ?? .file(file), algorithm: algorithm)
        } else if let key = ["client_certificate_key_file", "client_certificate_key_credential", "client_assertion_algorithm"].first(where: reader.has) {
            diagnostics.warning(reader.keyLocation(key), "`\(key)` is unused without `client_certificate_file`")
        }
        if grant == .clientCredentials, secret == nil, certificate == nil {
            diagnostics.error(reader.table.location, "\(here): client_credentials needs the client secret or a certificate: set one of `client_secret_credential`, `client_secret_file`, `client_secret_env` or `client_secret`, or `client_certificate_file`")
        }
        if grant == .jwtBearer, key == nil {
            diagnostics.error(reader.table.location, "\(here): jwt_bearer needs the service account's JSON key: set `service_account_key_file` or `service_account_key_credential`")
        }
        if grant != .jwtBearer, !reader.has("client_id"), reader.has("provider") {
            diagnostics.error(reader.table.location, "\(here) needs `client_id`: the application (client) id it was registered with")
        }
        let preset = OAuthPreset.endpoints(provider, tenant: tenant ?? "organizations", grant: grant)
        let tokenURL = reader.string("token_url") ?? preset.token
        let authorizationURL = reader.string("authorization_url") ?? preset.authorization
        let deviceURL = reader.string("device_authorization_url") ?? preset.device
        if provider == .custom {
            if tokenURL == nil { diagnostics.error(reader.table.location, "\(here): provider = \"custom\" needs `token_url`") }
            if grant == .authorizationCode, authorizationURL == nil {
                diagnostics.error(reader.table.location, "\(here): grant = \"authorization_code\" needs `authorization_url` with provider = \"custom\"")
            }
            if grant == .deviceCode, deviceURL == nil {
                diagnostics.error(reader.table.location, "\(here): grant = \"device_code\" needs `device_authorization_url` with provider = \"custom\"")
            }
        }
        let lifetime = reader.duration("refresh_token_lifetime") ?? (provider == .microsoft && grant.isInteractive ? OAuthPreset.microsoftRefreshTokenLifetime : nil)
        return OAuthClient(
            name: reader.name, provider: provider, tenant: provider == .microsoft ? (tenant ?? "organizations") : nil,
            clientID: reader.string("client_id") ?? "", clientSecret: secret, grant: grant,
            authorizationURL: authorizationURL, deviceAuthorizationURL: deviceURL, tokenURL: tokenURL ?? "",
            scopes: reader.names("scopes") ?? preset.scopes, serviceAccountKey: key, refreshTokenLifetime: lifetime,
            expiryWarning: reader.durationOrDefault("expiry_warning"), redirectPort: reader.integerOrDefault("redirect_port"),
            tls: readTLS(reader), timeout: reader.durationOrDefault("timeout"), location: reader.table.location,
            certificate: certificate)
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
