#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import Foundation

/// A person's authorization, once per mailbox user (`carteiro authorize`): the authorization
/// code grant with PKCE, whose redirect arrives on a loopback port or is pasted back (a headless
/// server reached over SSH), or the device authorization grant (RFC 8628).
public struct Authorizer {
    public let client: OAuthClient
    public let secret: Secret?
    public let user: String
    /// Prints a line for the person at the terminal.
    public let say: (String) -> Void

    public init(client: OAuthClient, secret: Secret?, user: String, say: @escaping (String) -> Void) {
        self.client = client
        self.secret = secret
        self.user = user
        self.say = say
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    var endpoint: TokenEndpoint { TokenEndpoint(client: client, secret: secret) }

    // MARK: authorization code with PKCE

    /// The URL the person opens, for `redirectURI`, with `pkce` and `state`.
    public func authorizationURL(redirectURI: String, pkce: PKCE, state: String) -> String? {
        guard let base = client.authorizationURL else { return nil }
        var fields = [("response_type", "code"), ("client_id", client.clientID), ("redirect_uri", redirectURI),
                      ("scope", client.scopes.joined(separator: " ")), ("state", state),
                      ("code_challenge", pkce.challenge), ("code_challenge_method", "S256"), ("login_hint", user)]
        // Google issues a refresh token only when asked for offline access, and again only on consent.
        if client.provider == .google { fields += [("access_type", "offline"), ("prompt", "consent")] }
        return base + (base.contains("?") ? "&" : "?") + fields.map { "\($0.0)=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Runs the authorization code grant: listens on 127.0.0.1 (unless `listen` is false), prints
    /// the URL, and takes the redirect from the listener or a line pasted on standard input.
    public func authorizationCode(listen: Bool = true, timeout: Duration = .seconds(600)) throws(Failure) -> TokenResponse {
        let pkce = PKCE()
        let state = Base64URL.encode(PKCE.random(16))
        var listener: Int32 = -1
        var port = client.redirectPort
        if listen {
            (listener, port) = try Self.listen(port: client.redirectPort)
        }
        defer { if listener >= 0 { close(listener) } }
        let host = client.provider == .microsoft ? "localhost" : "127.0.0.1"
        let redirectURI = "http://\(host):\(port)/"
        guard let url = authorizationURL(redirectURI: redirectURI, pkce: pkce, state: state) else {
            throw Failure("[oauth.\(client.name)] has no authorization_url")
        }
        say("Open this URL in a browser and sign in as \(user):")
        say("")
        say("  \(url)")
        say("")
        if listen {
            say("Waiting for the redirect to \(redirectURI) … On another machine (a server reached over SSH), the browser")
            say("cannot reach it: copy the address it shows after signing in (it starts with \(redirectURI)) and paste it here.")
        } else {
            say("After signing in, the browser goes to \(redirectURI) (it shows an error: nothing listens there). Copy that address and paste it here.")
        }
        let query = try waitForRedirect(listener: listener, timeout: timeout)
        if let error = query["error"] {
            throw Failure("the authorization server said \(error)" + (query["error_description"].map { ": \($0)" } ?? ""))
        }
        guard let code = query["code"] else { throw Failure("the redirect carries no code") }
        if let returned = query["state"], returned != state { throw Failure("the redirect's state does not match: it is not the answer to this request") }
        switch endpoint.authorizationCode(Secret(code), verifier: pkce.verifier, redirectURI: redirectURI) {
        case .success(let response): return response
        case .failure(let error): throw Failure("exchanging the code failed: \(error.description)")
        }
    }

    static func listen(port: Int) throws(Failure) -> (Int32, Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure("cannot open a socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(descriptor, 4) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw Failure("cannot listen on 127.0.0.1:\(port) for the redirect: \(reason)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// The redirect's query, from the listener or a pasted line, whichever comes first.
    func waitForRedirect(listener: Int32, timeout: Duration) throws(Failure) -> [String: String] {
        let deadline = ContinuousClock.now + timeout
        var readStdin = true
        var pasted: [UInt8] = []
        while ContinuousClock.now < deadline {
            var fds: [pollfd] = []
            if listener >= 0 { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            if readStdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            guard !fds.isEmpty else { throw Failure("nothing to wait on: no listener, and standard input is closed") }
            let ready = poll(&fds, nfds_t(fds.count), 1000)
            if ready <= 0 { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == listener {
                    if let query = acceptRedirect(listener) { return query }
                } else {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = read(0, &buffer, buffer.count)
                    if count <= 0 { readStdin = false; continue }
                    pasted += buffer[0..<count]
                    if pasted.count > 65536 { throw Failure("the pasted address is too long") }
                    while let newline = pasted.firstIndex(of: 0x0A) {
                        let line = String(decoding: pasted[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                        pasted.removeSubrange(...newline)
                        if let query = Self.query(of: line), query["code"] != nil || query["error"] != nil { return query }
                        if !line.isEmpty { say("That is not the redirected address (it has no code=…); paste the whole address.") }
                    }
                }
            }
        }
        throw Failure("no redirect came within \(timeout.components.seconds)s")
    }

    /// Serves one request on the loopback listener: the browser's redirect.
    func acceptRedirect(_ listener: Int32) -> [String: String]? {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return nil }
        defer { close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384 {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { break }
            request += buffer[0..<count]
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            if let text = String(validating: request, as: UTF8.self), text.contains("\r\n\r\n") { break }
        }
        let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        let query = parts.count >= 2 && parts[0] == "GET" ? Self.query(of: String(parts[1])) : nil
        let received = query.map { $0["code"] != nil || $0["error"] != nil } ?? false
        let body = received
            ? "<html><body><h1>Carteiro</h1><p>The authorization reached Carteiro. You can close this window.</p></body></html>"
            : "<html><body><h1>Carteiro</h1><p>This is not an authorization redirect.</p></body></html>"
        let reply = "HTTP/1.1 \(received ? "200 OK" : "400 Bad Request")\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = Array(reply.utf8).withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return received ? query : nil
    }

    /// The query of a URL, a path with a query, or a bare query.
    static func query(of text: String) -> [String: String]? {
        let query: Substring
        if let mark = text.firstIndex(of: "?") { query = text[text.index(after: mark)...] }
        else if text.contains("=") { query = text[...] }
        else { return nil }
        var fields: [String: String] = [:]
        for pair in query.split(separator: "#").first?.split(separator: "&") ?? [] {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = parts.first else { continue }
            let value = parts.count > 1 ? String(parts[1]) : ""
            fields[String(key)] = value.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? value
        }
        return fields
    }

    // MARK: device authorization (RFC 8628)

    public func device(timeout: Duration = .seconds(900)) throws(Failure) -> TokenResponse {
        let authorization: DeviceAuthorization
        switch endpoint.deviceAuthorization() {
        case .success(let value): authorization = value
        case .failure(let error): throw Failure("the device authorization request failed: \(error.description)")
        }
        say("On any device, open \(authorization.verificationURI) and enter the code:")
        say("")
        say("  \(authorization.userCode)")
        say("")
        if let complete = authorization.verificationURIComplete { say("(or open \(complete))") }
        say("Sign in as \(user). Waiting (the code expires in \(authorization.expiresIn / 60) minutes) …")
        var interval = authorization.interval
        let deadline = ContinuousClock.now + min(timeout, .seconds(authorization.expiresIn))
        while ContinuousClock.now < deadline {
            sleep(UInt32(clamping: interval))
            switch endpoint.deviceCode(authorization.deviceCode) {
            case .success(let response):
                return response
            case .failure(.oauth(let code, let description, _)):
                switch code {
                case "authorization_pending": continue
                case "slow_down": interval = min(interval + 5, 60)
                case "expired_token": throw Failure("the code expired before it was entered; run this again")
                case "access_denied": throw Failure("the sign-in was declined")
                default: throw Failure("the authorization server said \(code)\(description.isEmpty ? "" : ": \(description)")")
                }
            case .failure(.unavailable(let text)):
                // A hiccup of the endpoint: keep polling, a little slower.
                say("(the token endpoint did not answer: \(text); trying again)")
                interval = min(interval + 5, 60)
            }
        }
        throw Failure("the code expired before it was entered; run this again")
    }

    func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
