import Foundation
import Testing
import CarteiroConfig
import CarteiroCurl
import CarteiroTesting

/// The lab's Graph service, for the tests: its test hooks, and a mailbox configured to read it.
struct GraphLab {
    let lab: MailLab
    var base: String { "https://127.0.0.1:\(lab.graphPort)" }
    var client: HTTPClient { HTTPClient(tls: TLSSettings(caFile: lab.caFile), timeout: .seconds(10)) }

    @discardableResult
    func hook(_ path: String, body: String = "") throws -> Any {
        let response = try client.send("POST", base + "/test/" + path, headers: ["Content-Type: application/octet-stream"], body: Array(body.utf8), limit: 16 << 20).get()
        #expect(response.status == 200, "\(path): \(String(decoding: response.body, as: UTF8.self))")
        return try JSONSerialization.jsonObject(with: Data(response.body))
    }

    func get(_ path: String) throws -> Any {
        let response = try client.send("GET", base + "/test/" + path, limit: 16 << 20).get()
        return try JSONSerialization.jsonObject(with: Data(response.body))
    }

    func deliver(_ message: String, to user: String, folder: String = "inbox", read: Bool = false) throws {
        try hook("deliver?user=\(user)&folder=\(folder)" + (read ? "&read=1" : ""), body: message.replacingOccurrences(of: "\n", with: "\r\n"))
    }

    /// Every message of the mailbox: folder, isRead, subject.
    func messages(_ user: String) throws -> [[String: Any]] {
        (try get("mailbox?user=\(user)") as? [String: Any])?["messages"] as? [[String: Any]] ?? []
    }

    func stats() throws -> [String: Any] { try get("stats") as? [String: Any] ?? [:] }

    /// A Graph inbound mailbox `in` reading `user`'s folder with the lab's application.
    /// The lab's application that authenticates with its certificate (`client_assertion_algorithm`).
    func certificateClient(_ algorithm: String, certificate: String? = nil, key: String? = nil) -> String {
        """
        provider = "custom"
        token_url = "\(lab.tokenURL)/token"
        client_id = "lab-cert-app"
        client_certificate_file = "\(certificate ?? lab.directory + "/oauth/app-cert.pem")"
        client_certificate_key_file = "\(key ?? lab.directory + "/oauth/app-cert.key")"
        client_assertion_algorithm = "\(algorithm)"
        grant = "client_credentials"
        scopes = ["https://graph.microsoft.com/.default"]
        """
    }

    func configuration(state: String, user: String, extra: String = "", scopes: String = "https://graph.microsoft.com/.default",
                       client: String? = nil) -> String {
        """
        [daemon]
        system_outbound = "out"
        state_dir = "\(state)"
        poll_interval = "1s"

        [mailbox.out]
        type = "outbound"
        server = "127.0.0.1"
        tls = "none"
        sender = "Desk <desk@desk.example>"

        [mailbox.in]
        type = "inbound"
        provider = "graph"
        server = "127.0.0.1"
        port = \(lab.graphPort)
        user = "\(user)"
        oauth = "lab-graph"
        ca_file = "\(lab.caFile)"
        \(extra.contains("timeout") ? "" : "timeout = \"10s\"")
        max_messages_per_sender = 0
        max_messages_per_domain = 0
        \(extra)

        [oauth.lab-graph]
        \(client ?? """
        provider = "custom"
        token_url = "\(lab.tokenURL)/token"
        client_id = "lab-app"
        client_secret = "app-secret"
        grant = "client_credentials"
        scopes = ["\(scopes)"]
        """)

        [contract.lab]
        inbound_mailboxes = ["in"]

        """
    }
}

/// A Graph mailbox read through the lab's Graph service: delta rounds, MIME through the same
/// pipeline, after_fetch, import_existing, a forgotten delta link, throttling, and the errors
/// an admin has to act on.
struct GraphSourceTests {
    func graph() throws -> GraphLab { GraphLab(lab: try requireLab()) }

