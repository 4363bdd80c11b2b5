/// An OAuth 2.0 client (`[oauth.NAME]`), described once and shared by every mailbox that names
/// it (`oauth = "NAME"`): the application registered at Microsoft Entra, Google Cloud or another
/// authorization server, how it obtains tokens (its grant), and where.
package struct OAuthClient: Sendable, Equatable {
    package enum Provider: String, Sendable, CaseIterable {
        case microsoft, google, custom
    }

    package enum Grant: String, Sendable, CaseIterable {
        /// A person consents once in a browser (PKCE); then refresh tokens.
        case authorizationCode = "authorization_code"
        /// A person consents on another device with a short code (RFC 8628); then refresh tokens.
        case deviceCode = "device_code"
        /// The application itself, no person, no refresh token (Microsoft 365 app-only access).
        case clientCredentials = "client_credentials"
        /// A signed assertion (RFC 7523): a Google service account acting for the mailbox's user.
        case jwtBearer = "jwt_bearer"

        /// Whether a person authorizes it once (`carteiro authorize`) and refresh tokens follow.
        package var isInteractive: Bool { self == .authorizationCode || self == .deviceCode }
    }

    package var name: String
    package var provider: Provider
    package var tenant: String?
    package var clientID: String
    package var clientSecret: SecretSource?
    package var grant: Grant
    package var authorizationURL: String?
    package var deviceAuthorizationURL: String?
    package var tokenURL: String
    package var scopes: [String]
    /// jwt_bearer: the service account's JSON key (Google's format).
    package var serviceAccountKey: SecretSource?
    /// How long a refresh token lives unused, where the provider says (Microsoft: 90 days).
    package var refreshTokenLifetime: Duration?
    /// How long before that an alert is raised.
    package var expiryWarning: Duration
    /// The port `carteiro authorize` listens on for the redirect (0: any free port).
    package var redirectPort: Int
    package var tls: TLSSettings
    package var timeout: Duration
    package var location: SourceLocation
    /// Authenticates the client with a certificate's signed assertion instead of a secret.
    package var certificate: ClientCertificate?

    package init(name: String, provider: Provider, tenant: String?, clientID: String, clientSecret: SecretSource?, grant: Grant,
                authorizationURL: String?, deviceAuthorizationURL: String?, tokenURL: String, scopes: [String],
                serviceAccountKey: SecretSource?, refreshTokenLifetime: Duration?, expiryWarning: Duration, redirectPort: Int,
                tls: TLSSettings, timeout: Duration, location: SourceLocation, certificate: ClientCertificate? = nil) {
        self.certificate = certificate
        self.name = name
        self.provider = provider
        self.tenant = tenant
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.grant = grant
        self.authorizationURL = authorizationURL
        self.deviceAuthorizationURL = deviceAuthorizationURL
        self.tokenURL = tokenURL
        self.scopes = scopes
        self.serviceAccountKey = serviceAccountKey
        self.refreshTokenLifetime = refreshTokenLifetime
        self.expiryWarning = expiryWarning
        self.redirectPort = redirectPort
        self.tls = tls
        self.timeout = timeout
        self.location = location
    }
}

/// The SASL mechanism a mailbox logs in with when it uses OAuth.
package enum OAuthMechanism: String, Sendable, CaseIterable {
    /// Google's and Microsoft's `XOAUTH2`.
    case xoauth2
    /// RFC 7628's `OAUTHBEARER`.
    case oauthbearer

    package var saslName: String { rawValue.uppercased() }
}

/// A mailbox's OAuth login: which client, which SASL mechanism.
package struct OAuthLogin: Sendable, Equatable {
    package var client: String
    package var mechanism: OAuthMechanism

    package init(client: String, mechanism: OAuthMechanism) {
        self.client = client
        self.mechanism = mechanism
    }
}

/// A client's certificate (Microsoft Entra's "certificate credentials"): a client assertion
/// signed with its key, naming the certificate by its thumbprint, at each token request.
package struct ClientCertificate: Sendable, Equatable {
    package enum Algorithm: String, Sendable, CaseIterable {
        /// RSASSA-PKCS1-v1_5 with SHA-256; the header names the certificate by `x5t` (SHA-1).
        case rs256 = "RS256"
        /// RSASSA-PSS with SHA-256; the header names it by `x5t#S256` (SHA-256).
        case ps256 = "PS256"
    }
    /// The PEM certificate (it may hold the key too).
    package var file: String
    /// Its PEM private key (by default, the same file).
    package var key: SecretSource
    package var algorithm: Algorithm

    package init(file: String, key: SecretSource, algorithm: Algorithm) {
        self.file = file
        self.key = key
        self.algorithm = algorithm
    }
}

/// The endpoints and scopes the presets fill in (`provider = "microsoft"` or `"google"`).
package enum OAuthPreset {
    package static let microsoftDelegatedScopes = [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
    package static let microsoftAppOnlyScopes = ["https://outlook.office365.com/.default"]
    /// Microsoft Graph's: another resource, so another token (one token is for one resource).
    package static let graphAppOnlyScopes = ["https://graph.microsoft.com/.default"]
    package static let graphDelegatedScopes = [
        "https://graph.microsoft.com/Mail.ReadWrite",
        "https://graph.microsoft.com/Mail.Send",
        "offline_access",
    ]

    /// Whether scopes are Microsoft Graph's.
    package static func isGraph(_ scopes: [String]) -> Bool {
        scopes.contains { $0.lowercased().contains("graph.microsoft.com") }
    }
    package static let googleScopes = ["https://mail.google.com/"]
    package static let googleAuthorizationURL = "https://accounts.google.com/o/oauth2/v2/auth"
    package static let googleTokenURL = "https://oauth2.googleapis.com/token"
    package static let googleDeviceURL = "https://oauth2.googleapis.com/device/code"
    /// Microsoft's refresh tokens expire after 90 days without use.
    package static let microsoftRefreshTokenLifetime: Duration = .seconds(90 * 86_400)

    package static func microsoftBase(tenant: String) -> String {
        "https://login.microsoftonline.com/\(tenant)/oauth2/v2.0"
    }

    /// What a preset gives for a grant: (authorization, device, token, scopes).
    package static func endpoints(_ provider: OAuthClient.Provider, tenant: String, grant: OAuthClient.Grant)
        -> (authorization: String?, device: String?, token: String?, scopes: [String]) {
        switch provider {
        case .microsoft:
            let base = microsoftBase(tenant: tenant)
            let scopes = grant == .clientCredentials ? microsoftAppOnlyScopes : microsoftDelegatedScopes
            return (base + "/authorize", base + "/devicecode", base + "/token", scopes)
        case .google:
            return (googleAuthorizationURL, googleDeviceURL, googleTokenURL, googleScopes)
        case .custom:
            return (nil, nil, nil, [])
        }
    }
}
