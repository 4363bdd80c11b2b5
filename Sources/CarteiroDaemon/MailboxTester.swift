import Foundation
import CarteiroConfig
import CarteiroCurl
import CarteiroMail
import CarteiroOAuth

/// `carteiro test-mailbox NAME`: connect, negotiate TLS, authenticate, and open the folder
/// (inbound) or greet the SMTP server (outbound), saying at each step what happened.
package struct MailboxTester {
    package enum Failure: Error, CustomStringConvertible {
        /// The configuration cannot say how to reach the mailbox (unknown name, unreadable secret).
        case configuration(String)
        case connection(MailConnectionError)

        package var description: String {
            switch self {
            case .configuration(let text): text
            case .connection(let error): error.description
            }
        }
    }

    let configuration: Configuration
    let secrets: SecretResolver
    /// Receives each finding as soon as it is known, so a slow server shows where it hangs.
    let report: (String) -> Void

    let broker: TokenBroker

    package init(configuration: Configuration, secrets: SecretResolver, broker: TokenBroker? = nil, report: @escaping (String) -> Void) {
        self.configuration = configuration
        self.secrets = secrets
        self.broker = broker ?? TokenBroker(stateDirectory: configuration.daemon.stateDirectory, clients: configuration.oauthClients, secrets: secrets)
        self.report = report
    }

    /// OAuth's part of the chain, step by step: the client, the token endpoint and its grant,
    /// the token; then the caller logs in with it over the mechanism.
    func oauthCredentials(_ login: OAuthLogin, user: String, mailbox: String) throws(Failure) -> MailSession.Credentials {
        guard let client = configuration.oauthClient(login.client) else { throw .configuration("there is no [oauth.\(login.client)]") }
        report("  OAuth: client \(client.name) (\(client.provider.rawValue), grant \(client.grant.rawValue)), token endpoint \(client.tokenURL)")
        switch broker.accessToken(client: client.name, user: user) {
        case .success(let token):
            let record = broker.status(client: client.name, user: user)?.record
            let left = (record?.accessExpiresAt ?? 0) - Int64(Date().timeIntervalSince1970)
            let refreshed = record?.lastRefreshAt.map { " (obtained \(max(Int64(Date().timeIntervalSince1970) - $0, 0))s ago)" } ?? ""
            report("  access token for \(user): valid for \(max(left, 0))s more\(refreshed)")
            return .init(user: user, password: token, bearer: login.mechanism)
        case .failure(let failure):
            let step = switch failure {
            case .needsAuthorization: "authorization"
            case .configuration: "the token request"
            case .transient: "the token endpoint"
            }
            throw .configuration("  failed at \(step): \(MailboxLogin.explain(failure, mailbox: mailbox))")
        }
    }

    package func test(_ name: String) -> Result<Void, Failure> {
        if let mailbox = configuration.inbound(name) {
            return Result { () throws(Failure) in try testInbound(mailbox) }
        }
        if let mailbox = configuration.outbound(name) {
            return Result { () throws(Failure) in try testOutbound(mailbox) }
        }
        let names = configuration.inboundMailboxes.map(\.name) + configuration.outboundMailboxes.map(\.name)
        return .failure(.configuration("there is no mailbox named \"\(name)\"" + NearestName.hint(name, among: names, quote: { "\"\($0)\"" }) + " (mailboxes: \(names.joined(separator: ", ")))"))
    }

    func password(_ source: SecretSource, mailbox: String) throws(Failure) -> Secret {
        switch secrets.resolve(source) {
        case .success(let secret): return secret
        case .failure(let failure): throw .configuration("mailbox \"\(mailbox)\": \(failure)")
        }
    }

    func describeTLS(_ endpoint: MailEndpoint, session: MailSession) -> String {
        guard endpoint.security != .plain else { return "in plain text (tls = \"none\")" }
        guard let negotiated = session.tlsDescription else {
            return "in PLAIN TEXT: the server offers no STARTTLS and starttls = false allows it"
        }
        var text = "with \(endpoint.securityDescription) (\(negotiated))"
        if !endpoint.tls.verify {
            text += ", certificate NOT verified (tls_verify = false)"
        } else if let ca = endpoint.tls.caFile {
            text += ", certificate verified (trusting \(ca) as well as the system's CAs)"
        } else {
            text += ", certificate verified"
        }
        return text
    }

    func testInbound(_ mailbox: InboundMailbox) throws(Failure) {
        let endpoint = MailEndpoint(mailbox)
        report("mailbox \(mailbox.name)\(mailbox.description.isEmpty ? "" : " (\(mailbox.description))"): inbound \(mailbox.provider.rawValue), \(mailbox.server) port \(mailbox.port), user \(mailbox.user)")
        let credentials: MailSession.Credentials
        if let oauth = mailbox.oauth {
            credentials = try oauthCredentials(oauth, user: mailbox.user, mailbox: mailbox.name)
        } else {
            credentials = .init(user: mailbox.user, password: try password(mailbox.password, mailbox: mailbox.name))
        }
        let secret = credentials.password
        if mailbox.provider.family == .graph {
            return try testGraph(mailbox, token: secret)
        }
        let session: MailSession
        do {
            session = try MailSession.open(endpoint, credentials: credentials)
        } catch {
            if error.kind == .loginRejected, let oauth = mailbox.oauth { broker.refused(client: oauth.client, user: mailbox.user, token: secret) }
            throw .connection(error)
        }
        report("  connected to \(endpoint) \(describeTLS(endpoint, session: session))")
        report("  logged in as \(mailbox.user)" + (credentials.bearer.map { " with \($0.saslName)" } ?? ""))
        do {
            switch mailbox.provider.family {
            case .imap: try checkIMAPFolder(IMAPClient(session: session), mailbox: mailbox)
            case .pop3: try checkPOP3(POP3Client(session: session))
            case .graph: break
            }
        } catch {
            throw .connection(error.redacting(secret, user: mailbox.user))
        }
    }

    /// Graph, step by step: the token (already had), the mailbox, the folder, and what
    /// after_fetch needs; each failure names its step.
    func testGraph(_ mailbox: InboundMailbox, token: Secret) throws(Failure) {
        let base = GraphAPI.base(server: mailbox.server, port: mailbox.port)
        report("  token: obtained from oauth client \"\(mailbox.oauth?.client ?? "")\"")
        let api = GraphAPI(base: base, user: mailbox.user, token: token, tls: mailbox.tls, timeout: mailbox.timeout,
                           deadline: ContinuousClock.now + mailbox.timeout * 4)
        func step(_ name: String, _ body: () throws(GraphAPI.Failure) -> Void) throws(Failure) {
            do throws(GraphAPI.Failure) {
                try body()
            } catch {
                if error.status == 401, let oauth = mailbox.oauth { broker.refused(client: oauth.client, user: mailbox.user, token: token) }
                var failure = error.connectionError
                failure.message = "\(name): " + failure.message
                failure.endpoint = base
                throw .connection(failure.redacting(token, user: nil))
            }
        }
        try step("mailbox \(mailbox.user)") { () throws(GraphAPI.Failure) in
            let top = try api.childFolders(of: nil)
            report("  mailbox \(mailbox.user) at \(base): reachable, \(top.count) top-level folders")
        }
        try step("folder \"\(mailbox.folder)\"") { () throws(GraphAPI.Failure) in
            let id = try api.folderID(mailbox.folder)
            report("  folder \"\(mailbox.folder)\": found (id \(id.prefix(16))…)")
        }
        if case .move(let target) = mailbox.afterFetch {
            try step("after_fetch target \"\(target)\"") { () throws(GraphAPI.Failure) in
                _ = try api.folderID(target)
                report("  after_fetch: move to \"\(target)\" (found; moving needs Mail.ReadWrite)")
            }
        } else if mailbox.afterFetch != .keep {
            report("  after_fetch: \(mailbox.afterFetch) (needs Mail.ReadWrite; a refusal shows at the first poll)")
        }
    }

    func checkIMAPFolder(_ client: IMAPClient, mailbox: InboundMailbox) throws(MailConnectionError) {
        let encoded = IMAPMailboxName.encode(mailbox.folder)
        guard let quoted = IMAPString.quoted(encoded) else {
            throw MailConnectionError(.folderMissing, endpoint: client.session.endpoint.description, message: "the folder name \"\(mailbox.folder)\" cannot be sent to the server")
        }
        let examine = try client.run("EXAMINE \(quoted)")
        guard examine.isOK else {
            var hint = ""
            if let list = try? client.run("LIST \"\" \"*\""), list.isOK {
                let folders = list.untagged.compactMap(IMAPResponseText.listedMailbox).map { IMAPMailboxName.decode($0) ?? $0 }
                if !folders.isEmpty {
                    hint = "; the server has: " + folders.prefix(20).joined(separator: ", ") + NearestName.hint(mailbox.folder, among: folders, quote: { "\"\($0)\"" })
                }
            }
            client.logout()
            throw MailConnectionError(.folderMissing, endpoint: client.session.endpoint.description,
                                      message: "the folder \"\(mailbox.folder)\" cannot be opened on \(client.session.endpoint)\(hint)",
                                      serverReply: "\(examine.tag) \(examine.status) \(examine.text)")
        }
        var exists = 0
        var uidValidity = "?", uidNext = "?"
        for line in examine.untagged {
            if let n = IMAPResponseText.count(line, keyword: "EXISTS") { exists = n }
            if let code = IMAPResponseText.responseCode(line) {
                if code.name == "UIDVALIDITY" { uidValidity = code.argument }
                if code.name == "UIDNEXT" { uidNext = code.argument }
            }
        }
        var unseen = ""
        if exists > 0, let search = try? client.run("UID SEARCH UNSEEN"), search.isOK {
            let count = search.untagged.compactMap(IMAPResponseText.searchResults).reduce(0) { count, result in
                if case .uids(let uids) = result { count + uids.count } else { count }
            }
            unseen = ", \(count) unseen"
        }
        report("  folder \(mailbox.folder): \(exists) message\(exists == 1 ? "" : "s")\(unseen); UIDVALIDITY \(uidValidity), next UID \(uidNext)")
        if case .move(let target) = mailbox.afterFetch, let quotedTarget = IMAPString.quoted(IMAPMailboxName.encode(target)) {
            let status = try client.run("STATUS \(quotedTarget) (MESSAGES)")
            if !status.isOK {
                client.logout()
                throw MailConnectionError(.folderMissing, endpoint: client.session.endpoint.description,
                                          message: "after_fetch moves messages to \"\(target)\", which does not exist on the server; create it or change after_fetch",
                                          serverReply: "\(status.tag) \(status.status) \(status.text)")
            }
            report("  after_fetch target folder \(target) exists")
        }
        client.logout()
    }

    func checkPOP3(_ client: POP3Client) throws(MailConnectionError) {
        let stat = try client.run("STAT")
        let parts = stat.split(separator: " ")
        let count = parts.first.flatMap { Int($0) } ?? 0
        let size = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        report("  mailbox holds \(count) message\(count == 1 ? "" : "s") (\(size) bytes)")
        let capabilities = (try? client.runMultiline("CAPA")) ?? []
        if capabilities.contains(where: { $0.uppercased().hasPrefix("UIDL") }) {
            report("  the server offers UIDL: messages are tracked without deleting them")
        } else {
            report("  the server does not list UIDL among its capabilities: only after_fetch = \"delete\" will work")
        }
        try client.quit()
    }

    func testOutbound(_ mailbox: OutboundMailbox) throws(Failure) {
        if mailbox.sendsWith == .graph, let oauth = mailbox.oauth, let user = mailbox.user {
            report("mailbox \(mailbox.name)\(mailbox.description.isEmpty ? "" : " (\(mailbox.description))"): outbound Microsoft Graph sendMail, \(mailbox.server) port \(mailbox.port), as \(user), sender \(mailbox.sender)")
            let token = try oauthCredentials(oauth, user: user, mailbox: mailbox.name).password
            report("  token: obtained from oauth client \"\(oauth.client)\"")
            let base = GraphAPI.base(server: mailbox.server, port: mailbox.port)
            let api = GraphAPI(base: base, user: user, token: token, tls: mailbox.tls, timeout: mailbox.timeout,
                               deadline: ContinuousClock.now + mailbox.timeout * 4)
            do throws(GraphAPI.Failure) {
                let id = try api.folderID("sentitems")
                report("  mailbox \(user): reachable; its Sent Items (\(id.prefix(16))…) keep what is sent")
                report("  sending needs Mail.Send: Graph has no way to check it without sending, so a refusal shows at the first message (and in its delivery.failed)")
            } catch {
                if error.status == 401 { broker.refused(client: oauth.client, user: user, token: token) }
                var failure = error.connectionError
                failure.message = "mailbox \(user): " + failure.message
                failure.endpoint = base
                throw .connection(failure.redacting(token, user: nil))
            }
            return
        }
        let endpoint = MailEndpoint(mailbox)
        report("mailbox \(mailbox.name)\(mailbox.description.isEmpty ? "" : " (\(mailbox.description))"): outbound SMTP (\(mailbox.tlsMode.rawValue)), \(mailbox.server) port \(mailbox.port), sender \(mailbox.sender)")
        var credentials: MailSession.Credentials?
        if let oauth = mailbox.oauth, let user = mailbox.user {
            credentials = try oauthCredentials(oauth, user: user, mailbox: mailbox.name)
        } else if mailbox.auth, let user = mailbox.user, let source = mailbox.password {
            credentials = .init(user: user, password: try password(source, mailbox: mailbox.name))
        }
        let ehloName = configuration.daemon.hostname ?? "localhost"
        let session: MailSession
        do {
            session = try MailSession.open(endpoint, credentials: credentials, ehloName: ehloName)
        } catch {
            throw .connection(error)
        }
        report("  connected to \(endpoint) \(describeTLS(endpoint, session: session))")
        if let greeting = session.loginTranscript.first(where: { $0.hasPrefix("220") }) {
            report("  server greeting: \(greeting)")
        }
        // libcurl skips AUTH when the server does not advertise it: success means a 235 reply.
        if mailbox.auth {
            guard session.loginTranscript.contains(where: { $0.hasPrefix("235") }) else {
                throw .connection(MailConnectionError(.authNotOffered, endpoint: endpoint.description,
                    message: "\(endpoint) does not offer AUTH on this connection, and auth = true: check the port (submission is usually 587 with STARTTLS, or 465 with TLS)"))
            }
            report("  authenticated as \(mailbox.user ?? "")")
        }
        do throws(MailConnectionError) {
            let client = SMTPClient(session: session)
            let ehlo = try client.run("EHLO \(ehloName)")
            guard ehlo.code == 250 else {
                throw MailConnectionError(.commandRefused, endpoint: endpoint.description, message: "\(endpoint) refused EHLO", serverReply: "\(ehlo.code) \(ehlo.text)")
            }
            let extensions = ehlo.lines.dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? $0 }
            let listed = extensions.joined(separator: " ")
            if !extensions.isEmpty { report("  extensions: \(credentials.map { $0.password.redact(listed, user: $0.user) } ?? listed)") }
            let quit = try client.run("QUIT")
            report("  said goodbye (\(quit.code)); nothing was sent")
        } catch {
            throw .connection(error.redacting(credentials?.password, user: credentials?.user))
        }
    }
}
