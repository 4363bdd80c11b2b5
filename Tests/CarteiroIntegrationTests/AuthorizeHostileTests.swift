#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import CarteiroConfig
import CarteiroDaemon
@testable import CarteiroOAuth
import CarteiroTesting

/// Text from servers is escaped before it reaches a terminal, `status` or a log; `authorize`
/// takes only the redirect that carries its state, serves browsers side by side, and keeps its
/// timeout whatever the server asks.
struct AuthorizeHostileTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// The hostile endpoint (scripts/lab/hostile_oauth.py), its port and its log of exchanged codes.
    final class Endpoint {
        let process = Process()
        let port: Int
        let log: String
        init(_ directory: TemporaryDirectory) throws {
            log = directory.path + "/codes.log"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [AuthorizeHostileTests.root + "/scripts/lab/hostile_oauth.py", "--log", log]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            port = Int(String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        deinit { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        var codes: [String] { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
    }

    static func client(_ port: Int, grant: OAuthClient.Grant) -> OAuthClient {
        OAuthClient(name: "hostile", provider: .custom, tenant: nil, clientID: "c", clientSecret: nil, grant: grant,
                    authorizationURL: "http://127.0.0.1:\(port)/authorize", deviceAuthorizationURL: "http://127.0.0.1:\(port)/device",
                    tokenURL: "http://127.0.0.1:\(port)/token", scopes: ["mail"], serviceAccountKey: nil, refreshTokenLifetime: nil,
                    expiryWarning: .seconds(86_400), redirectPort: 0, tls: TLSSettings(), timeout: .seconds(5),
                    location: SourceLocation(file: "test", line: 1, column: 1))
    }

    /// Lines said to the person at the terminal.
    final class Said: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test func printableTextEscapesWhatWouldForgeOrDrive() {
        #expect(PrintableText.escaped("ok: plain text, acentuação") == "ok: plain text, acentuação")
        #expect(PrintableText.escaped("no\n<2>carteiro: FORGED") == "no\\n<2>carteiro: FORGED")
        #expect(PrintableText.escaped("\u{1B}[2J\u{1B}]0;title\u{07}") == "\\u{1B}[2J\\u{1B}]0;title\\u{7}")
        #expect(PrintableText.escaped("abc\u{202E}fed\u{9B}") == "abc\\u{202E}fed\\u{9B}")
        #expect(PrintableText.escaped(String(repeating: "x", count: 10), limit: 4) == "xxxx…")
    }

    /// A token endpoint's error_description with a line break and escapes: escaped where it is
    /// made, so neither the log, nor `status`, nor a terminal shows a forged line.
    @Test func aTokenEndpointsErrorDescriptionCannotForgeALine() throws {
        let directory = try TemporaryDirectory()
        let endpoint = try Endpoint(directory)
        let result = TokenEndpoint(client: Self.client(endpoint.port, grant: .authorizationCode), secret: nil)
            .authorizationCode(Secret("refuse-me"), verifier: Secret("v"), redirectURI: "http://127.0.0.1:1/")
        guard case .failure(let error) = result else { Issue.record("the refusal was taken for a token"); return }
        #expect(!error.description.contains("\n") && !error.description.contains("\u{1B}") && !error.description.contains("\u{202E}"), "\(error.description)")
        #expect(error.description.contains("no\\n<2>carteiro: FORGED \\u{1B}[31mred\\u{202E}"), "\(error.description)")
        // And status escapes whatever a last error holds, wherever it came from.
        try #"{"pid": 1, "mailboxes": [{"name": "m", "consecutive_failures": 2, "handed_on": 0, "last_poll": 100, "failing_since": 90, "last_error": "no\n<2>carteiro: FORGED \u001b[2J"}]}"#
            .write(toFile: directory.path + "/status.json", atomically: true, encoding: .utf8)
        let text = StatusReport.render(stateDirectory: directory.path, now: 130).text
        #expect(!text.contains("\n<2>carteiro: FORGED"), "\(text)")
        #expect(!text.contains("\u{1B}"), "\(text)")
        #expect(text.contains("last error: no\\n<2>carteiro: FORGED \\u{1B}[2J"), "\(text)")
    }

    /// A device flow whose code and address carry escape sequences and a line break, and whose
    /// interval is a day: shown escaped, and the command ends at its own timeout (it used to
    /// sleep the interval through).
    @Test func theDeviceFlowEscapesTheServersTextAndKeepsItsTimeout() throws {
        let directory = try TemporaryDirectory()
        let endpoint = try Endpoint(directory)
        let said = Said()
        let authorizer = Authorizer(client: Self.client(endpoint.port, grant: .deviceCode), secret: nil, user: "u@x.example", say: { said.add($0) })
        let started = ContinuousClock.now
        do {
            _ = try authorizer.device(timeout: .seconds(4))
            Issue.record("a sign-in nobody made succeeded")
        } catch {
            #expect(error.description.contains("no sign-in came within 4s"), "\(error.description)")
        }
        #expect(ContinuousClock.now - started < .seconds(7))
        let text = said.all.joined(separator: "\n")
        #expect(!said.all.contains { $0.contains("\u{1B}") || $0.contains("\u{07}") || $0 == "FORGED LINE" }, "\(said.all)")
        #expect(text.contains("AB\\u{1B}[2JCD\\u{1B}]0;PWNED\\u{7}"), "\(text)")
        #expect(text.contains("https://login.example/\\u{1B}[1;1H\\nFORGED LINE"), "\(text)")
    }

    /// While `authorize` waits: a browser that sends half a request and stays, a redirect with no
    /// state, one with another's state. Each is turned away without delaying the others, the
    /// listener keeps listening, and only the redirect with this request's state is exchanged.
    @Test func theRedirectListenerTakesOnlyItsOwnStateAndServesSideBySide() throws {
        let directory = try TemporaryDirectory()
        let endpoint = try Endpoint(directory)
        let said = Said()
        let outcome = Said()
        let done = DispatchSemaphore(value: 0)
        let tokenPort = endpoint.port
        let thread = Thread {
            let authorizer = Authorizer(client: Self.client(tokenPort, grant: .authorizationCode), secret: nil, user: "u@x.example", say: { said.add($0) })
            do {
                let response = try authorizer.authorizationCode(listen: true, timeout: .seconds(30))
                outcome.add("token " + response.accessToken.value)
            } catch {
                outcome.add("failed \(error)")
            }
            done.signal()
        }
        thread.start()
        var url = ""
        #expect(waitUntil(timeout: .seconds(5)) { url = said.all.first { $0.contains("/authorize?") }?.trimmingCharacters(in: .whitespaces) ?? ""; return !url.isEmpty })
        let query = Authorizer.query(of: url) ?? [:]
        let state = try #require(query["state"])
        let redirect = try #require(query["redirect_uri"].flatMap(URL.init(string:)))
        let port = try #require(redirect.port)

        // Half a request, kept open: it must not hold the listener.
        let slow = try Self.connect(port)
        defer { close(slow) }
        _ = Self.send(slow, "GET /?code=SLOW")
        let turnedAway = Date()
        #expect(Self.request(port, "/?code=EVIL").hasPrefix("HTTP/1.1 400"))
        #expect(Self.request(port, "/?code=EVIL2&state=not-\(state)").hasPrefix("HTTP/1.1 400"))
        #expect(Date().timeIntervalSince(turnedAway) < 2, "the half-sent request held the listener")
        #expect(Self.request(port, "/?code=GOOD&state=\(state)").hasPrefix("HTTP/1.1 200"))
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(outcome.all == ["token at-GOOD"], "\(outcome.all) \(said.all)")
        #expect(endpoint.codes == ["GOOD"], "only the answer to this request is exchanged: \(endpoint.codes)")
        #expect(said.all.contains { $0.contains("turned away") }, "\(said.all)")
    }

    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } > 0
    }

    /// A whole GET and its answer.
    static func request(_ port: Int, _ path: String) -> String {
        guard let fd = try? connect(port) else { return "" }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = send(fd, "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            reply += buffer[0..<count]
        }
        return String(decoding: reply, as: UTF8.self)
    }
}
