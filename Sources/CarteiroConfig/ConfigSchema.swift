/// The one table that says which tables and keys exist, their types, defaults and meaning.
/// Parsing, validation, `check-config --reference` and the test that `etc/carteiro.conf`
/// documents every key all read it.
package enum ConfigSchema {
    package static let tables: [TableSpec] = [daemon, events, mailbox, oauth, contract, rule, user, group, workflow, step]

    /// Tables that only hold named tables (`[mailbox.NAME]`), never keys of their own.
    package static let containers: [[String]] = [["mailbox"], ["oauth"], ["contract"], ["rule"], ["user"], ["group"], ["workflow"], ["workflow", "*", "step"]]

    package static let daemon = TableSpec(pattern: ["daemon"], title: "[daemon]", doc: "Settings of the daemon as a whole.", keys: [
        KeySpec("system_outbound", .name, nil, "The system's default outbound mailbox: every workflow step sends through it unless told otherwise.", required: true),
        KeySpec("state_dir", .path, "$STATE_DIRECTORY, else /var/lib/carteiro (/var/lib/carteiro-NAME for an instance's NAME.conf)", "Where Carteiro keeps the event spool, the outbox, the queue and each mailbox's state. Nothing outside it is written."),
        KeySpec("poll_interval", .duration(minimumSeconds: 1), .duration(60), "How often an inbound mailbox is polled, unless the mailbox says otherwise."),
        KeySpec("max_parallel_polls", .integer(1...1024), .integer(8), "How many mailboxes are polled at the same time, at most."),
        KeySpec("alert_after", .duration(minimumSeconds: 0), .duration(15 * 60), "A mailbox failing for longer than this raises a mailbox.failing event (and mailbox.recovered when it works again)."),
        KeySpec("queue_lifetime", .duration(minimumSeconds: 60), .duration(5 * 86_400), "How long an outbound message is retried after temporary failures before it is given up."),
        KeySpec("keep_raw", .duration(minimumSeconds: 3600), .duration(90 * 86_400), "Raw messages older than this are removed, unless an event still waiting in the spool points at them."),
        KeySpec("keep_attachments", .duration(minimumSeconds: 3600), .duration(90 * 86_400), "Attachments older than this are removed, unless an event still waiting in the spool points at them (a reused one is as new as its latest message)."),
        KeySpec("keep_failed", .duration(minimumSeconds: 3600), .duration(30 * 86_400), "Given-up outbound messages in queue/failed/ older than this are removed."),
        KeySpec("hostname", .string, "the machine's host name", "The name Carteiro gives itself in EHLO and in the Message-IDs it makes."),
    ])

    package static let events = TableSpec(pattern: ["events"], title: "[events]", doc: "Where request events go.", keys: [
        KeySpec("spool", .path, "<state_dir>/events", "The folder where each event is written as one JSON file; the desk removes a file once it has taken it."),
        KeySpec("webhook", .url, "unset", "When set, each event is also POSTed here and removed from the spool on a 2xx answer, retried with backoff otherwise."),
        KeySpec("webhook_secret", .secret, "unset", "Signs each POST: header Carteiro-Signature: t=UNIX-TIME,v1=HEX, the HMAC-SHA-256 of \"UNIX-TIME.BODY\" with this secret. Prefer the _credential, _file or _env forms."),
        KeySpec("webhook_secret_file", .path, "unset", "Read the webhook's signing secret from this file (its first line; chmod 600)."),
        KeySpec("webhook_secret_env", .string, "unset", "Read the webhook's signing secret from this environment variable."),
        KeySpec("webhook_secret_credential", .string, "unset", "Read the webhook's signing secret from systemd's credential NAME."),
        KeySpec("webhook_token", .secret, "unset", "Sent with each POST as Authorization: Bearer TOKEN (also as _file, _env, _credential)."),
        KeySpec("webhook_token_file", .path, "unset", "Read the webhook's bearer token from this file."),
        KeySpec("webhook_token_env", .string, "unset", "Read the webhook's bearer token from this environment variable."),
        KeySpec("webhook_token_credential", .string, "unset", "Read the webhook's bearer token from systemd's credential NAME."),
        KeySpec("ca_file", .path, "unset", "Trust the CA certificates in this PEM file for the webhook, as well as the system's."),
        KeySpec("tls_verify", .boolean, .boolean(true), "Verify the webhook's certificate."),
        KeySpec("timeout", .duration(minimumSeconds: 1), .duration(30), "How long one POST may take."),
        KeySpec("inline_attachments", .size, .size(0, note: "never"), "Attachments up to this size in all go inside the POSTed event, base64 in content_base64, so a desk on another machine needs no shared folder."),
    ])

    package static let mailbox = TableSpec(pattern: ["mailbox", "*"], title: "[mailbox.NAME]", doc: "A mailbox: inbound (read by polling IMAP or POP3) or outbound (an SMTP profile to send through).", keys: [
        KeySpec("type", .choice(["inbound", "outbound"]), nil, "inbound: its new messages become request events; outbound: notifications are sent through it.", required: true),
        KeySpec("description", .string, "\"\"", "Free text for people: shown by check-config, status and test-mailbox."),
        KeySpec("server", .hostname, nil, "The mail server's host name or IP address.", required: true),
        KeySpec("port", .integer(1...65535), "by protocol: imaps 993, imap 143, pops 995, pop 110, graph 443; tls 465, starttls 587, none 25", "The server's port."),
        KeySpec("user", .string, "unset", "The login name (often the mailbox's address). Required for inbound mailboxes and for outbound ones with auth = true."),
        KeySpec("password", .secret, "unset", "The password, in the file itself. Prefer password_file, password_env or password_credential, so that the file holds no secret."),
        KeySpec("password_file", .path, "unset", "Read the password from this file (its first line). Keep it readable by Carteiro alone (chmod 600)."),
        KeySpec("password_env", .string, "unset", "Read the password from this environment variable."),
        KeySpec("password_credential", .string, "unset", "Read the password from systemd's credential NAME: $CREDENTIALS_DIRECTORY/NAME under the unit, loaded by LoadCredential=NAME:/etc/carteiro/credentials/NAME (check-config --units prints the lines); outside it, credentials/NAME beside the configuration file."),
        KeySpec("ca_file", .path, "unset", "Trust the CA certificates in this PEM file as well as the system's, for a server with a private CA."),
        KeySpec("tls_verify", .boolean, .boolean(true), "Verify the server's certificate and name. false is an explicit, logged opt-out for a lab."),
        KeySpec("timeout", .duration(minimumSeconds: 1), .duration(30), "How long to wait for the server to connect or answer before the attempt counts as failed."),
        KeySpec("oauth", .name, "unset", "Log in with OAuth 2.0 instead of a password: the [oauth.NAME] client whose tokens this mailbox uses (then no password key). `user` is the mailbox's address."),
        KeySpec("oauth_mechanism", .choice(["xoauth2", "oauthbearer"]), "xoauth2", "The SASL mechanism that carries the token: XOAUTH2 (Microsoft, Google) or OAUTHBEARER (RFC 7628)."),
        // Inbound only.
        KeySpec("provider", .choice(["imaps", "imap", "pops", "pop", "graph"]), nil, "imaps, pops: implicit TLS; imap, pop: STARTTLS (demanded unless starttls = false); graph: Microsoft Graph over HTTPS (server = \"graph.microsoft.com\", an OAuth client with Graph's scope, user = the mailbox's address, a user's or a shared one).", scope: .inbound, required: true),
        KeySpec("folder", .string, .text("INBOX"), "The IMAP folder to read. POP3 has only the inbox. graph: a well-known name (inbox, archive …, whatever the mailbox's language) or a path of folder names (Inbox/Support).", scope: .inbound),
        KeySpec("idle", .boolean, .boolean(true), "IMAP: keep a connection in IDLE (RFC 2177) when the server offers it, so new mail becomes an event within seconds; poll_interval still runs as a safety net. false: poll only.", scope: .inbound),
        KeySpec("idle_refresh", .duration(minimumSeconds: 30), .duration(10 * 60), "IMAP IDLE is ended and begun again this often (at most 29 minutes, RFC 2177): a dead or silent connection is noticed within this plus timeout.", scope: .inbound),
        KeySpec("enabled", .boolean, .boolean(true), "false keeps the mailbox configured but idle: it is not polled (status says so), its state stays.", scope: .inbound),
        KeySpec("after_fetch", .afterFetch, .value(.afterFetch(.keep)), "What happens on the server once a message's event is safely on disk: keep, seen (IMAP), delete, or move:FOLDER (IMAP).", scope: .inbound),
        KeySpec("import_existing", .choice(["unseen", "all", "none"]), .text("unseen"), "What the first poll takes: the unseen messages, all of them, or none (start from now).", scope: .inbound),
        KeySpec("max_message_size", .size, .size(25 << 20), "A larger message is not downloaded: its event carries the headers and the flag oversize.", scope: .inbound),
        KeySpec("authserv_ids", .strings, "none", "The receiving servers whose Authentication-Results (RFC 8601) this mailbox trusts, by their authserv-id (the first word of the field, usually the server's host name, such as \"mx.acme.example\"). Their SPF, DKIM and DMARC results say whether the From: address is really the sender's; without any, every sender is unknown.", scope: .inbound),
        KeySpec("max_messages_per_sender", .integer(0...1_000_000), .integer(30), "Flood limit: past this many messages from one address within flood_window, each further one is handed on flagged flood, and one sender.flooding event names the address (once per window). Stops an autoresponder that does not say it is one. 0: no limit.", scope: .inbound),
        KeySpec("max_messages_per_domain", .integer(0...1_000_000), .integer(300), "The same for all the addresses of one domain together. 0: no limit.", scope: .inbound),
        KeySpec("flood_window", .duration(minimumSeconds: 60), .duration(3600), "The window the flood limits count in; counts survive restarts.", scope: .inbound),
        KeySpec("sender_verification", .choice(["flag", "quarantine", "off"]), .text("flag"), "What a forged-looking sender (DMARC fail, or SPF fail for the author's own domain with no DKIM of it) means: flag (handed on, flagged unverified-sender), quarantine (held until someone releases it: carteiro quarantine), or off (handed on as it is).", scope: .inbound),
        KeySpec("starttls", .boolean, .boolean(true), "imap and pop only: demand STARTTLS. false allows a plain-text session (and is logged as a warning).", scope: .inbound),
        KeySpec("poll_interval", .duration(minimumSeconds: 1), "[daemon] poll_interval", "How often this mailbox is polled.", scope: .inbound),
        KeySpec("alert_after", .duration(minimumSeconds: 0), "[daemon] alert_after", "How long this mailbox may fail before mailbox.failing is raised.", scope: .inbound),
        KeySpec("max_poll_time", .duration(minimumSeconds: 10), .duration(10 * 60), "The longest one poll may take, however slowly the server sends: a server that trickles cannot hold a polling slot for longer. What was handed on by then stays handed on; the next poll goes on from there.", scope: .inbound),
        // Outbound only.
        KeySpec("protocol", .choice(["smtp", "graph"]), .text("smtp"), "smtp: SMTP submission (tls, auth, user and a password or oauth); graph: Microsoft Graph's sendMail over HTTPS, for a Microsoft 365 tenant without SMTP AUTH (server = \"graph.microsoft.com\", oauth with Graph's scope, user = the sending mailbox, a user's or a shared one, whose Sent Items keep each message).", scope: .outbound),
        KeySpec("sender", .address, nil, "The name and address recipients see in From, such as \"ACME Service Desk <support@acme.example>\".", scope: .outbound, required: true),
        KeySpec("tls", .choice(["none", "starttls", "tls"]), .text("starttls"), "none: plain text; starttls: STARTTLS demanded, never a fall-back; tls: implicit TLS (port 465).", scope: .outbound),
        KeySpec("auth", .boolean, .boolean(false), "Log in before sending (then user and a password source are required).", scope: .outbound),
        KeySpec("max_messages_per_minute", .integer(1...100_000), "unset (no limit)", "At most this many messages a minute through this mailbox (Microsoft 365: 30). More wait their turn; none fails for it.", scope: .outbound),
        KeySpec("max_recipients_per_day", .integer(1...10_000_000), "unset (no limit)", "At most this many recipients a day (Microsoft 365: 10000). Counted across restarts; more wait.", scope: .outbound),
        KeySpec("max_notifications_per_recipient", .integer(0...1_000_000), .integer(20), "At most this many notifications to one address within recipient_window: more wait for the window to end (none is lost; the others of the message go), and one recipient.flooding event tells the desk (once per window). Stops the desk answering an autoresponder for ever. 0: no limit.", scope: .outbound),
        KeySpec("recipient_window", .duration(minimumSeconds: 60), .duration(3600), "The window max_notifications_per_recipient counts in; counts survive restarts.", scope: .outbound),
        KeySpec("max_attachment_size", .size, .size(25 << 20), "The most a notification's attachments may hold together (before encoding); a submission with more is rejected.", scope: .outbound),
    ])

    package static let oauth = TableSpec(pattern: ["oauth", "*"], title: "[oauth.NAME]", doc: "An OAuth 2.0 client (an application registered at Microsoft Entra, Google Cloud or another authorization server), shared by the mailboxes that name it with oauth = \"NAME\". Tokens are kept per client and mailbox user in the state directory.", keys: [
        KeySpec("provider", .choice(["microsoft", "google", "custom"]), nil, "microsoft and google fill in the endpoints and scopes; custom names them (token_url, and authorization_url or device_authorization_url for their grants).", required: true),
        KeySpec("tenant", .string, "organizations (client_credentials: required)", "microsoft: the directory (tenant) id or domain, such as \"contoso.onmicrosoft.com\"."),
        KeySpec("client_id", .string, "jwt_bearer: the key's client_email", "The application (client) id."),
        KeySpec("client_secret", .secret, "unset", "The client secret, in the file itself (prefer the _credential, _file or _env forms). Public clients (device code, PKCE without a secret) have none."),
        KeySpec("client_secret_file", .path, "unset", "Read the client secret from this file (its first line; chmod 600)."),
        KeySpec("client_secret_env", .string, "unset", "Read the client secret from this environment variable."),
        KeySpec("client_secret_credential", .string, "unset", "Read the client secret from systemd's credential NAME (as password_credential)."),
        KeySpec("client_certificate_file", .path, "unset", "Authenticate the client with a certificate instead of a secret (Microsoft Entra's certificate credentials): this PEM certificate, whose key signs a client assertion at each token request (aud the token URL, iss and sub the client id, a jti, five minutes of life). Upload the certificate (not the key) to the app registration."),
        KeySpec("client_certificate_key_file", .path, "client_certificate_file", "The certificate's PEM private key (chmod 600), when it is not in client_certificate_file."),
        KeySpec("client_certificate_key_credential", .string, "unset", "The certificate's PEM private key as systemd's credential NAME."),
        KeySpec("client_assertion_algorithm", .choice(ClientCertificate.Algorithm.allCases.map(\.rawValue)), .text("RS256"), "RS256 (the header names the certificate by x5t, its SHA-1 thumbprint) or PS256 (RSASSA-PSS, named by x5t#S256, its SHA-256 thumbprint)."),
        KeySpec("grant", .choice(OAuthClient.Grant.allCases.map(\.rawValue)), "authorization_code", "How tokens are obtained: authorization_code (a person consents once in a browser: carteiro authorize MAILBOX), device_code (the same with a code typed on another device: carteiro authorize MAILBOX --device), client_credentials (Microsoft 365 app-only, no person), jwt_bearer (a Google service account with domain-wide delegation). Refresh tokens follow the first two."),
        KeySpec("authorization_url", .url, "by provider", "The authorization endpoint (authorization_code)."),
        KeySpec("device_authorization_url", .url, "by provider", "The device authorization endpoint (device_code)."),
        KeySpec("token_url", .url, "by provider", "The token endpoint."),
        KeySpec("scopes", .strings, "by provider and grant", "The scopes asked for. microsoft: the IMAP, POP and SMTP scopes and offline_access, or https://outlook.office365.com/.default for client_credentials; google: https://mail.google.com/."),
        KeySpec("service_account_key_file", .path, "unset", "jwt_bearer: the service account's JSON key file (chmod 600); its RS256 key signs the assertions, for the mailbox's user."),
        KeySpec("service_account_key_credential", .string, "unset", "jwt_bearer: the JSON key as systemd's credential NAME."),
        KeySpec("refresh_token_lifetime", .duration(minimumSeconds: 60), "microsoft: 90d; otherwise unset", "How long a refresh token lives without use, where the provider says (Google: 7d for apps in testing). Carteiro alerts before it runs out."),
        KeySpec("expiry_warning", .duration(minimumSeconds: 0), .duration(7 * 86_400), "How long before a refresh token or its authorization runs out a mailbox.expiring event and journal entry are raised."),
        KeySpec("redirect_port", .integer(0...65535), .integer(0, note: "any free port"), "The loopback port carteiro authorize receives the redirect on (http://127.0.0.1:PORT/); register that redirect URI with the application."),
        KeySpec("ca_file", .path, "unset", "Trust the CA certificates in this PEM file for the token endpoint, as well as the system's."),
        KeySpec("tls_verify", .boolean, .boolean(true), "Verify the token endpoint's certificate."),
        KeySpec("timeout", .duration(minimumSeconds: 1), .duration(30), "How long to wait for the token endpoint."),
    ])

    package static let contract = TableSpec(pattern: ["contract", "*"], title: "[contract.NAME]", doc: "A customer agreement: it owns the requests that arrive in its inbound mailboxes and answers through its outbound mailbox.", keys: [
        KeySpec("name", .string, "the table's NAME", "The contract's name for people."),
        KeySpec("outbound_mailbox", .name, "unset: the system outbound mailbox", "The outbound mailbox that steps with mailbox = \"contract\" send through."),
        KeySpec("inbound_mailboxes", .names, "[]", "The inbound mailboxes whose messages become this contract's requests. A mailbox belongs to one contract at most."),
        KeySpec("signature", .template, "unset", "Appended, after a blank line, to the text of every notification of this contract (a template, like the steps'): the customer's own signature or legal footer."),
        KeySpec("signature_html", .template, "unset", "Appended to the HTML of every notification of this contract that has HTML."),
    ])

    package static let rule = TableSpec(pattern: ["rule", "*"], title: "[rule.NAME]", doc: "A routing rule for inbound messages. Rules are evaluated in the order the file lists them; each one whose scope holds the message's mailbox and whose conditions all hold applies (later ones win a contract, priority or queue; tags add up), until one that drops the message or says stop. Case is ignored in every comparison unless case_sensitive = true.", keys: [
        KeySpec("mailboxes", .names, "[] (with contracts = []: every inbound mailbox)", "The inbound mailboxes the rule applies to."),
        KeySpec("contracts", .names, "[]", "The rule also applies to the inbound mailboxes of these contracts."),
        KeySpec("header", .string, "unset", "A header field to test, such as \"Subject\" or \"X-Priority\" (the name's case does not matter), with one of equals, glob or regex. Its value is tested decoded (RFC 2047) and unfolded, each field of that name in turn, at most \(RoutingLimits.fieldsPerName) of them and the first \(RoutingLimits.valueLength) characters of each. Address fields (From, To, Cc, Reply-To, Sender, Delivered-To …) are tested address by address."),
        KeySpec("equals", .string, "unset", "The header's whole value. In an address field: the address, where support@acme.example also matches support+anything@acme.example (a plus-address extension) and support+billing@acme.example that extension only."),
        KeySpec("glob", .string, "unset", "A glob over the header's whole value: * any run of characters, ? one, \\ before either takes it literally. In an address field, over each address: \"*@acme.example\", \"support+*@acme.example\". glob = \"*\" tests that the field is there."),
        KeySpec("regex", .string, "unset", "A regular expression found anywhere in the header's value (anchor with ^ and $): literals, ., [classes], \\d \\w \\s and their negations, groups, |, *, +, ?, {n,m}. No back-references or look-around: the engine (a Pike VM) takes time in proportion to the text, whatever the pattern. Write it as a literal string ('…') to keep backslashes as they are."),
        KeySpec("case_sensitive", .boolean, .boolean(false), "Compare header values with their case (addresses are always compared without)."),
        KeySpec("from", .string, "unset", "The From: address must be this (matched as an address, plus-address extensions as in equals) or match this glob."),
        KeySpec("to", .string, "unset", "One of the recipients (To, Cc, Delivered-To, X-Original-To) must be this address or match this glob: routes support+billing@ apart from support@."),
        KeySpec("verdict", .strings, "any", "The sender authentication verdicts that match: any of pass, fail, none, unknown (unknown also for a mailbox without authserv_ids)."),
        KeySpec("set_contract", .name, "unset", "The event's contract becomes this one ([contract.NAME]): its requests, its threading, its replies."),
        KeySpec("add_tags", .strings, "[]", "Tags the event carries (routing.tags), for the desk's own rules."),
        KeySpec("set_priority", .choice(RoutingRule.priorities), "unset", "The priority the event carries (routing.priority)."),
        KeySpec("set_queue", .string, "unset", "The queue or group of the desk the event is for (routing.queue)."),
        KeySpec("drop", .string, "unset", "Drop the message, with this reason: no event is written; the message stays on the server whatever after_fetch says, the journal says which rule dropped it, and status counts it. Other actions are not allowed beside it."),
        KeySpec("stop", .boolean, .boolean(false), "After this rule matches, no later rule is evaluated."),
    ])

    package static let user = TableSpec(pattern: ["user", "*"], title: "[user.NAME]", doc: "A person that workflow steps can send to.", keys: [
        KeySpec("name", .string, "the table's NAME", "The person's name, as in \"Ana Souza\"."),
        KeySpec("email", .email, nil, "The person's e-mail address.", required: true),
    ])

    package static let group = TableSpec(pattern: ["group", "*"], title: "[group.NAME]", doc: "A set of users that workflow steps can send to.", keys: [
        KeySpec("name", .string, "the table's NAME", "The group's name for people."),
        KeySpec("members", .names, "[]", "The users in the group, by their [user.NAME]."),
    ])

    package static let workflow = TableSpec(pattern: ["workflow", "*"], title: "[workflow.NAME]", doc: "A workflow of the service desk; its e-mail steps are [workflow.NAME.step.STEP].", keys: [
        KeySpec("description", .string, "\"\"", "Free text for people."),
    ])

    package static let step = TableSpec(pattern: ["workflow", "*", "step", "*"], title: "[workflow.NAME.step.STEP]", doc: "A \"send message — e-mail\" step of a workflow.", keys: [
        KeySpec("mailbox", .choice(["contract", "specific"]), "unset: the system outbound mailbox", "contract: the request's contract's outbound mailbox (the system's if the contract has none); specific: specific_mailbox."),
        KeySpec("specific_mailbox", .name, "unset", "The outbound mailbox used when mailbox = \"specific\"."),
        KeySpec("to_users", .names, "[]", "Users who receive the message."),
        KeySpec("to_groups", .names, "[]", "Groups whose members receive the message."),
        KeySpec("subject", .template, nil, "The subject template (Mustache: {{request.subject}}, {{recipient.name}} …).", required: true),
        KeySpec("body", .template, nil, "The plain-text body template.", required: true),
        KeySpec("html", .template, "unset", "An HTML body template; with it the message is multipart/alternative."),
    ])

    /// The spec of a table path, `*` matching any name.
    package static func spec(for path: [String]) -> TableSpec? {
        tables.first { $0.matches(path) }
    }

    package static func isContainer(_ path: [String]) -> Bool {
        containers.contains { TableSpec.match(pattern: $0, path: path) }
    }

    /// The first names of every known table, for "did you mean" on an unknown one.
    package static var tableNames: [String] { Array(Set(tables.map { $0.pattern[0] })).sorted() }
}

