import CCrypto
import CarteiroConfig
import Foundation

/// A Google service account's JSON key: its e-mail (the assertion's issuer), its RS256 private
/// key, and the token endpoint it names.
package struct ServiceAccount: Sendable {
    package var clientEmail: String
    package var keyID: String?
    package var tokenURI: String?
    let privateKey: Secret

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package init(json: String) throws(Failure) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw Failure(description: "the service account key is not JSON (download it again from Google Cloud: IAM → Service accounts → Keys)")
        }
        guard let email = object["client_email"] as? String, let key = object["private_key"] as? String else {
            throw Failure(description: "the service account key has no client_email or private_key")
        }
        clientEmail = email
        keyID = object["private_key_id"] as? String
        tokenURI = object["token_uri"] as? String
        privateKey = Secret(key)
    }

    /// A signed assertion (RFC 7523): this account acting for `subject` (domain-wide
    /// delegation), for `scopes`, at `audience` (the token endpoint), valid for an hour.
    package func assertion(subject: String, scopes: [String], audience: String, now: Int64) throws(Failure) -> Secret {
        var header: [String: Any] = ["alg": "RS256", "typ": "JWT"]
        if let keyID { header["kid"] = keyID }
        let claims: [String: Any] = ["iss": clientEmail, "sub": subject, "scope": scopes.joined(separator: " "), "aud": audience,
                                     "iat": now, "exp": now + 3600]
        guard let headerData = try? JSONSerialization.data(withJSONObject: header, options: .sortedKeys),
              let claimsData = try? JSONSerialization.data(withJSONObject: claims, options: .sortedKeys) else {
            throw Failure(description: "cannot encode the assertion")
        }
        let signingInput = Base64URL.encode([UInt8](headerData)) + "." + Base64URL.encode([UInt8](claimsData))
        let signature = try Self.signRS256(Array(signingInput.utf8), pem: privateKey.value)
        return Secret(signingInput + "." + Base64URL.encode(signature))
    }

    static func signRS256(_ data: [UInt8], pem: String) throws(Failure) -> [UInt8] {
        do throws(ClientAssertion.Failure) {
            return try ClientAssertion.sign(data, pem: pem, pss: false, keyName: "the service account's private_key")
        } catch {
            throw Failure(description: error.description)
        }
    }
}

/// base64url without padding (RFC 7515 §2).
package enum Base64URL {
    package static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// PKCE (RFC 7636): a random verifier and its S256 challenge.
package struct PKCE: Sendable {
    package let verifier: Secret
    package let challenge: String

    package init() {
        verifier = Secret(Base64URL.encode(Self.random(48)))
        challenge = Self.challenge(for: verifier.value)
    }

    package static func challenge(for verifier: String) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        let bytes = Array(verifier.utf8)
        _ = SHA256(bytes, bytes.count, &digest)
        return Base64URL.encode(digest)
    }

    package static func random(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if RAND_bytes(&bytes, Int32(count)) != 1 {
            for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        }
        return bytes
    }
}
