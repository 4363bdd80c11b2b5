#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CCurlShim
import CarteiroConfig

/// An authenticated connection to a mail server that Carteiro drives itself.
///
/// libcurl connects, negotiates TLS (implicit or STARTTLS) and logs in (`CURLOPT_CONNECT_ONLY`);
/// then the protocol runs over `curl_easy_send`/`curl_easy_recv`, so Carteiro controls every
/// command (pipelining, `BODY.PEEK[]`, checked `QUIT` replies) that libcurl's own verbs cannot.
package final class MailSession {
    /// Longest line accepted from a server. IMAP and POP3 lines are short except for
    /// untagged lists; SMTP limits lines to 512 octets. More than this is not a mail server.
    package static let maximumLineLength = 1 << 20

    package let endpoint: MailEndpoint
    /// libcurl's connection, or a recorded server (`replaying`) for tests and fuzzing.
    private let transport: Transport

    enum Transport {
        case curl(CurlHandle, socket: Int32)
        case replay(ReplayedServer)
    }

    /// What a recorded server says, in chunks of the sizes given (cycled), so that readers meet
    /// every way a reply can be cut; then it hangs up. What the client sends is kept.
    package final class ReplayedServer {
        let bytes: [UInt8]
        let chunkSizes: [Int]
        var offset = 0
        var chunkIndex = 0
        package internal(set) var sent: [UInt8] = []

        package init(bytes: [UInt8], chunkSizes: [Int] = [1 << 16]) {
            self.bytes = bytes
            self.chunkSizes = chunkSizes.map { max($0, 1) }.isEmpty ? [1 << 16] : chunkSizes.map { max($0, 1) }
        }

        func next() -> ArraySlice<UInt8> {
            let size = chunkSizes[chunkIndex % chunkSizes.count]
            chunkIndex += 1
            let end = min(offset + size, bytes.count)
            defer { offset = end }
            return bytes[offset..<end]
        }
    }
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    /// Where libcurl's reads land before they join `buffer`; made once, reused by every read.
    /// Small while the server says little (a connection in IDLE); 64 KB once a read fills it.
    private var chunk = [UInt8](repeating: 0, count: 4 * 1024)

    /// The bounds of the reply being read (`expectReply`): `timeout` bounds each wait for data,
    /// these bound the whole reply, so that a server that floods or trickles cannot hold memory
    /// or a poll's slot without end.
    private var reply = ReplyBounds(what: "", bytesLeft: Int.max, deadline: nil)
    /// No reply may end after this instant (the poll's `max_poll_time`).
    package var sessionDeadline: ContinuousClock.Instant?
    /// The connection failed (lost, too slow, too much): nothing more is sent or read on it,
    /// a polite LOGOUT or QUIT included (it would only read more of the same).
    package private(set) var isBroken = false
    /// Everything read from the server on this session, in bytes.
    package private(set) var bytesReceived = 0

    struct ReplyBounds {
        var what: String
        var bytesLeft: Int
        var deadline: ContinuousClock.Instant?
        var limit = Int.max
        /// Time spent waiting for this reply's data, and the bytes that came meanwhile, since
        /// the floor was last checked (see `minimumReplyRate`).
        var waited: Duration = .zero
        var bytesInWindow = 0
        /// The longest line this reply may have (`maximumLineLength` unless the reply is a
        /// listing that the folder's announced size makes longer: a SEARCH of 200,000 UIDs).
        var lineLength = MailSession.maximumLineLength
    }

    /// The slowest a reply may come, in bytes per second, averaged over each stretch of
    /// `timeout` spent waiting for it. `timeout` bounds silence; this bounds slowness: a
    /// server trickling a byte every half second never falls silent for `timeout`, and would
    /// otherwise hold a poll's slot until `max_poll_time`. 1 KB/s is far below any real link
    /// (a 25 MB message at this rate would take seven hours), and far above any trickle.
    /// Replies that end within `timeout` of waiting are never held to it: a slow but short
    /// answer ("A3 OK" after 8 s) is fine.
    package static let minimumReplyRate = 1024

    package struct Credentials: Sendable {
        package var user: String
        /// The password, or with `bearer` the OAuth 2.0 access token.
        package var password: Secret
        /// Set: log in with this SASL mechanism and `password` as the bearer token.
        package var bearer: OAuthMechanism?
        package init(user: String, password: Secret, bearer: OAuthMechanism? = nil) {
            self.user = user
            self.password = password
            self.bearer = bearer
        }
    }

    /// Connects, negotiates TLS as `endpoint` demands and, with credentials, logs in.
    /// `ehloName` is the name SMTP's EHLO announces.
    package static func open(_ endpoint: MailEndpoint, credentials: Credentials?, ehloName: String = "localhost") throws(MailConnectionError) -> MailSession {
        guard let handle = CurlHandle() else {
            throw MailConnectionError(.other, endpoint: endpoint.description, message: "libcurl could not allocate a connection (out of memory)")
        }
        configure(handle, for: endpoint, ehloName: ehloName)
        handle.transcript.expected = endpoint.serviceProtocol
        if let credentials {
            handle.set(CURLOPT_USERNAME, credentials.user)
            if let mechanism = credentials.bearer {
                // The token goes by the named mechanism only: no fall-back to another one.
                handle.set(CURLOPT_XOAUTH2_BEARER, credentials.password.value)
                handle.set(CURLOPT_LOGIN_OPTIONS, "AUTH=\(mechanism.saslName)")
            } else {
                handle.set(CURLOPT_PASSWORD, credentials.password.value)
            }
        }
        let code = handle.perform()
        guard code == CURLE_OK else {
            throw CurlFailure.explain(code, handle: handle, endpoint: endpoint, user: credentials?.user, bearer: credentials?.bearer)
                .redacting(credentials?.password, user: credentials?.user)
        }
        guard let socket = handle.activeSocket else {
            throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "the connection to \(endpoint) closed right after the login")
        }
        // From here on Carteiro alone reads: OpenSSL may read ahead (see the shim), and every
        // wait on the socket comes after a read that OpenSSL answered "not yet".
        let readsAhead = endpoint.security != .plain && carteiro_tls_read_ahead(handle.tlsSlot, Self.tlsReadBuffer) == 1
        // The transcript is the login's (greeting, capabilities, TLS notes): libcurl's verbose
        // notes stop here, which would otherwise come for every TLS record of a fetch.
        handle.set(CURLOPT_VERBOSE, 0)
        return MailSession(endpoint: endpoint, handle: handle, socket: socket, readsAhead: readsAhead)
    }

    /// OpenSSL's read buffer once it reads ahead: a 19 KB message in one or two system calls
    /// instead of ten. Released while the connection waits (SSL_MODE_RELEASE_BUFFERS).
    static let tlsReadBuffer = 64 * 1024

    /// Seconds of silence before the first TCP keepalive.
    package static let keepaliveIdleSeconds = 60

    static func configure(_ handle: CurlHandle, for endpoint: MailEndpoint, ehloName: String) {
        // For SMTP the URL's path is the name EHLO announces.
        let path = endpoint.serviceProtocol == .smtp ? "/" + ehloName : "/"
        handle.set(CURLOPT_URL, "\(endpoint.scheme)://\(endpoint.urlHost):\(endpoint.port)\(path)")
        handle.set(CURLOPT_CONNECT_ONLY, 1)
        // libcurl's own buffer serves only the greeting and the login (Carteiro reads the rest
        // into its own): 4 KB, not 16, for each of a thousand waiting connections.
        handle.set(CURLOPT_BUFFERSIZE, 4096)
        // Connections that wait (IDLE, kept between polls) send TCP keepalives after a minute of
        // silence: a NAT or firewall that forgets quiet connections after a few minutes keeps
        // them, and a peer that vanished is noticed in about 3 minutes rather than at the next
        // IDLE refresh.
        handle.set(CURLOPT_TCP_KEEPALIVE, 1)
        handle.set(CURLOPT_TCP_KEEPIDLE, Self.keepaliveIdleSeconds)
        handle.set(CURLOPT_TCP_KEEPINTVL, 15)
        let milliseconds = Int(milliseconds(endpoint.timeout))
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, milliseconds)
        handle.set(CURLOPT_TIMEOUT_MS, milliseconds)
        switch endpoint.security {
        case .implicitTLS, .plain: break
        // CURLUSESSL_ALL fails when STARTTLS is missing; CURLUSESSL_TRY would silently stay in plain text.
        case .starttlsRequired: handle.set(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        case .starttlsOptional: handle.set(CURLOPT_USE_SSL, Int(CURLUSESSL_TRY.rawValue))
        }
        handle.apply(endpoint.tls)
        if endpoint.security != .plain {
            if let share = TLSSessionCache.share(for: endpoint) { _ = carteiro_curl_setopt_share(handle.raw, share) }
            _ = carteiro_curl_tls_context(handle.raw, handle.tlsSlot)
        }
    }

    private init(endpoint: MailEndpoint, handle: CurlHandle, socket: Int32, readsAhead: Bool) {
        self.endpoint = endpoint
        self.transport = .curl(handle, socket: socket)
        self.readsAhead = readsAhead
    }

    /// Whether OpenSSL reads ahead on this connection (TLS with OpenSSL, after the login).
    package let readsAhead: Bool

    /// A session whose server is `server`, already past the login: the protocol readers run
    /// on it exactly as on a network connection (tests, and the fuzz targets).
    package init(replaying server: ReplayedServer, endpoint: MailEndpoint) {
        self.endpoint = endpoint
        self.transport = .replay(server)
        self.readsAhead = false
    }

    /// What the server said while libcurl drove the session (greeting, capabilities, login).
    package var loginTranscript: [String] {
        if case .curl(let handle, _) = transport { return handle.transcript.lines }
        return []
    }

    /// Whether the TLS handshake resumed a session of an earlier connection to the server
    /// (libcurl's notes: it offered one, and the server sent no certificate).
    package var tlsResumed: Bool {
        if case .curl(let handle, _) = transport { return handle.transcript.tlsResumed }
        return false
    }

    /// The negotiated TLS version and cipher, when the session is encrypted.
    package var tlsDescription: String? {
        if case .curl(let handle, _) = transport { return handle.transcript.tlsDescription }
        return nil
    }

    var timeoutMilliseconds: Int32 { Self.milliseconds(endpoint.timeout) }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? 0 : .max }
        return Int32(clamping: max(0, product.addingReportingOverflow(attoseconds / 1_000_000_000_000_000).partialValue))
    }

    // MARK: - Sending

    /// Sends `text` followed by CRLF. The caller makes sure `text` holds no CR or LF.
    package func sendLine(_ text: String) throws(MailConnectionError) {
        try send(Array(text.utf8) + [13, 10])
    }

    package func send(_ bytes: [UInt8]) throws(MailConnectionError) {
        guard !isBroken else {
            throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "the connection to \(endpoint) was abandoned after an error")
        }
        guard case .curl(let handle, _) = transport else {
            if case .replay(let server) = transport { server.sent += bytes }
            return
        }
        var offset = 0
        while offset < bytes.count {
            var sent = 0
            let code = bytes.withUnsafeBytes { raw in
                curl_easy_send(handle.raw, raw.baseAddress! + offset, raw.count - offset, &sent)
            }
            if code == CURLE_AGAIN {
                try wait(for: Int16(POLLOUT))
                continue
            }
            guard code == CURLE_OK else {
                throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "the connection to \(endpoint) was lost while sending: \(handle.errorText(code))", curlCode: Int(code.rawValue))
            }
            offset += sent
        }
    }

    // MARK: - Receiving

    /// Starts reading the reply to `what`: at most `bytes` bytes may be consumed for it, and,
    /// with `within`, it must be complete within that time (each wait is still bounded by
    /// the endpoint's `timeout`).
    /// `lineLength`: the longest line allowed in it, where more than `maximumLineLength` is
    /// legitimate (never less).
    package func expectReply(to what: String, bytes: Int, within: Duration? = nil, lineLength: Int = MailSession.maximumLineLength) {
        reply = ReplyBounds(what: what, bytesLeft: bytes, deadline: within.map { ContinuousClock.now + $0 }, limit: bytes,
                            lineLength: max(lineLength, Self.maximumLineLength))
    }

    /// Takes `count` bytes out of the reply's allowance.
    private func consume(_ count: Int) throws(MailConnectionError) {
        reply.bytesLeft -= count
        if reply.bytesLeft < 0 {
            isBroken = true
            throw MailConnectionError(.tooLarge, endpoint: endpoint.description,
                                      message: "\(endpoint) sent more than \(reply.limit) bytes in answer to \(reply.what): a reply that large is broken or hostile, so the session was abandoned")
        }
    }

    /// The next line from the server, without its CRLF.
    package func readLine() throws(MailConnectionError) -> String {
        String(decoding: try readLineBytes(), as: UTF8.self)
    }

    package func readLineBytes() throws(MailConnectionError) -> [UInt8] {
        var searchFrom = bufferStart
        while true {
            if let line = try takeLine(searchingFrom: searchFrom) { return line }
            searchFrom = buffer.count
            try fill()
        }
    }

    /// A whole line if the server has sent one, without waiting: nil when none is complete yet
    /// (an event loop reads this way when the socket is readable; a TLS record may be partial).
    package func readLineIfReady() throws(MailConnectionError) -> String? {
        var searchFrom = bufferStart
        while true {
            if let line = try takeLine(searchingFrom: searchFrom) { return String(decoding: line, as: UTF8.self) }
            searchFrom = buffer.count
            do {
                guard try receive(waiting: false) else { return nil }
            } catch {
                isBroken = true
                throw error
            }
        }
    }

    /// The first line in the buffer (its CRLF removed), when one is complete.
    private func takeLine(searchingFrom searchFrom: Int) throws(MailConnectionError) -> [UInt8]? {
        if let lf = buffer[searchFrom...].firstIndex(of: 10) {
            var end = lf
            if end > bufferStart && buffer[end - 1] == 13 { end -= 1 }
            try consume(lf + 1 - bufferStart)
            let line = Array(buffer[bufferStart..<end])
            bufferStart = lf + 1
            compact()
            return line
        }
        if buffer.count - bufferStart > reply.lineLength {
            isBroken = true
            throw MailConnectionError(.protocolViolation, endpoint: endpoint.description, message: "\(endpoint) sent a line longer than \(reply.lineLength) bytes: this is not a \(endpoint.serviceProtocol.displayName) server")
        }
        return nil
    }

    /// Exactly `count` bytes (an IMAP literal).
    package func readBytes(_ count: Int) throws(MailConnectionError) -> [UInt8] {
        guard count >= 0 else {
            throw MailConnectionError(.protocolViolation, endpoint: endpoint.description, message: "\(endpoint) announced a literal of \(count) bytes")
        }
        // Charged before reading, so an announced literal beyond the allowance is refused
        // before any memory is spent on it.
        try consume(count)
        while buffer.count - bufferStart < count { try fill() }
        let bytes = Array(buffer[bufferStart..<bufferStart + count])
        bufferStart += count
        compact()
        return bytes
    }

    private func compact() {
        if bufferStart > 1 << 16 || bufferStart == buffer.count {
            buffer.removeFirst(bufferStart)
            bufferStart = 0
        }
    }

    private func fill() throws(MailConnectionError) {
        do {
            _ = try receive(waiting: true)
        } catch {
            isBroken = true
            throw error
        }
    }

    /// Appends what the server sent to the buffer; without `waiting`, false when nothing is there yet.
    private func receive(waiting: Bool) throws(MailConnectionError) -> Bool {
        guard case .curl(let handle, _) = transport else {
            if case .replay(let server) = transport {
                let next = server.next()
                if next.isEmpty { throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "\(endpoint) closed the connection") }
                buffer.append(contentsOf: next)
            }
            return true
        }
        while true {
            var received = 0
            let code = chunk.withUnsafeMutableBytes { raw in
                curl_easy_recv(handle.raw, raw.baseAddress!, raw.count, &received)
            }
            if code == CURLE_AGAIN {
                guard waiting else { return false }
                try wait(for: Int16(POLLIN))
                continue
            }
            guard code == CURLE_OK else {
                throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "the connection to \(endpoint) was lost: \(handle.errorText(code))", curlCode: Int(code.rawValue))
            }
            if received == 0 {
                throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "\(endpoint) closed the connection")
            }
            buffer.append(contentsOf: chunk[0..<received])
            bytesReceived += received
            reply.bytesInWindow += received
            if received == chunk.count && chunk.count < 64 * 1024 { chunk = [UInt8](repeating: 0, count: 64 * 1024) }
            return true
        }
    }

    /// Gives back the memory a busy session grew (a 64 KB read buffer, a fetched message's
    /// worth of capacity), for a session that will wait: a kept or idle connection costs little.
    package func shrinkBuffers() {
        if chunk.count > 4 * 1024 { chunk = [UInt8](repeating: 0, count: 4 * 1024) }
        if buffer.capacity > 16 * 1024 {
            buffer = Array(buffer[bufferStart...])
            bufferStart = 0
        }
    }

    /// The connection's socket, for an event loop to wait on (nil for a recorded server).
    package var socket: Int32? {
        if case .curl(_, let socket) = transport { return socket }
        return nil
    }

    /// Ends the connection from another thread: a reader blocked on it wakes with an error.
    package func interrupt() {
        guard case .curl(_, let socket) = transport else { return }
        isBroken = true
        shutdown(socket, Int32(SHUT_RDWR))
    }

    /// Once `timeout` has been spent waiting for a reply: at least `minimumReplyRate` bytes a
    /// second must have come meanwhile, else the server is too slow to be waited for.
    private func checkRate() throws(MailConnectionError) {
        guard reply.waited >= endpoint.timeout else { return }
        let seconds = Double(reply.waited.components.seconds) + Double(reply.waited.components.attoseconds) / 1e18
        if Double(reply.bytesInWindow) < Double(Self.minimumReplyRate) * seconds {
            let what = reply.what.isEmpty ? "its reply" : "its answer to \(reply.what)"
            throw MailConnectionError(.tooSlow, endpoint: endpoint.description,
                                      message: "\(endpoint) was too slow: it sent \(reply.bytesInWindow) bytes of \(what) in \(ConfigDuration.format(.seconds(Int64(seconds.rounded())))) of waiting, below the floor of \(Self.minimumReplyRate / 1024) KB/s (a server this slow would hold the connection without end)")
        }
        reply.waited = .zero
        reply.bytesInWindow = 0
    }

    private func wait(for events: Int16) throws(MailConnectionError) {
        guard case .curl(_, let socket) = transport else { return }
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        // The nearest of: the endpoint's timeout for this wait, the reply's and the session's deadline.
        var milliseconds = timeoutMilliseconds
        var deadlineBinds: String?
        let now = ContinuousClock.now
        for (deadline, what) in [(reply.deadline, "its answer to \(reply.what)"), (sessionDeadline, "the poll")] {
            guard let deadline else { continue }
            let left = Self.milliseconds(deadline - now)
            if left < milliseconds { milliseconds = left; deadlineBinds = what }
        }
        let ready = milliseconds > 0 ? poll(&descriptor, 1, milliseconds) : 0
        if events == Int16(POLLIN) { reply.waited += ContinuousClock.now - now }
        if ready == 0, let deadlineBinds {
            throw MailConnectionError(.tooSlow, endpoint: endpoint.description,
                                      message: "\(endpoint) was too slow: \(deadlineBinds) did not finish in the time allowed (it kept the connection busy without finishing)")
        }
        if ready == 0 {
            throw MailConnectionError(.noAnswer, endpoint: endpoint.description, message: "\(endpoint) did not answer within \(ConfigDuration.format(endpoint.timeout))")
        }
        if ready < 0 && errno != EINTR {
            throw MailConnectionError(.connectionLost, endpoint: endpoint.description, message: "waiting for \(endpoint) failed: \(String(cString: strerror(errno)))")
        }
        // Silence is `timeout`'s to report; slowness is the floor's.
        if events == Int16(POLLIN) { try checkRate() }
    }
}
