#if canImport(Glibc)
import Glibc
#endif
import CarteiroConfig
import Foundation

/// A person's authorization, once per mailbox user (`carteiro authorize`): the authorization
/// code grant with PKCE, whose redirect arrives on a loopback port or is pasted back (a headless
/// server reached over SSH), or the device authorization grant (RFC 8628).
package struct Authorizer {
    package let client: OAuthClient
    package let secret: Secret?
    package let user: String
    /// Prints a line for the person at the terminal.
    package let say: (String) -> Void

    package init(client: OAuthClient, secret: Secret?, user: String, say: @escaping (String) -> Void) {
        self.client = client
        self.secret = secret
        self.user = user
        self.say = say
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    var endpoint: TokenEndpoint { TokenEndpoint(client: client, secret: secret) }

    // MARK: authorization code with PKCE

    /// The URL the person opens, for `redirectURI`, with `pkce` and `state`.
    package func authorizationURL(redirectURI: String, pkce: PKCE, state: String) -> String? {
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
    package func authorizationCode(listen: Bool = true, timeout: Duration = .seconds(600)) throws(Failure) -> TokenResponse {
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
        // Only the redirect that carries this request's state is the answer (anything else,
        // from a browser tab or another program on this machine, is turned away and waited past).
        let query = try waitForRedirect(listener: listener, timeout: timeout, state: state)
        if let error = query["error"] {
            throw Failure("the authorization server said \(PrintableText.escaped(error, limit: 200))" + (query["error_description"].map { ": \(PrintableText.escaped($0, limit: 500))" } ?? ""))
        }
        guard let code = query["code"] else { throw Failure("the redirect carries no code") }
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

    /// A browser's connection to the loopback listener: read without blocking, beside the
    /// others, until its request is whole or its deadline passes.
    struct BrowserConnection {
        let descriptor: Int32
        var request: [UInt8] = []
        let deadline: ContinuousClock.Instant
    }

    /// How long one connection may take to send its request: a slow or half-sent one is
    /// dropped after this, and never holds up the others.
    static let connectionDeadline: Duration = .seconds(3)
    /// Connections served at once; one more closes the oldest.
    static let maximumConnections = 16

    /// What a redirect is to this request.
    enum Verdict: Equatable {
        /// The answer: a code or an error, with this request's state.
        case answer
        /// An authorization redirect whose state is missing or another's.
        case wrongState
        /// Not an authorization redirect at all.
        case notRedirect
    }

    static func verdict(_ query: [String: String]?, state: String) -> Verdict {
        guard let query, query["code"] != nil || query["error"] != nil else { return .notRedirect }
        return query["state"] == state ? .answer : .wrongState
    }

    /// The redirect's query, from the listener or a pasted line, whichever comes first: only
    /// one that carries `state`. Browsers' connections are served side by side, each with a
    /// deadline of its own; a wrong request is answered and waited past.
    func waitForRedirect(listener: Int32, timeout: Duration, state: String) throws(Failure) -> [String: String] {
        let deadline = ContinuousClock.now + timeout
        var readStdin = true
        var pasted: [UInt8] = []
        var connections: [BrowserConnection] = []
        defer { for connection in connections { close(connection.descriptor) } }
        while ContinuousClock.now < deadline {
            var fds: [pollfd] = []
            if listener >= 0 { fds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0)) }
            if readStdin { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            for connection in connections { fds.append(pollfd(fd: connection.descriptor, events: Int16(POLLIN), revents: 0)) }
            guard !fds.isEmpty else { throw Failure("nothing to wait on: no listener, and standard input is closed") }
            let now = ContinuousClock.now
            let nearest = connections.map(\.deadline).min().map { max(Int(($0 - now).components.seconds * 1000 + 1), 1) } ?? 1000
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(1000, nearest)))
            // Connections past their deadline are dropped, answered or not.
            let expired = connections.filter { $0.deadline <= ContinuousClock.now }
            for connection in expired { close(connection.descriptor) }
            connections.removeAll { $0.deadline <= ContinuousClock.now }
            if ready <= 0 { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == listener {
                    let accepted = accept(listener, nil, nil)
                    guard accepted >= 0 else { continue }
                    _ = fcntl(accepted, F_SETFL, fcntl(accepted, F_GETFL) | O_NONBLOCK)
                    if connections.count >= Self.maximumConnections {
                        close(connections.removeFirst().descriptor)
                    }
                    connections.append(BrowserConnection(descriptor: accepted, deadline: ContinuousClock.now + Self.connectionDeadline))
                } else if entry.fd == 0 {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = read(0, &buffer, buffer.count)
                    if count <= 0 { readStdin = false; continue }
                    pasted += buffer[0..<count]
                    if pasted.count > 65536 { throw Failure("the pasted address is too long") }
                    while let newline = pasted.firstIndex(of: 0x0A) {
                        let line = String(decoding: pasted[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                        pasted.removeSubrange(...newline)
                        let query = Self.query(of: line)
                        switch Self.verdict(query, state: state) {
                        case .answer: if let query { return query }
                        case .wrongState: say("That address does not carry this sign-in's state (it is from another sign-in, or was changed): paste the address this sign-in led to.")
                        case .notRedirect: if !line.isEmpty { say("That is not the redirected address (it has no code=…); paste the whole address.") }
                        }
                    }
                } else if let index = connections.firstIndex(where: { $0.descriptor == entry.fd }) {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    let count = recv(entry.fd, &buffer, buffer.count, 0)
                    if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                    if count > 0 { connections[index].request += buffer[0..<count] }
                    let request = connections[index].request
                    let whole = request.count >= 16384 || Self.endsHeader(request)
                    guard whole || count <= 0 else { continue }
                    connections.remove(at: index)
                    defer { close(entry.fd) }
                    let query = Self.requestQuery(request)
                    let verdict = Self.verdict(query, state: state)
                    Self.respond(entry.fd, verdict)
                    if verdict == .answer, let query { return query }
                    if verdict == .wrongState {
                        say("A request reached the redirect address without this sign-in's state: turned away. Still waiting for the sign-in …")
                    }
                }
            }
        }
        throw Failure("no redirect came within \(timeout.components.seconds)s")
    }

    static func endsHeader(_ request: [UInt8]) -> Bool {
        guard request.count >= 4 else { return false }
        for index in 0...(request.count - 4) where request[index] == 13 && request[index + 1] == 10 && request[index + 2] == 13 && request[index + 3] == 10 {
            return true
        }
        return false
    }

    /// The query of a request's first line (`GET /?code=… HTTP/1.1`).
    static func requestQuery(_ request: [UInt8]) -> [String: String]? {
        let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        return parts.count >= 2 && parts[0] == "GET" ? query(of: String(parts[1])) : nil
    }

    static func respond(_ connection: Int32, _ verdict: Verdict) {
        let body = switch verdict {
        case .answer: "<html><body><h1>Carteiro</h1><p>The authorization reached Carteiro. You can close this window.</p></body></html>"
        case .wrongState: "<html><body><h1>Carteiro</h1><p>This is not the answer to the sign-in Carteiro is waiting for.</p></body></html>"
        case .notRedirect: "<html><body><h1>Carteiro</h1><p>This is not an authorization redirect.</p></body></html>"
        }
        let reply = "HTTP/1.1 \(verdict == .answer ? "200 OK" : "400 Bad Request")\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = Array(reply.utf8).withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
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

    package func device(timeout: Duration = .seconds(900)) throws(Failure) -> TokenResponse {
        let authorization: DeviceAuthorization
        switch endpoint.deviceAuthorization() {
        case .success(let value): authorization = value
        case .failure(let error): throw Failure("the device authorization request failed: \(error.description)")
        }
        // What the server sent is shown escaped: a control sequence in it would drive the terminal.
        say("On any device, open \(PrintableText.escaped(authorization.verificationURI, limit: 500)) and enter the code:")
        say("")
        say("  \(PrintableText.escaped(authorization.userCode, limit: 100))")
        say("")
        if let complete = authorization.verificationURIComplete { say("(or open \(PrintableText.escaped(complete, limit: 600)))") }
        say("Sign in as \(user). Waiting (the code expires in \(authorization.expiresIn / 60) minutes) …")
        // The server's interval, within reason: a minute at most between polls, and never past
        // this command's own timeout, whatever the server asked.
        var interval = min(max(authorization.interval, 1), Self.longestInterval)
        let deadline = ContinuousClock.now + min(timeout, .seconds(max(authorization.expiresIn, 0)))
        while ContinuousClock.now < deadline {
            let wake = min(ContinuousClock.now + .seconds(interval), deadline)
            while ContinuousClock.now < wake { usleep(UInt32(clamping: max(min((wake - ContinuousClock.now).components.seconds * 1_000_000 + 1000, 200_000), 1000))) }
            guard ContinuousClock.now < deadline else { break }
            switch endpoint.deviceCode(authorization.deviceCode) {
            case .success(let response):
                return response
            case .failure(.oauth(let code, let description, _)):
                switch code {
                case "authorization_pending": continue
                case "slow_down": interval = min(interval + 5, Self.longestInterval)
                case "expired_token": throw Failure("the code expired before it was entered; run this again")
                case "access_denied": throw Failure("the sign-in was declined")
                default: throw Failure("the authorization server said \(code)\(description.isEmpty ? "" : ": \(description)")")
                }
            case .failure(.unavailable(let text)):
                // A hiccup of the endpoint: keep polling, a little slower.
                say("(the token endpoint did not answer: \(text); trying again)")
                interval = min(interval + 5, Self.longestInterval)
            }
        }
        throw Failure("the code expired before it was entered, or no sign-in came within \(timeout.components.seconds)s; run this again")
    }

    /// The longest wait between two polls of the device flow's token endpoint.
    static let longestInterval: Int64 = 60

    func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
