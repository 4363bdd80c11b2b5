#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import CarteiroStore
import Foundation
import Synchronization

/// Why no access token could be had.
package enum OAuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// A person must authorize again (`carteiro authorize MAILBOX`): the grant was refused for
    /// good (revoked, expired, password changed, consent withdrawn), or never given.
    case needsAuthorization(String)
    /// The client's configuration is wrong (invalid_client, a wrong scope, an unreadable secret).
    case configuration(String)
    /// The token endpoint is down, slow or answering 5xx: retried with backoff.
    case transient(String)

    package var description: String {
        switch self {
        case .needsAuthorization(let text), .configuration(let text), .transient(let text): text
        }
    }

    package var isTransient: Bool { if case .transient = self { true } else { false } }
}

/// What `status` shows of an account.
package struct TokenStatus: Sendable {
    package var record: TokenRecord?
    package var grant: OAuthClient.Grant
    package var refreshTokenLifetime: Duration?
}

/// Hands out access tokens for OAuth accounts (a client and a mailbox user). One refresh at a
/// time per account, in this process (a lock per account: the inbound poller and the outbound
/// lane of the same user share it) and across processes (the store's flock). Access tokens are
/// reused until shortly before they expire; a rotated refresh token is durable before the new
/// access token is used; a refused grant is remembered, so the endpoint is not asked again until
/// a person authorizes; an endpoint that is down is asked again with backoff, and meanwhile a
/// still-valid access token keeps working.
package final class TokenBroker: Sendable {
    package typealias Event = @Sendable (_ level: String, _ message: String, _ fields: [String: String]) -> Void

    let stateDirectory: String
    let secrets: SecretResolver
    let onEvent: Event
    let clock: @Sendable () -> Int64
    /// The clients as configured, a lock per account, and each account's wait after a failure.
    private struct Shared {
        var clients: [String: OAuthClient] = [:]
        var accountLocks: [String: NSLock] = [:]
        var backoff: [String: (until: Int64, failures: Int, failure: OAuthFailure)] = [:]
    }
    private let shared = Mutex(Shared())

    /// The crash tests' seam into every token store's save (see `TokenStore`).
    let storeFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)?

    package init(stateDirectory: String, clients: [OAuthClient], secrets: SecretResolver,
                clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
                storeFaults: (@Sendable (String) throws(DurableFiles.Failure) -> Void)? = nil,
                onEvent: @escaping Event = { _, _, _ in }) {
        self.storeFaults = storeFaults
        self.stateDirectory = stateDirectory
        self.secrets = secrets
        self.clock = clock
        self.onEvent = onEvent
        update(clients: clients)
    }

    /// A reload: the clients as now configured. Tokens on disk stay.
    package func update(clients: [OAuthClient]) {
        let next = Dictionary(clients.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        shared.withLock { shared in
            // A changed client starts afresh (no backoff carried over from its old settings).
            for (name, client) in next where shared.clients[name] != client {
                shared.backoff = shared.backoff.filter { !$0.key.hasPrefix(name + "\u{0}") }
            }
            shared.clients = next
        }
    }

    package func store(client: String, user: String) -> TokenStore {
        TokenStore(stateDirectory: stateDirectory, client: client, user: user, faults: storeFaults)
    }

    func accountLock(_ key: String) -> NSLock {
        shared.withLock { shared in
            if let existing = shared.accountLocks[key] { return existing }
            let created = NSLock()
            shared.accountLocks[key] = created
            return created
        }
    }

    private func client(_ name: String) -> OAuthClient? { shared.withLock { $0.clients[name] } }

    package func status(client name: String, user: String) -> TokenStatus? {
        guard let client = client(name) else { return nil }
        return TokenStatus(record: store(client: name, user: user).load(), grant: client.grant, refreshTokenLifetime: client.refreshTokenLifetime)
    }

    /// The mail server refused `token`: it is not offered again (the next login refreshes).
    package func refused(client: String, user: String, token: Secret) {
        let key = client + "\u{0}" + user
        let account = accountLock(key)
        account.lock()
        defer { account.unlock() }
        let store = store(client: client, user: user)
        _ = try? store.locked {
            guard var record = store.load(), record.accessToken == token else { return }
            record.accessToken = nil
            record.accessExpiresAt = 0
            try store.save(record)
        }
    }

    /// An access token for `user` through client `name`.
    package func accessToken(client name: String, user: String) -> Result<Secret, OAuthFailure> {
        guard let client = client(name) else { return .failure(.configuration("there is no [oauth.\(name)]")) }
        let key = name + "\u{0}" + user
        let account = accountLock(key)
        account.lock()
        defer { account.unlock() }
        let store = store(client: name, user: user)
        do {
            return try store.locked(recovered: { report($0, client: name, user: user, store: store) }) { () -> Result<Secret, OAuthFailure> in
                obtain(client: client, user: user, key: key, store: store)
            }
        } catch {
            return .failure(.transient("the token store: \(error)"))
        }
    }

    /// What the token store's recovery did, said once.
    func report(_ recovery: TokenStore.Recovery, client: String, user: String, store: TokenStore) {
        if let promoted = recovery.promoted {
            onEvent("warning", "oauth token file recovered", ["oauth": client, "user": user, "path": store.path,
                                                             "reason": "a save was cut short; the complete \(promoted) holds the newest tokens and took the record's place"])
        }
        if let mode = recovery.repairedMode {
            onEvent("warning", "oauth token file mode repaired", ["oauth": client, "user": user, "path": store.path,
                                                                 "reason": "it was \(String(mode, radix: 8)), readable by others; set to 600"])
        }
        if !recovery.removed.isEmpty {
            onEvent("info", "oauth temporary token files removed", ["oauth": client, "user": user, "files": recovery.removed.joined(separator: " ")])
        }
    }

    private func obtain(client: OAuthClient, user: String, key: String, store: TokenStore) -> Result<Secret, OAuthFailure> {
        let now = clock()
        var record = store.load() ?? TokenRecord()
        if let token = record.accessToken, record.accessValid(at: now, margin: record.refreshMargin) { return .success(token) }
        let stillValid = record.accessToken.flatMap { record.accessValid(at: now, margin: 5) ? $0 : nil }
        let waiting = shared.withLock { $0.backoff[key] }
        if let waiting, now < waiting.until {
            if let stillValid { return .success(stillValid) }
            return .failure(waiting.failure)
        }
        if client.grant.isInteractive {
            if let reason = record.needsAuthorization { return .failure(.needsAuthorization(reason)) }
            guard record.refreshToken != nil else {
                return .failure(.needsAuthorization("\(user) has not been authorized for [oauth.\(client.name)] yet"))
            }
        }
        let outcome = request(client: client, user: user, record: record)
        switch outcome {
        case .success(let response):
            record.accessToken = response.accessToken
            record.accessIssuedAt = now
            record.accessExpiresAt = TokenRecord.later(now, by: response.expiresIn)
            record.lastRefreshAt = now
            if let rotated = response.refreshToken, rotated != record.refreshToken {
                record.refreshToken = rotated
                record.refreshIssuedAt = now
                record.expiryWarned = false
            }
            record.needsAuthorization = nil
            // The new refresh token is on disk before the access token is used: a crash after
            // this leaves a refresh token that works.
            do { try store.save(record) } catch {
                return .failure(.transient("cannot store the tokens: \(error.description)"))
            }
            let recovered = shared.withLock { $0.backoff.removeValue(forKey: key) != nil }
            if recovered { onEvent("notice", "oauth token endpoint recovered", ["oauth": client.name, "user": user]) }
            return .success(response.accessToken)
        case .failure(let failure):
            switch failure {
            case .needsAuthorization(let reason):
                record.needsAuthorization = reason
                try? store.save(record)
                onEvent("error", "oauth authorization needed", ["oauth": client.name, "user": user, "reason": reason])
                return .failure(failure)
            case .configuration, .transient:
                // Transient: 15 s, 30 s … 10 min; configuration: 10 min (it will not fix itself sooner).
                let policy = RetryPolicy.tokenEndpoint
                let wait = shared.withLock { shared -> Int64 in
                    let failures = (shared.backoff[key]?.failures ?? 0) + 1
                    let wait = (failure.isTransient ? policy.delay(after: failures) : policy.cap).components.seconds
                    shared.backoff[key] = (now + wait, failures, failure)
                    return wait
                }
                onEvent(failure.isTransient ? "warning" : "error", "oauth token request failed",
                        ["oauth": client.name, "user": user, "reason": failure.description, "retry_in": "\(wait)s"])
                if let stillValid { return .success(stillValid) }
                return .failure(failure)
            }
        }
    }

    private func request(client: OAuthClient, user: String, record: TokenRecord) -> Result<TokenResponse, OAuthFailure> {
        var secret: Secret?
        if let source = client.clientSecret {
            switch secrets.resolve(source) {
            case .success(let value): secret = value
            case .failure(let failure): return .failure(.configuration("[oauth.\(client.name)]: the client secret: \(failure)"))
            }
        }
        var assertion: Secret?
        if let certificate = client.certificate {
            // A new assertion for each request (its own jti, five minutes of life).
            let pem: [UInt8]
            switch RegularFile.read(certificate.file, limit: 1 << 20) {
            case .success(let bytes): pem = bytes
            case .failure(let problem): return .failure(.configuration("[oauth.\(client.name)]: the certificate \(certificate.file) \(problem)"))
            }
            let key: Secret
            switch secrets.resolveDocument(certificate.key) {
            case .success(let value): key = value
            case .failure(let failure): return .failure(.configuration("[oauth.\(client.name)]: the certificate's key: \(failure)"))
            }
            do throws(ClientAssertion.Failure) {
                let der = try ClientAssertion.certificateDER(pem: String(decoding: pem, as: UTF8.self))
                assertion = try ClientAssertion.make(clientID: client.clientID, audience: client.tokenURL, certificateDER: der, keyPEM: key,
                                                     algorithm: certificate.algorithm, now: clock())
            } catch {
                return .failure(.configuration("[oauth.\(client.name)]: the certificate \(certificate.file): \(error.description)"))
            }
        }
        let endpoint = TokenEndpoint(client: client, secret: secret, assertion: assertion)
        let result: Result<TokenResponse, TokenEndpointError>
        switch client.grant {
        case .authorizationCode, .deviceCode:
            guard let refresh = record.refreshToken else { return .failure(.needsAuthorization("no refresh token")) }
            result = endpoint.refresh(refresh)
        case .clientCredentials:
            result = endpoint.clientCredentials()
        case .jwtBearer:
            guard let source = client.serviceAccountKey else { return .failure(.configuration("[oauth.\(client.name)] has no service account key")) }
            let account: ServiceAccount
            let assertion: Secret
            do {
                switch secrets.resolveDocument(source) {
                case .success(let json): account = try ServiceAccount(json: json.value)
                case .failure(let failure): return .failure(.configuration("[oauth.\(client.name)]: the service account key: \(failure)"))
                }
                assertion = try account.assertion(subject: user, scopes: client.scopes, audience: client.tokenURL, now: clock())
            } catch {
                return .failure(.configuration("[oauth.\(client.name)]: \(error.description)"))
            }
            var withID = client
            if withID.clientID.isEmpty { withID.clientID = account.clientEmail }
            result = TokenEndpoint(client: withID, secret: nil).jwtBearer(assertion: assertion)
        }
        switch result {
        case .success(let response): return .success(response)
        case .failure(let error): return .failure(Self.classify(error, client: client))
        }
    }

    /// invalid_grant on a person's grant needs a person; the client's own mistakes are
    /// configuration; the rest (5xx, network, temporarily_unavailable) is transient.
    static func classify(_ error: TokenEndpointError, client: OAuthClient) -> OAuthFailure {
        switch error {
        case .unavailable(let text):
            return .transient(text)
        case .oauth(let code, _, let status):
            switch code {
            case "invalid_grant" where client.grant.isInteractive:
                return .needsAuthorization("the authorization server refused the refresh token (\(error.description)): it was revoked, expired, or the password or consent changed")
            case "invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type", "invalid_request", "invalid_grant", "access_denied":
                return .configuration("the authorization server refused [oauth.\(client.name)]: \(error.description)")
            case "temporarily_unavailable", "server_error", "slow_down":
                return .transient("the token endpoint: \(error.description)")
            default:
                return status >= 500 ? .transient(error.description) : .configuration("the authorization server said \(error.description)")
            }
        }
    }

    /// Stores what a person's authorization gave (`carteiro authorize`): the refresh token, a
    /// first access token, and the end of any "needs authorization" state.
    package func storeAuthorization(client: String, user: String, response: TokenResponse) throws {
        let key = client + "\u{0}" + user
        let account = accountLock(key)
        account.lock()
        defer { account.unlock() }
        let store = store(client: client, user: user)
        let now = clock()
        try store.locked {
            var record = TokenRecord()
            record.refreshToken = response.refreshToken
            record.accessToken = response.accessToken
            record.accessIssuedAt = now
            record.accessExpiresAt = TokenRecord.later(now, by: response.expiresIn)
            record.refreshIssuedAt = now
            record.lastRefreshAt = now
            record.authorizedAt = now
            try store.save(record)
        }
        _ = shared.withLock { $0.backoff.removeValue(forKey: key) }
    }

    /// Accounts whose refresh token runs out within the client's warning time (once per refresh
    /// token): (client, user, seconds left). Marks them warned.
    package func expiringAccounts(_ accounts: [(client: String, user: String)]) -> [(client: String, user: String, secondsLeft: Int64)] {
        var found: [(String, String, Int64)] = []
        let now = clock()
        for (name, user) in accounts {
            guard let client = client(name), let lifetime = client.refreshTokenLifetime else { continue }
            let store = store(client: name, user: user)
            _ = try? store.locked {
                guard var record = store.load(), record.refreshToken != nil, record.needsAuthorization == nil, !record.expiryWarned else { return }
                // From the refresh token's issue: a rotated one (Microsoft) is new at each
                // refresh; one that is never rotated (Google) ages from its authorization.
                let since = record.refreshIssuedAt ?? record.authorizedAt ?? now
                let left = TokenRecord.later(since, by: lifetime.components.seconds) - now
                guard left <= client.expiryWarning.components.seconds else { return }
                record.expiryWarned = true
                try store.save(record)
                found.append((name, user, left))
            }
        }
        return found
    }
}
