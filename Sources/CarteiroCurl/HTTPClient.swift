import CCurl
import CCurlShim
import CarteiroConfig
import Synchronization

/// HTTP requests to one web API (Microsoft Graph), through libcurl: any method, header lines,
/// a body, and the answer's status, header fields and body (at most `limit` bytes, or the
/// transfer is cut and the request fails as too large). Requests may run on several threads
/// at once: they share their connections, TLS sessions and DNS answers (one libcurl share per
/// server, thread-safe with its locks), so that a poll's requests reuse one or a few
/// connections instead of a handshake each.
package struct HTTPClient: Sendable {
    package let tls: TLSSettings
    package let timeout: Duration

    package init(tls: TLSSettings, timeout: Duration) {
        self.tls = tls
        self.timeout = timeout
    }

    package struct Response: Sendable {
        package var status: Int
        /// Header fields in order, names as sent.
        package var headers: [(name: String, value: String)]
        package var body: [UInt8]

        /// The last field of that name (case-insensitive).
        package func header(_ name: String) -> String? {
            let lowered = name.lowercased()
            return headers.last { $0.name.lowercased() == lowered }?.value
        }
    }

    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var kind: MailConnectionError.Kind
        package var message: String
        package var curlCode: Int?
        package var description: String { message }
    }

    /// Header lines with CR or LF are dropped (no header injection from a value).
    package func send(_ method: String, _ url: String, headers: [String] = [], body: [UInt8]? = nil, limit: Int) -> Result<Response, Failure> {
        guard let handle = CurlHandle() else { return .failure(Failure(kind: .other, message: "libcurl could not allocate a connection")) }
        handle.set(CURLOPT_URL, url)
        handle.set(CURLOPT_PROTOCOLS_STR, "https,http")
        if let share = HTTPConnectionCache.share(for: url) { _ = carteiro_curl_setopt_share(handle.raw, share) }
        switch method {
        case "GET": handle.set(CURLOPT_HTTPGET, 1)
        case "HEAD": handle.set(CURLOPT_NOBODY, 1)
        default: handle.set(CURLOPT_CUSTOMREQUEST, method)
        }
        if let body {
            if method == "GET" { handle.set(CURLOPT_CUSTOMREQUEST, method) }
            handle.set(CURLOPT_POST, 1)
            handle.set(CURLOPT_POSTFIELDSIZE, body.count)
            body.withUnsafeBufferPointer { buffer in
                _ = carteiro_curl_setopt_pointer(handle.raw, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: buffer.baseAddress))
            }
            handle.set(CURLOPT_CUSTOMREQUEST, method)
        }
        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        for line in headers where !line.contains("\r") && !line.contains("\n") { list = curl_slist_append(list, line) }
        defer { curl_slist_free_all(list) }
        _ = carteiro_curl_setopt_slist(handle.raw, CURLOPT_HTTPHEADER, list)
        let milliseconds = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        handle.set(CURLOPT_TIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_FOLLOWLOCATION, 0)
        handle.set(CURLOPT_VERBOSE, 0)
        handle.apply(tls)
        var collected = carteiro_body(data: nil, length: 0, limit: max(limit, 0), overflow: 0)
        defer { carteiro_body_free(&collected) }
        _ = carteiro_curl_collect_body(handle.raw, &collected)
        var head = carteiro_body(data: nil, length: 0, limit: 256 << 10, overflow: 0)
        defer { carteiro_body_free(&head) }
        _ = carteiro_curl_collect_headers(handle.raw, &head)
        let code = handle.perform()
        if collected.overflow != 0 {
            return .failure(Failure(kind: .tooLarge, message: "\(Self.redactedURL(url)) answered with more than \(limit) bytes"))
        }
        if head.overflow != 0 {
            return .failure(Failure(kind: .tooLarge, message: "\(Self.redactedURL(url)) answered with more than 256 KB of header fields"))
        }
        guard code == CURLE_OK else {
            let kind: MailConnectionError.Kind = switch code {
            case CURLE_COULDNT_RESOLVE_HOST: .nameNotResolved
            case CURLE_COULDNT_CONNECT: .connectionRefused
            case CURLE_OPERATION_TIMEDOUT: .tooSlow
            case CURLE_PEER_FAILED_VERIFICATION: .certificateUntrusted
            case CURLE_SSL_CONNECT_ERROR: .tlsFailed
            case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING: .connectionLost
            default: .other
            }
            return .failure(Failure(kind: kind, message: "\(method) \(Self.redactedURL(url)): \(handle.errorText(code))", curlCode: Int(code.rawValue)))
        }
        let bytes = collected.data.map { Array(UnsafeRawBufferPointer(start: $0, count: collected.length)) } ?? []
        let headerText = head.data.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: head.length), as: UTF8.self) } ?? ""
        return .success(Response(status: handle.info(CURLINFO_RESPONSE_CODE), headers: Self.fields(headerText), body: bytes))
    }

    /// The fields of the last response's head (a `100 Continue` or a proxy's head before it
    /// is left out).
    package static func fields(_ text: String) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        // "\r\n" is one Character: split on newlines of every kind.
        for trimmed in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            if trimmed.hasPrefix("HTTP/") {
                fields.removeAll()
                continue
            }
            guard let colon = trimmed.firstIndex(of: ":") else { continue }
            let name = Self.trimmed(trimmed[..<colon])
            let value = Self.trimmed(trimmed[trimmed.index(after: colon)...])
            if !name.isEmpty { fields.append((name, value)) }
        }
        return fields
    }

    static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// A URL as messages show it: without its query (a delta or skip token is a credential of
    /// sorts, and long).
    package static func redactedURL(_ url: String) -> String {
        guard let question = url.firstIndex(of: "?") else { return url }
        return String(url[..<question]) + "?…"
    }
}

/// One libcurl share of connections per server (scheme, host and port), for `HTTPClient`.
/// Shares live as long as the process; there is one per server configured.
enum HTTPConnectionCache {
    private static let shares = Mutex<[String: UInt]>([:])

    static func share(for url: String) -> UnsafeMutableRawPointer? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let key = String(url[..<schemeEnd.upperBound]) + authority
        let address = shares.withLock { shares -> UInt? in
            if let share = shares[key] { return share }
            guard let share = carteiro_curl_connection_share_new() else { return nil }
            shares[key] = UInt(bitPattern: share)
            return UInt(bitPattern: share)
        }
        return address.flatMap { UnsafeMutableRawPointer(bitPattern: $0) }
    }
}