package struct TableSpec: Sendable {
    package let pattern: [String]
    package let title: String
    package let doc: String
    package let keys: [KeySpec]

    package func key(_ name: String) -> KeySpec? { keys.first { $0.key == name } }

    package func matches(_ path: [String]) -> Bool { Self.match(pattern: pattern, path: path) }

    static func match(pattern: [String], path: [String]) -> Bool {
        pattern.count == path.count && zip(pattern, path).allSatisfy { $0 == "*" || $0 == $1 }
    }
}

package struct KeySpec: Sendable {
    /// Which kind of mailbox a mailbox key applies to.
    package enum Scope: Sendable { case always, inbound, outbound }

    package let key: String
    package let type: ConfigType
    /// What an absent key means; nil when the key is required or has none.
    package let defaultValue: ConfigDefault?
    package let doc: String
    package let scope: Scope
    package let required: Bool

    init(_ key: String, _ type: ConfigType, _ defaultValue: ConfigDefault?, _ doc: String, scope: Scope = .always, required: Bool = false) {
        self.key = key
        self.type = type
        self.defaultValue = defaultValue
        self.doc = doc
        self.scope = scope
        self.required = required
    }

    /// The default as the reference and the man page show it.
    package var defaultDescription: String? { defaultValue?.description }
}

