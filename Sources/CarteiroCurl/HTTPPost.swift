import CCurl
import CCurlShim
import CarteiroConfig

/// One HTTP POST of a JSON document (the event webhook), through libcurl.
package enum HTTPPost {
    package enum Outcome: Sendable {
        /// The server answered; 2xx means it took the document.
        case status(Int)
        /// No answer: connection, TLS or timeout, with libcurl's explanation.
        case failed(String)
    }

    /// `headers`: more header lines ("Name: value"), such as a signature or a bearer token.
    package static func send(_ body: [UInt8], to url: String, timeout: Duration, tls: TLSSettings = TLSSettings(), headers extra: [String] = []) -> Outcome {
        guard let handle = CurlHandle() else { return .failed("libcurl could not allocate a connection") }
        handle.set(CURLOPT_URL, url)
        handle.set(CURLOPT_POST, 1)
        handle.set(CURLOPT_POSTFIELDSIZE, body.count)
        body.withUnsafeBufferPointer { buffer in
            // COPYPOSTFIELDS copies the bytes: nothing has to outlive this call.
            _ = carteiro_curl_setopt_pointer(handle.raw, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress))
        }
        var headers: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Content-Type: application/json")
        headers = curl_slist_append(headers, "Expect:")
        for line in extra where !line.contains("\r") && !line.contains("\n") { headers = curl_slist_append(headers, line) }
        defer { curl_slist_free_all(headers) }
        _ = carteiro_curl_setopt_slist(handle.raw, CURLOPT_HTTPHEADER, headers)
        _ = carteiro_curl_discard_body(handle.raw)
        let milliseconds = Int(timeout.components.seconds * 1000)
        handle.set(CURLOPT_TIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds)
        // Redirects would turn a POST into a GET: an event must reach the configured URL itself.
        handle.set(CURLOPT_FOLLOWLOCATION, 0)
        handle.apply(tls)
        let code = handle.perform()
        guard code == CURLE_OK else { return .failed(handle.errorText(code)) }
        return .status(handle.info(CURLINFO_RESPONSE_CODE))
    }
}
