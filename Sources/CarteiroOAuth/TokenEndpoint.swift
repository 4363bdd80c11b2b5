import CarteiroConfig
import CarteiroCurl
import Foundation

/// What a token endpoint gave.
package struct TokenResponse: Sendable {
    package var accessToken: Secret
    package var expiresIn: Int64
    /// A new refresh token (issued, or rotated).
    package var refreshToken: Secret?
}

/// Why a token request failed, sorted the way the broker acts on it.
package enum TokenEndpointError: Error, Sendable, CustomStringConvertible {
    /// The authorization server's own error (RFC 6749 §5.2): `invalid_grant`, `invalid_client` …
    case oauth(code: String, description: String, status: Int)
    /// No usable answer: the network, TLS, a timeout, a 5xx, something that is not JSON.
    case unavailable(String)

    package var description: String {
        switch self {
        case .oauth(let code, let description, let status):
            return description.isEmpty ? "\(code) (HTTP \(status))" : "\(code): \(description) (HTTP \(status))"
        case .unavailable(let text): return text
        }
    }

    package var code: String? {
        if case .oauth(let code, _, _) = self { return code }
        return nil
    }
}

/// The device authorization answer (RFC 8628 §3.2).
package struct DeviceAuthorization: Sendable {
    package var deviceCode: Secret
    package var userCode: String
    package var verificationURI: String
    package var verificationURIComplete: String?
    package var expiresIn: Int64
    package var interval: Int64
}

/// Requests to one client's token and device endpoints (client_secret_post authentication).
package struct TokenEndpoint: Sendable {
    package let client: OAuthClient
    package let secret: Secret?
    /// A signed client assertion (a certificate's), sent instead of a secret.
    package let assertion: Secret?

    package init(client: OAuthClient, secret: Secret?, assertion: Secret? = nil) {
        self.client = client
        self.secret = secret
        self.assertion = assertion
    }

    var clientFields: [(String, String)] {
        var fields = [("client_id", client.clientID)]
        if let assertion {
            fields.append(("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"))
            fields.append(("client_assertion", assertion.value))
        } else if let secret {
            fields.append(("client_secret", secret.value))
        }
        return fields
    }

    var scope: String { client.scopes.joined(separator: " ") }

    package func refresh(_ refreshToken: Secret) -> Result<TokenResponse, TokenEndpointError> {
        var fields = [("grant_type", "refresh_token"), ("refresh_token", refreshToken.value)] + clientFields
        if !scope.isEmpty { fields.append(("scope", scope)) }
        return token(fields, secrets: [refreshToken])
    }

    package func clientCredentials() -> Result<TokenResponse, TokenEndpointError> {
        var fields = [("grant_type", "client_credentials")] + clientFields
        if !scope.isEmpty { fields.append(("scope", scope)) }
        return token(fields, secrets: assertion.map { [$0] } ?? [])
    }

    package func jwtBearer(assertion: Secret) -> Result<TokenResponse, TokenEndpointError> {
        token([("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.value)], secrets: [assertion])
    }

    package func authorizationCode(_ code: Secret, verifier: Secret, redirectURI: String) -> Result<TokenResponse, TokenEndpointError> {
        var fields = [("grant_type", "authorization_code"), ("code", code.value), ("redirect_uri", redirectURI), ("code_verifier", verifier.value)] + clientFields
        if !scope.isEmpty { fields.append(("scope", scope)) }
        return token(fields, secrets: [code, verifier])
    }

    package func deviceCode(_ code: Secret) -> Result<TokenResponse, TokenEndpointError> {
        token([("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", code.value)] + clientFields, secrets: [code])
    }

    package func deviceAuthorization() -> Result<DeviceAuthorization, TokenEndpointError> {
        guard let url = client.deviceAuthorizationURL else { return .failure(.unavailable("no device_authorization_url")) }
        var fields = clientFields
        if !scope.isEmpty { fields.append(("scope", scope)) }
        switch call(url, fields, secrets: []) {
        case .failure(let error): return .failure(error)
        case .success(let object):
            guard let device = object["device_code"] as? String, let user = object["user_code"] as? String,
                  let uri = (object["verification_uri"] ?? object["verification_url"]) as? String else {
                return .failure(.unavailable("\(url) answered without device_code, user_code and verification_uri"))
            }
            return .success(DeviceAuthorization(deviceCode: Secret(device), userCode: user, verificationURI: uri,
                                                verificationURIComplete: object["verification_uri_complete"] as? String,
                                                expiresIn: min(max(Self.number(object["expires_in"]) ?? 900, 1), 3600),
                                                interval: min(max(Self.number(object["interval"]) ?? 5, 1), 60)))
        }
    }

    func token(_ fields: [(String, String)], secrets: [Secret]) -> Result<TokenResponse, TokenEndpointError> {
        switch call(client.tokenURL, fields, secrets: secrets) {
        case .failure(let error): return .failure(error)
        case .success(let object):
            guard let access = object["access_token"] as? String, !access.isEmpty else {
                return .failure(.unavailable("\(client.tokenURL) answered without an access_token"))
            }
            let refresh = (object["refresh_token"] as? String).flatMap { $0.isEmpty ? nil : Secret($0) }
            // expires_in from the server: at least a second, at most a year.
            let expiresIn = min(max(Self.number(object["expires_in"]) ?? 3600, 1), 365 * 86_400)
            return .success(TokenResponse(accessToken: Secret(access), expiresIn: expiresIn, refreshToken: refresh))
        }
    }

    /// POSTs and reads the JSON answer; error answers become `.oauth`, the rest `.unavailable`.
    /// Whatever the server says back is cleaned of the secrets that were sent.
    func call(_ url: String, _ fields: [(String, String)], secrets: [Secret]) -> Result<[String: Any], TokenEndpointError> {
        // Cut, the secrets taken out, and escaped: it reaches logs, status and terminals.
        let clean = { (text: String) -> String in
            var text = String(text.prefix(500))
            for secret in secrets + [secret].compactMap({ $0 }) { text = secret.redact(text) }
            return PrintableText.escaped(text)
        }
        switch HTTPForm.post(fields, to: url, timeout: client.timeout, tls: client.tls) {
        case .failure(let failure):
            return .failure(.unavailable("the token endpoint \(url) could not be reached: \(clean(failure.description))"))
        case .success(let reply):
            let object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any]
            if (200..<300).contains(reply.status), let object { return .success(object) }
            if let object, let code = object["error"] as? String, reply.status < 500 {
                return .failure(.oauth(code: clean(code), description: clean((object["error_description"] as? String) ?? ""), status: reply.status))
            }
            let said = object.flatMap { $0["error"] as? String }.map { ": \(clean($0))" } ?? ""
            return .failure(.unavailable("the token endpoint \(url) answered HTTP \(reply.status)\(said)"))
        }
    }

    static func number(_ value: Any?) -> Int64? {
        if let number = value as? NSNumber {
            let double = number.doubleValue
            guard double.isFinite else { return nil }
            return double >= 9.2e18 ? Int64.max : double <= -9.2e18 ? Int64.min : number.int64Value
        }
        if let text = value as? String { return Int64(text) }
        return nil
    }
}