/// A key's default: a value, which the builder takes when the key is absent and the reference
/// renders (declared once, here), or words for a default that depends on something else (the
/// protocol, another key, the machine).
package enum ConfigDefault: Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    case value(TypedValue, note: String? = nil)
    case words(String)

    package init(stringLiteral words: String) { self = .words(words) }

    static func duration(_ seconds: Int64) -> ConfigDefault { .value(.duration(.seconds(seconds))) }
    static func integer(_ number: Int, note: String? = nil) -> ConfigDefault { .value(.integer(number), note: note) }
    static func size(_ bytes: Int, note: String? = nil) -> ConfigDefault { .value(.size(bytes), note: note) }
    static func boolean(_ flag: Bool) -> ConfigDefault { .value(.boolean(flag)) }
    static func text(_ text: String) -> ConfigDefault { .value(.string(text)) }

    package var description: String {
        switch self {
        case .words(let words): return words
        case .value(let value, let note):
            let shown: String = switch value {
            case .duration(let duration): ConfigDuration.format(duration)
            case .size(let bytes): bytes == 0 ? "0" : ConfigSize.format(bytes)
            case .integer(let number): String(number)
            case .boolean(let flag): flag ? "true" : "false"
            case .string(let text): text
            case .afterFetch(let afterFetch): afterFetch.description
            case .names(let names): names.joined(separator: ", ")
            case .address(let address): address.description
            }
            return note.map { "\(shown) (\($0))" } ?? shown
        }
    }

    /// The value, when the default is one.
    var typed: TypedValue? {
        if case .value(let value, _) = self { return value }
        return nil
    }
}