    static func message(_ id: String, subject: String, from: String = "cliente@acme.example") -> String {
        """
        From: Cliente <\(from)>
        To: suporte@acme.example
        Subject: \(subject)
        Message-ID: <\(id)>
        Date: Wed, 25 Nov 2026 12:00:00 -0300

        Corpo de \(id).
        """
    }

    static func events(_ state: String) throws -> [[String: Any]] { try FloodLimitTests.events(state + "/events") }

    static func subjects(_ events: [[String: Any]]) -> [String] {
        events.compactMap { ($0["message"] as? [String: Any])?["subject"] as? String }.sorted()
    }

    @Test func newMessagesBecomeEventsOnceAndAfterFetchMarksThemRead() throws {
        let graph = try graph()
        let user = uniqueName("graph") + "@lab.test"
        for n in 1...25 { try graph.deliver(Self.message("g\(n)-\(user)", subject: "Pedido \(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "after_fetch = \"seen\"\nimport_existing = \"all\""))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let test = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(test.status == 0 && test.stdout.contains("folder \"INBOX\": found"), "\(test.stdout)\(test.stderr)")

        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        var events = try Self.events(state)
        #expect(events.count == 25)
        #expect(events.allSatisfy { ($0["id"] as? String)?.hasPrefix("in/graph/") == true })
        // The event carries the immutable id whole, as the lab's mailbox names the message.
        let ids = Set(try graph.messages(user).compactMap { $0["id"] as? String })
        #expect(Set(events.compactMap { ($0["origin"] as? [String: Any])?["id"] as? String }) == ids)
        #expect(events.allSatisfy { ($0["origin"] as? [String: Any])?["source"] as? String == "graph" })
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
        #expect(try graph.messages(user).allSatisfy { $0["isRead"] as? Bool == true }, "after_fetch = seen")

        // The next round brings only what is new (Carteiro's own isRead is not news).
        try graph.deliver(Self.message("late-\(user)", subject: "Depois"), to: user)
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        events = try Self.events(state)
        #expect(events.count == 26)
        #expect(Self.subjects(events).filter { $0 == "Depois" }.count == 1)
        let third = try runCarteiro(["run", "--once", "--config", config])
        #expect(third.status == 0)
        #expect(try Self.events(state).count == 26, "nothing twice")
    }

    @Test func importExistingAndMoveAndDelete() throws {
        let graph = try graph()
        let user = uniqueName("graph-import") + "@lab.test"
        try graph.deliver(Self.message("old-read-\(user)", subject: "Lida"), to: user, read: true)
        try graph.deliver(Self.message("old-unread-\(user)", subject: "Não lida"), to: user)
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        // unseen (the default): only the unread one of what was there; move to a folder by path.
        try graph.hook("folder?user=\(user)&parent=inbox&name=Handled")
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "after_fetch = \"move:Inbox/Handled\""))
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Self.subjects(try Self.events(state)) == ["Não lida"])
        let moved = try graph.messages(user).filter { $0["folder"] as? String == "Handled" }
        #expect(moved.map { $0["subject"] as? String } == ["Não lida"])

        // none: what is there is old; delete: handed-on messages go to Deleted Items.
        let other = uniqueName("graph-none") + "@lab.test"
        try graph.deliver(Self.message("before-\(other)", subject: "Antes"), to: other)
        let noneState = directory.path + "/none"
        let noneConfig = try directory.write("none.conf", graph.configuration(state: noneState, user: other, extra: "import_existing = \"none\"\nafter_fetch = \"delete\""))
        #expect(try runCarteiro(["run", "--once", "--config", noneConfig]).status == 0)
        #expect(try Self.events(noneState).isEmpty)
        try graph.deliver(Self.message("after-\(other)", subject: "Depois"), to: other)
        #expect(try runCarteiro(["run", "--once", "--config", noneConfig]).status == 0)
        #expect(Self.subjects(try Self.events(noneState)) == ["Depois"])
        let folders = try graph.messages(other).map { ($0["subject"] as? String ?? "", $0["folder"] as? String ?? "") }
        #expect(folders.contains { $0 == ("Depois", "deleteditems") } && folders.contains { $0 == ("Antes", "inbox") }, "\(folders)")
    }

    @Test func anExpiredDeltaLinkAndAReplayHandNothingOnTwice() throws {
        let graph = try graph()
        let user = uniqueName("graph-expire") + "@lab.test"
        for n in 1...3 { try graph.deliver(Self.message("e\(n)-\(user)", subject: "Primeira \(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "import_existing = \"all\""))
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
        #expect(try Self.events(state).count == 3)
        try graph.hook("expire-delta?user=\(user)&folder=inbox")
        try graph.deliver(Self.message("e4-\(user)", subject: "Quarta"), to: user)
        let resync = try runCarteiro(["run", "--once", "--config", config])
        #expect(resync.status == 0, "\(resync.stderr)")
        #expect(resync.stderr.contains("delta link expired"), "\(resync.stderr)")
        var events = try Self.events(state)
        #expect(events.count == 4, "\(Self.subjects(events))")
        // The service delivers a round's changes again: merged, nothing new.
        try graph.deliver(Self.message("e5-\(user)", subject: "Quinta"), to: user)
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
        try graph.hook("replay?user=\(user)&folder=inbox")
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
        events = try Self.events(state)
        #expect(Self.subjects(events) == ["Primeira 1", "Primeira 2", "Primeira 3", "Quarta", "Quinta"])
    }

    @Test func exactlyOnceAcrossSIGKILLs() throws {
        let graph = try graph()
        let user = uniqueName("graph-kill") + "@lab.test"
        let count = 150
        for n in 1...count { try graph.deliver(Self.message("k\(n)-\(user)", subject: "K\(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "import_existing = \"all\"\nafter_fetch = \"seen\""))
        let spool = state + "/events"
        var generator = SeededGenerator()
        print("graph crash test: seed \(generator.seed) (CARTEIRO_TEST_SEED repeats it)")
        let handedOn = { ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".json") }.count }
        var landed = 0
        for round in 0..<10 {
            let before = handedOn()
            let daemon = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
            let deadline = ContinuousClock.now + .seconds(20)
            while handedOn() <= before && before < count && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.002) }
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.05, using: &generator))
            daemon.kill()
            if (1..<count).contains(handedOn()) { landed += 1 }
            // New mail arrives between the kills too.
            try graph.deliver(Self.message("late\(round)-\(user)", subject: "Late \(round)"), to: user)
        }
        let daemon = try DaemonProcess(config: config, spool: spool, logPath: directory.path + "/daemon.log")
        let finished = daemon.waitForEvents(timeout: .seconds(60)) { $0.count >= count + 10 }
        Thread.sleep(forTimeInterval: 2.5)
        #expect(daemon.terminate() == 0)
        #expect(finished, "\(daemon.log)")
        let ids = daemon.events().compactMap(\.messageID)
        #expect(landed >= 1, "no kill interrupted the work (seed \(generator.seed))")
        #expect(ids.count == count + 10, "\(ids.count) events for \(count + 10) messages (seed \(generator.seed))")
        let expected = Set((1...count).map { "<k\($0)-\(user)>" } + (0..<10).map { "<late\($0)-\(user)>" })
        #expect(Set(ids) == expected)
        // A kill between a commit and its after_fetch left it pending: applied by a later poll.
        let unread = try graph.messages(user).filter { $0["isRead"] as? Bool != true }
        #expect(unread.isEmpty, "\(unread.count) messages handed on but never marked read")
    }

    @Test func anAfterFetchThatFailedIsAppliedByTheNextPoll() throws {
        let graph = try graph()
        let user = uniqueName("graph-pending") + "@lab.test"
        for n in 1...5 { try graph.deliver(Self.message("p\(n)-\(user)", subject: "P\(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "import_existing = \"all\"\nafter_fetch = \"move:archive\""))
        // Every move fails for a while, long past what a poll waits for (Retry-After 400 s).
        try graph.hook("fault", body: #"{"mode": "503", "count": 5, "retry_after": 400, "match": ["\#(user)", "/move"]}"#)
        let first = try runCarteiro(["run", "--once", "--config", config])
        #expect(first.stderr.contains("after_fetch failed"), "\(first.stderr)")
        #expect(try Self.events(state).count == 5)
        #expect(try graph.messages(user).allSatisfy { $0["folder"] as? String == "inbox" })
        let cursor = try String(contentsOfFile: state + "/mailboxes/in/state.json", encoding: .utf8)
        #expect(cursor.contains("pending"), "\(cursor)")
        try graph.hook("fault", body: #"{"mode": "none", "match": ["\#(user)"]}"#)
        let second = try runCarteiro(["run", "--once", "--config", config])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try Self.events(state).count == 5, "nothing handed on twice")
        #expect(try graph.messages(user).allSatisfy { $0["folder"] as? String == "archive" })
        let settled = try String(contentsOfFile: state + "/mailboxes/in/state.json", encoding: .utf8)
        #expect(!settled.contains("\"pending\":[\"") && !settled.contains("\"pending\": [\""), "\(settled)")
    }

    @Test func throttlingIsWaitedOutAsTheServiceAsks() throws {
        let graph = try graph()
        let user = uniqueName("graph-429") + "@lab.test"
        for n in 1...12 { try graph.deliver(Self.message("t\(n)-\(user)", subject: "T\(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "import_existing = \"all\""))
        try graph.hook("reset-stats")
        try graph.hook("fault", body: #"{"mode": "429", "count": 2, "retry_after": 2, "match": ["\#(user)", "$value"]}"#)
        let start = Date()
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try Self.events(state).count == 12)
        #expect(Date().timeIntervalSince(start) >= 2, "Retry-After was obeyed")
        let stats = try graph.stats()
        #expect(stats["early_retries"] as? Int == 0, "\(stats)")
        #expect((stats["max_in_flight"] as? Int ?? 99) <= 4, "\(stats)")
        // A 503 on a delta page, then a body cut short: the poll fails, nothing is lost, the next one goes on.
        try graph.deliver(Self.message("t13-\(user)", subject: "T13"), to: user)
        try graph.hook("fault", body: #"{"mode": "truncate", "count": 1, "match": ["\#(user)", "delta"]}"#)
        let cut = try runCarteiro(["run", "--once", "--config", config])
        #expect(cut.status != 0)
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
        #expect(try Self.events(state).count == 13)
    }

    @Test func aServerErrorAndATimeoutOnAMessageLoseNothing() throws {
        let graph = try graph()
        let user = uniqueName("graph-faults") + "@lab.test"
        for n in 1...6 { try graph.deliver(Self.message("f\(n)-\(user)", subject: "F\(n)"), to: user) }
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user,
                                                                             extra: "import_existing = \"all\"\ntimeout = \"2s\""))
        // A 500 on one message's MIME: the batch fails, its messages become suspects, nothing is lost.
        try graph.hook("fault", body: #"{"mode": "500", "count": 1, "match": ["\#(user)", "$value"]}"#)
        let failed = try runCarteiro(["run", "--once", "--config", config])
        #expect(failed.status != 0 && failed.stderr.contains("500"), "\(failed.stderr)")
        #expect(failed.stderr.contains("request-id"), "a failure names Graph's request-id: \(failed.stderr)")
        // Then a MIME that never comes within the timeout.
        try graph.hook("fault", body: #"{"mode": "slow", "count": 1, "delay": 5, "match": ["\#(user)", "$value"]}"#)
        _ = try runCarteiro(["run", "--once", "--config", config])
        // And then the service is well again: every message once.
        #expect(try runCarteiro(["run", "--once", "--config", config]).status == 0)
        #expect(Self.subjects(try Self.events(state)) == (1...6).map { "F\($0)" })
    }

    @Test(arguments: ["RS256", "PS256"])
    func anApplicationAuthenticatesWithItsCertificate(algorithm: String) throws {
        let graph = try graph()
        let user = uniqueName("graph-cert") + "@lab.test"
        try graph.deliver(Self.message("c-\(user)", subject: "Certificado"), to: user)
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", graph.configuration(state: state, user: user, extra: "import_existing = \"all\"",
                                                                             client: graph.certificateClient(algorithm)))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Self.subjects(try Self.events(state)) == ["Certificado"])
        // A certificate the application never registered: the token endpoint refuses, in words.
        let other = try directory.write("other.conf", graph.configuration(state: directory.path + "/other", user: user,
            client: graph.certificateClient(algorithm, certificate: graph.lab.directory + "/tls/cert.pem", key: graph.lab.directory + "/tls/key.pem")))
        let refused = try runCarteiro(["test-mailbox", "--config", other, "in"])
        #expect(refused.status != 0 && refused.stderr.contains("names no certificate"), "\(refused.stdout)\(refused.stderr)")
    }

    @Test func whatTheAdminMustFixIsNamed() throws {
        let graph = try graph()
        let user = uniqueName("graph-admin") + "@lab.test"
        try graph.deliver(Self.message("a-\(user)", subject: "A"), to: user)
        let directory = try TemporaryDirectory()
        // A token for IMAP is not a Graph token: refused by check-config before anything runs.
        let imapScoped = try directory.write("imap.conf", graph.configuration(state: directory.path + "/s1", user: user, scopes: "https://outlook.office365.com/.default"))
        let check = try runCarteiro(["check-config", "--config", imapScoped])
        #expect(check.status == 78 && check.stderr.contains("not Microsoft Graph's"), "\(check.stderr)")
        // A mailbox outside the application's scope.
        try graph.hook("deny?user=\(user)&mode=scope")
        let config = try directory.write("c.conf", graph.configuration(state: directory.path + "/s2", user: user, extra: "folder = \"Inbox/Suport\""))
        let scoped = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(scoped.status == 1 && scoped.stderr.contains("application access policy / RBAC for Applications"), "\(scoped.stdout)\(scoped.stderr)")
        // Read only: a missing folder is named, with what is there.
        try graph.hook("deny?user=\(user)&mode=read-only")
        try graph.hook("folder?user=\(user)&parent=inbox&name=Support")
        let missing = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(missing.status == 1 && missing.stderr.contains("no folder \"Inbox/Suport\"") && missing.stderr.contains("Support"), "\(missing.stdout)\(missing.stderr)")
        // after_fetch = seen without Mail.ReadWrite: handed on, and the refusal says what to grant.
        let seen = try directory.write("seen.conf", graph.configuration(state: directory.path + "/s3", user: user, extra: "after_fetch = \"seen\"\nimport_existing = \"all\""))
        let run = try runCarteiro(["run", "--once", "--config", seen])
        #expect(run.stderr.contains("after_fetch failed") && run.stderr.contains("Mail.ReadWrite"), "\(run.stderr)")
        #expect(try Self.events(directory.path + "/s3").count == 1)
    }
}

