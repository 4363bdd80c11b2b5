import CCrypto
import CarteiroConfig
import Foundation

/// A client assertion (RFC 7523 §2.2, Microsoft Entra's certificate credentials): a JWT signed
/// with the certificate's key that authenticates the client at the token endpoint instead of a
/// secret. RS256 names the certificate by `x5t` (its SHA-1 thumbprint), PS256 by `x5t#S256`.
package enum ClientAssertion {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// The DER bytes of the first certificate of a PEM text.
    package static func certificateDER(pem: String) throws(Failure) -> [UInt8] {
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        guard let start = pem.range(of: begin), let stop = pem.range(of: end, range: start.upperBound..<pem.endIndex) else {
            throw Failure(description: "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        let body = pem[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: String(body)), !data.isEmpty else { throw Failure(description: "its certificate is not base64") }
        return [UInt8](data)
    }

    /// The assertion for `clientID` at `audience` (the token URL), valid five minutes from `now`.
    package static func make(clientID: String, audience: String, certificateDER der: [UInt8], keyPEM: Secret,
                             algorithm: ClientCertificate.Algorithm, now: Int64) throws(Failure) -> Secret {
        var header: [String: Any] = ["alg": algorithm.rawValue, "typ": "JWT"]
        switch algorithm {
        case .rs256:
            var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
            _ = SHA1(der, der.count, &digest)
            header["x5t"] = Base64URL.encode(digest)
        case .ps256:
            var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
            _ = SHA256(der, der.count, &digest)
            header["x5t#S256"] = Base64URL.encode(digest)
        }
        let claims: [String: Any] = ["aud": audience, "iss": clientID, "sub": clientID, "jti": UUID().uuidString.lowercased(),
                                     "nbf": now, "iat": now, "exp": now + 300]
        guard let headerData = try? JSONSerialization.data(withJSONObject: header, options: .sortedKeys),
              let claimsData = try? JSONSerialization.data(withJSONObject: claims, options: .sortedKeys) else {
            throw Failure(description: "cannot encode the client assertion")
        }
        let signingInput = Base64URL.encode([UInt8](headerData)) + "." + Base64URL.encode([UInt8](claimsData))
        let signature = try sign(Array(signingInput.utf8), pem: keyPEM.value, pss: algorithm == .ps256, keyName: "the certificate's key")
        return Secret(signingInput + "." + Base64URL.encode(signature))
    }

    /// RS256, or with `pss` PS256 (salt as long as the digest, as RFC 7518 §3.5 asks), with
    /// the PEM private key that messages call `keyName`. Service accounts' assertions sign
    /// with it too.
    static func sign(_ data: [UInt8], pem: String, pss: Bool, keyName: String) throws(Failure) -> [UInt8] {
        let pemBytes = Array(pem.utf8)
        let key: OpaquePointer? = pemBytes.withUnsafeBytes { buffer -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw Failure(description: "\(keyName) is not a PEM private key (without a passphrase)") }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { throw Failure(description: "libcrypto could not allocate a digest context") }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestSignInit(context, &keyContext, EVP_sha256(), nil, key) == 1 else { throw Failure(description: "\(keyName) cannot sign") }
        if pss {
            guard let keyContext, EVP_PKEY_CTX_set_rsa_padding(keyContext, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(keyContext, RSA_PSS_SALTLEN_DIGEST) == 1 else {
                throw Failure(description: "\(keyName) cannot sign PS256 (an RSA key is needed)")
            }
        }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, data, data.count) == 1, length > 0, length <= 2048 else {
            throw Failure(description: "cannot size the signature")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, data, data.count) == 1 else { throw Failure(description: "signing failed") }
        return Array(signature.prefix(length))
    }
}
