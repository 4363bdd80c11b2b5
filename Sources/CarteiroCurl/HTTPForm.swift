import CCurl
import CCurlShim
import CarteiroConfig

/// One HTTP POST of a form (`application/x-www-form-urlencoded`), the way OAuth 2.0 token and
/// device endpoints are called, with the answer's status and body (at most `limit` bytes).
package enum HTTPForm {
    package struct Reply: Sendable {
        package var status: Int
        package var body: [UInt8]
    }

    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    package static let limit = 1 << 20

    /// `fields` may hold secrets (a client secret, a refresh token): they travel only in the
    /// body, never in the URL or an error.
    package static func post(_ fields: [(String, String)], to url: String, basicAuth: (user: String, password: Secret)? = nil,
                            timeout: Duration, tls: TLSSettings = TLSSettings()) -> Result<Reply, Failure> {
        guard let handle = CurlHandle() else { return .failure(Failure(description: "libcurl could not allocate a connection")) }
        handle.set(CURLOPT_URL, url)
        // Only the web's schemes: a token endpoint of file:// or imap:// is a mistake or an attack.
        handle.set(CURLOPT_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_POST, 1)
        let body = Array(encode(fields).utf8)
        handle.set(CURLOPT_POSTFIELDSIZE, body.count)
        body.withUnsafeBufferPointer { buffer in
            _ = carteiro_curl_setopt_pointer(handle.raw, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress))
        }
        var headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Content-Type: application/x-www-form-urlencoded")
        headers = curl_slist_append(headers, "Accept: application/json")
        headers = curl_slist_append(headers, "Expect:")
        defer { curl_slist_free_all(headers) }
        _ = carteiro_curl_setopt_slist(handle.raw, CURLOPT_HTTPHEADER, headers)
        if let basicAuth {
            // RFC 6749 §2.3.1: the id and secret are form-encoded before Basic encoding.
            handle.set(CURLOPT_HTTPAUTH, 1) // CURLAUTH_BASIC
            handle.set(CURLOPT_USERNAME, formEncode(basicAuth.user))
            handle.set(CURLOPT_PASSWORD, formEncode(basicAuth.password.value))
        }
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        handle.set(CURLOPT_TIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_FOLLOWLOCATION, 0)
        handle.apply(tls)
        var collected = carteiro_body(data: nil, length: 0, limit: limit, overflow: 0)
        defer { carteiro_body_free(&collected) }
        _ = carteiro_curl_collect_body(handle.raw, &collected)
        let code = handle.perform()
        if collected.overflow != 0 { return .failure(Failure(description: "\(url) answered with more than \(limit / 1024) KB")) }
        guard code == CURLE_OK else { return .failure(Failure(description: handle.errorText(code))) }
        var bytes: [UInt8] = []
        if let data = collected.data, collected.length > 0 {
            bytes = Array(UnsafeRawBufferPointer(start: data, count: collected.length))
        }
        return .success(Reply(status: handle.info(CURLINFO_RESPONSE_CODE), body: bytes))
    }

    /// application/x-www-form-urlencoded (the unreserved characters stay, space is `+`).
    package static func encode(_ fields: [(String, String)]) -> String {
        fields.map { formEncode($0.0) + "=" + formEncode($0.1) }.joined(separator: "&")
    }

    package static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                out += "+"
            default:
                out += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