/// The HTTP client under the Graph source: the answer's header fields, its limits.
struct HTTPClientTests {
    @Test func headerFieldsAndLimits() throws {
        let graph = GraphLab(lab: try requireLab())
        try graph.hook("fault", body: #"{"mode": "429", "count": 1, "retry_after": 7, "match": "/v1.0/users/nobody@lab.test"}"#)
        let token = "not-a-token"
        let answer = try graph.client.send("GET", graph.base + "/v1.0/users/nobody@lab.test/mailFolders", headers: ["Authorization: Bearer \(token)"], limit: 1 << 20).get()
        #expect(answer.status == 401, "an unknown token is refused before any fault")
        #expect(answer.header("request-id") != nil && answer.header("REQUEST-ID") == answer.header("request-id"))
        #expect(HTTPClient.fields("HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After:  7 \r\nX-B: 2\r\n\r\n").map(\.name) == ["Retry-After", "X-B"])
        #expect(HTTPClient.fields("HTTP/1.1 429 Too Many\r\nRetry-After:  7 \r\n").first?.value == "7")
        let small = graph.client.send("GET", graph.base + "/test/stats", limit: 10)
        guard case .failure(let failure) = small else { Issue.record("a 10-byte limit let a larger answer through"); return }
        #expect(failure.kind == .tooLarge)
    }
}

/// Microsoft Graph as a sender: a notification goes as MIME through sendMail, kept in the
/// sending mailbox's Sent Items, Bcc recipients named for Exchange; what Graph refuses becomes
/// delivery.failed in words.
struct GraphSenderTests {
    func configuration(_ graph: GraphLab, state: String, user: String) -> String {
        """
        [daemon]
        system_outbound = "out"
        state_dir = "\(state)"

        [mailbox.out]
        type = "outbound"
        server = "127.0.0.1"
        tls = "none"
        sender = "Desk <desk@desk.example>"

        [mailbox.graph-out]
        type = "outbound"
        protocol = "graph"
        server = "127.0.0.1"
        port = \(graph.lab.graphPort)
        user = "\(user)"
        sender = "ACME Desk <\(user)>"
        oauth = "lab-graph"
        ca_file = "\(graph.lab.caFile)"
        timeout = "10s"

        [oauth.lab-graph]
        provider = "custom"
        token_url = "\(graph.lab.tokenURL)/token"
        client_id = "lab-app"
        client_secret = "app-secret"
        grant = "client_credentials"
        scopes = ["https://graph.microsoft.com/.default"]

        """
    }

