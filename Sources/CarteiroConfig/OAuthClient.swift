/// An OAuth 2.0 client (`[oauth.NAME]`), described once and shared by every mailbox that names
/// it (`oauth = "NAME"`): the application registered at Microsoft Entra, Google Cloud or another
/// authorization server, how it obtains tokens (its grant), and where.
public struct OAuthClient: Sendable, Equatable {
    public enum Provider: String, Sendable, CaseIterable {
        case microsoft, google, custom
    }

    public enum Grant: String, Sendable, CaseIterable {
        /// A person consents once in a browser (PKCE); then refresh tokens.
        case authorizationCode = "authorization_code"
        /// A person consents on another device with a short code (RFC 8628); then refresh tokens.
        case deviceCode = "device_code"
        /// The application itself, no person, no refresh token (Microsoft 365 app-only access).
        case clientCredentials = "client_credentials"
        /// A signed assertion (RFC 7523): a Google service account acting for the mailbox's user.
        case jwtBearer = "jwt_bearer"

        /// Whether a person authorizes it once (`carteiro authorize`) and refresh tokens follow.
        public var isInteractive: Bool { self == .authorizationCode || self == .deviceCode }
    }

    public var name: String
    public var provider: Provider
    public var tenant: String?
    public var clientID: String
    public var clientSecret: SecretSource?
    public var grant: Grant
    public var authorizationURL: String?
    public var deviceAuthorizationURL: String?
    public var tokenURL: String
    public var scopes: [String]
    /// jwt_bearer: the service account's JSON key (Google's format).
    public var serviceAccountKey: SecretSource?
    /// How long a refresh token lives unused, where the provider says (Microsoft: 90 days).
    public var refreshTokenLifetime: Duration?
    /// How long before that an alert is raised.
    public var expiryWarning: Duration
    /// The port `carteiro authorize` listens on for the redirect (0: any free port).
    public var redirectPort: Int
    public var tls: TLSSettings
    public var timeout: Duration
    public var location: SourceLocation

    public init(name: String, provider: Provider, tenant: String?, clientID: String, clientSecret: SecretSource?, grant: Grant,
                authorizationURL: String?, deviceAuthorizationURL: String?, tokenURL: String, scopes: [String],
                serviceAccountKey: SecretSource?, refreshTokenLifetime: Duration?, expiryWarning: Duration, redirectPort: Int,
                tls: TLSSettings, timeout: Duration, location: SourceLocation) {
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
public enum OAuthMechanism: String, Sendable, CaseIterable {
    /// Google's and Microsoft's `XOAUTH2`.
    case xoauth2
    /// RFC 7628's `OAUTHBEARER`.
    case oauthbearer

    public var saslName: String { rawValue.uppercased() }
}

/// A mailbox's OAuth login: which client, which SASL mechanism.
public struct OAuthLogin: Sendable, Equatable {
    public var client: String
    public var mechanism: OAuthMechanism

    public init(client: String, mechanism: OAuthMechanism) {
        self.client = client
        self.mechanism = mechanism
    }
}

/// The endpoints and scopes the presets fill in (`provider = "microsoft"` or `"google"`).
public enum OAuthPreset {
    public static let microsoftDelegatedScopes = [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
    ]
    public static let microsoftAppOnlyScopes = ["https://outlook.office365.com/.default"]
    public static let googleScopes = ["https://mail.google.com/"]
    public static let googleAuthorizationURL = "https://accounts.google.com/o/oauth2/v2/auth"
    public static let googleTokenURL = "https://oauth2.googleapis.com/token"
    public static let googleDeviceURL = "https://oauth2.googleapis.com/device/code"
    /// Microsoft's refresh tokens expire after 90 days without use.
    public static let microsoftRefreshTokenLifetime: Duration = .seconds(90 * 86_400)

    public static func microsoftBase(tenant: String) -> String {
        "https://login.microsoftonline.com/\(tenant)/oauth2/v2.0"
    }

    /// What a preset gives for a grant: (authorization, device, token, scopes).
    public static func endpoints(_ provider: OAuthClient.Provider, tenant: String, grant: OAuthClient.Grant)
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