/// What a key's value must be, as the schema reads it.
package enum ConfigType: Sendable {
    case string
    case hostname
    case path
    case url
    case secret
    case template
    /// A reference to another table by its NAME.
    case name
    case names
    case strings
    case integer(ClosedRange<Int>)
    case boolean
    case duration(minimumSeconds: Int)
    case size
    case choice([String])
    case afterFetch
    case address
    case email

    /// How the expected value is described in an error.
    package var expectation: String {
        switch self {
        case .string, .secret, .template: "a string"
        case .hostname: "a host name or IP address in quotes"
        case .path: "a path in quotes"
        case .url: "a URL in quotes, such as \"https://desk.example/api/mail-events\""
        case .name: "a name in quotes"
        case .names: "an array of names, such as [\"a\", \"b\"]"
        case .strings: "an array of strings, such as [\"a\", \"b\"]"
        case .integer(let range): "an integer from \(range.lowerBound) to \(range.upperBound)"
        case .boolean: "true or false"
        case .duration(let minimum) where minimum > 0: "a duration such as \"30s\", \"5m\", \"1h\" or \"2d\", at least \(ConfigDuration.format(.seconds(minimum)))"
        case .duration: "a duration such as \"30s\", \"5m\", \"1h\" or \"2d\""
        case .size: "a size such as \"512KB\", \"25MB\" or \"1GB\""
        case .choice(let values): "one of " + values.map { "\"\($0)\"" }.joined(separator: ", ")
        case .afterFetch: "\"keep\", \"seen\", \"delete\" or \"move:FOLDER\""
        case .address: "an address such as \"ACME Service Desk <support@acme.example>\""
        case .email: "an e-mail address such as \"ana@example.com\""
        }
    }
}