    @Test func aNotificationGoesThroughSendMailIntoTheMailboxsSentItems() throws {
        let graph = GraphLab(lab: try requireLab())
        let user = uniqueName("graph-desk") + "@lab.test"
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", configuration(graph, state: state, user: user))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let test = try runCarteiro(["test-mailbox", "--config", config, "graph-out"])
        #expect(test.status == 0 && test.stdout.contains("Sent Items"), "\(test.stdout)\(test.stderr)")

        let queued = try runCarteiro(["send", "--config", config, "--mailbox", "graph-out", "--to", "cliente@acme.example",
                                      "--bcc", "auditoria@acme.example", "--subject", "Solicitação 42", "--text", "Recebemos o seu pedido."])
        #expect(queued.status == 0, "\(queued.stderr)")
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let sent = try #require(try graph.get("sent?user=\(user)") as? [[String: Any]])
        #expect(sent.count == 1)
        let mime = String(decoding: Data(base64Encoded: sent.first?["mime"] as? String ?? "") ?? Data(), as: UTF8.self)
        #expect(mime.contains("Bcc: auditoria@acme.example"), "\(mime.prefix(400))")
        #expect(mime.contains("cliente@acme.example") && mime.contains("Recebemos o seu pedido."))
        #expect(try graph.messages(user).contains { $0["folder"] as? String == "sentitems" }, "kept in the sending mailbox's own Sent Items")
        let list = try runCarteiro(["queue", "list", "--config", config])
        #expect(!list.stdout.contains("graph-out/"), "nothing left queued: \(list.stdout)")
    }

    @Test func whatGraphRefusesBecomesDeliveryFailedInWords() throws {
        let graph = GraphLab(lab: try requireLab())
        let user = uniqueName("graph-refused") + "@lab.test"
        let directory = try TemporaryDirectory()
        let state = directory.path + "/state"
        let config = try directory.write("carteiro.conf", configuration(graph, state: state, user: user))
        // Over what one request may carry.
        let big = try directory.write("big.bin", String(repeating: "x", count: 3_500_000))
        #expect(try runCarteiro(["send", "--config", config, "--mailbox", "graph-out", "--to", "a@acme.example", "--subject", "Big",
                                 "--text", "t", "--attach", big]).status == 0)
        // No Mail.Send for this mailbox.
        try graph.hook("deny?user=\(user)&mode=read-only")
        #expect(try runCarteiro(["send", "--config", config, "--mailbox", "graph-out", "--to", "b@acme.example", "--subject", "Small",
                                 "--text", "t"]).status == 0)
        _ = try runCarteiro(["run", "--once", "--config", config])
        let failed = try FloodLimitTests.events(state + "/events").filter { $0["type"] as? String == "delivery.failed" }
        let text = String(describing: failed)
        #expect(failed.count == 2, "\(text)")
        #expect(text.contains("at most 4 MB"), "\(text)")
        #expect(text.contains("Mail.Send"), "\(text)")
        #expect(validateAgainstSchema([state + "/events"]).status == 0)
    }
}
