import Foundation
import Testing
import CarteiroConfig
@testable import CarteiroOAuth
import CarteiroStore
import CarteiroTesting

/// OAuth 2.0 against the lab: its token server (every grant), Dovecot checking XOAUTH2 and
/// OAUTHBEARER tokens by introspection on IMAP, IMAPS, POP3 and POP3S, and the SMTP server doing
/// the same. The token server's settings and faults are global: the suite runs serialized.
@Suite(.serialized, .enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct OAuthTests {
    // MARK: the lab's token server

    @discardableResult
    static func post(_ path: String, _ fields: [String: String]) throws -> [String: Any] {
        let lab = try requireLab()
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }.joined(separator: "&")
        let result = try run("/usr/bin/curl", ["-s", "-d", body, lab.tokenURL + path])
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    static func stats() throws -> [String: Int] {
        let lab = try requireLab()
        let result = try run("/usr/bin/curl", ["-s", lab.tokenURL + "/test/stats"])
        let object = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
        return (object["stats"] as? [String: Int]) ?? [:]
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try runProgram(executable, arguments, environment: environment)
    }

    /// Registers a client at the token server (its clients.json), e.g. an app-only client for one mailbox.
    static func registerClient(_ id: String, secret: String?, appUser: String? = nil) throws {
        let lab = try requireLab()
        let path = lab.directory + "/oauth/clients.json"
        var clients = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]) ?? [:]
        var entry: [String: Any] = ["secret": secret.map { $0 as Any } ?? NSNull()]
        if let appUser { entry["app_user"] = appUser }
        clients[id] = entry
        let data = try JSONSerialization.data(withJSONObject: clients, options: .prettyPrinted)
        try data.write(to: URL(fileURLWithPath: path + ".tmp"))
        rename(path + ".tmp", path)
    }

    static func resetServer() throws {
        try post("/test/fault", ["mode": "none", "count": "0"])
        try post("/test/settings", ["access_ttl": "60", "reuse_interval": "300", "device_interval": "1", "consent_user": "", "revoke_on_reuse": "0"])
    }

    // MARK: configurations

    /// The clients every test may use: app-only, a service account, a confidential web client
    /// (authorization code), a public one (device code).
    static func clients(_ lab: MailLab, appID: String) -> String {
        """
        [oauth.app]
        provider = "custom"
        grant = "client_credentials"
        client_id = "\(appID)"
        client_secret = "\(appID)-secret"
        token_url = "\(lab.tokenURL)/token"
        scopes = ["https://outlook.office365.com/.default"]

        [oauth.sa]
        provider = "custom"
        grant = "jwt_bearer"
        token_url = "\(lab.tokenURL)/token"
        service_account_key_file = "\(lab.serviceAccount)"
        scopes = ["https://mail.google.com/"]

        [oauth.web]
        provider = "custom"
        client_id = "lab-confidential"
        client_secret = "lab-secret"
        authorization_url = "\(lab.tokenURL)/authorize"
        token_url = "\(lab.tokenURL)/token"
        scopes = ["mail", "offline_access"]

        [oauth.device]
        provider = "custom"
        grant = "device_code"
        client_id = "lab-public"
        device_authorization_url = "\(lab.tokenURL)/device_authorization"
        token_url = "\(lab.tokenURL)/token"
        scopes = ["mail", "offline_access"]

        """
    }

    static func inbound(_ name: String, provider: String, port: Int, user: String, client: String, mechanism: String, lab: MailLab) -> String {
        """
        [mailbox.\(name)]
        type = "inbound"
        provider = "\(provider)"
        server = "127.0.0.1"
        port = \(port)
        user = "\(user)"
        oauth = "\(client)"
        oauth_mechanism = "\(mechanism)"
        ca_file = "\(lab.caFile)"
        timeout = "10s"

        """
    }

    static func outbound(_ name: String, tls: String, port: Int, user: String, client: String, mechanism: String, lab: MailLab) -> String {
        """
        [mailbox.\(name)]
        type = "outbound"
        server = "127.0.0.1"
        port = \(port)
        tls = "\(tls)"
        sender = "Desk <desk@lab.test>"
        user = "\(user)"
        oauth = "\(client)"
        oauth_mechanism = "\(mechanism)"
        ca_file = "\(lab.caFile)"
        timeout = "10s"

        """
    }

    // MARK: person-in-the-loop grants, played by the token server's test hooks

    /// `carteiro authorize MAILBOX`: the URL it prints is opened (the lab consents as the
    /// login_hint and redirects to Carteiro's loopback listener).
    static func authorizeWithBrowser(config: String, mailbox: String) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: carteiroExecutable())
        process.arguments = ["authorize", "--config", config, mailbox, "--timeout", "30"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, !text.contains("/authorize?") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        let url = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.contains("/authorize?") } ?? ""
        _ = try run("/usr/bin/curl", ["-s", "-L", "--max-time", "10", url])
        let rest = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: text + String(decoding: rest, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// `carteiro authorize MAILBOX --device`: the code it shows is entered (the lab's hook).
    static func authorizeWithDevice(config: String, mailbox: String, user: String, decision: String = "approve") throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: carteiroExecutable())
        process.arguments = ["authorize", "--device", "--config", config, mailbox, "--timeout", "30"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var text = ""
        var code: String?
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline, code == nil {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            code = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.count == 8 && $0.allSatisfy { $0.isUppercase } }
        }
        if let code { try post("/test/device", ["user_code": code, "user": user, "decision": decision]) }
        let rest = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: text + String(decoding: rest, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    // MARK: tests

    @Test func everyGrantOverEveryProtocolAndBothMechanisms() throws {
        let lab = try requireLab()
        try Self.resetServer()
        let directory = try TemporaryDirectory()
        let users = (cc: uniqueName("occ"), jwt: uniqueName("ojwt"), web: uniqueName("oweb"), device: uniqueName("odev"))
        for user in [users.cc, users.jwt, users.web, users.device] { try lab.addUser(user) }
        let appID = uniqueName("app")
        try Self.registerClient(appID, secret: appID + "-secret", appUser: users.cc)
        var text = "[daemon]\nsystem_outbound = \"out-cc-starttls-xoauth2\"\nstate_dir = \"\(directory.path)/state\"\n\n" + Self.clients(lab, appID: appID)
        var names: [String] = []
        for (grant, user) in [("cc", users.cc), ("jwt", users.jwt), ("web", users.web), ("device", users.device)] {
            let client = ["cc": "app", "jwt": "sa", "web": "web", "device": "device"][grant]!
            for (provider, port) in [("imaps", lab.imapsPort), ("imap", lab.imapPort), ("pops", lab.pop3sPort), ("pop", lab.pop3Port)] {
                for mechanism in ["xoauth2", "oauthbearer"] {
                    let name = "in-\(grant)-\(provider)-\(mechanism)"
                    text += Self.inbound(name, provider: provider, port: port, user: user, client: client, mechanism: mechanism, lab: lab)
                    names.append(name)
                }
            }
            for (tls, port) in [("starttls", lab.smtpStarttlsPort), ("tls", lab.smtpTLSPort)] {
                for mechanism in ["xoauth2", "oauthbearer"] {
                    let name = "out-\(grant)-\(tls)-\(mechanism)"
                    text += Self.outbound(name, tls: tls, port: port, user: user, client: client, mechanism: mechanism, lab: lab)
                    names.append(name)
                }
            }
        }
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stderr)")
        // The two person grants, once per user: a browser and a device.
        let web = try Self.authorizeWithBrowser(config: config, mailbox: "in-web-imaps-xoauth2")
        #expect(web.status == 0, "\(web.stdout) \(web.stderr)")
        #expect(web.stdout.contains("authorized: \(users.web) for [oauth.web]"))
        let device = try Self.authorizeWithDevice(config: config, mailbox: "out-device-tls-oauthbearer", user: users.device)
        #expect(device.status == 0, "\(device.stdout) \(device.stderr)")
        for name in names {
            let tested = try runCarteiro(["test-mailbox", "--config", config, name])
            #expect(tested.status == 0, "\(name): \(tested.stdout) \(tested.stderr)")
            let mechanism = name.hasSuffix("oauthbearer") ? "OAUTHBEARER" : "XOAUTH2"
            if name.hasPrefix("in-") {
                #expect(tested.stdout.contains("with \(mechanism)"), "\(name): \(tested.stdout)")
            } else {
                #expect(tested.stdout.contains("authenticated as"), "\(name): \(tested.stdout)")
            }
        }
        // Tokens are the service's alone.
        var info = stat()
        #expect(stat(directory.path + "/state/oauth/web/\(users.web).json", &info) == 0)
        #expect(info.st_mode & 0o077 == 0)
    }

    @Test func accessTokensExpireMidRunAndAreRefreshedWithRotationNothingLost() throws {
        let lab = try requireLab()
        try Self.resetServer()
        try Self.post("/test/settings", ["access_ttl": "2"])
        defer { try? Self.resetServer() }
        let directory = try TemporaryDirectory()
        let user = uniqueName("orot")
        try lab.addUser(user)
        let state = directory.path + "/state"
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\n\n" + Self.clients(lab, appID: "lab-app")
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "device", mechanism: "xoauth2", lab: lab)
            + Self.outbound("out", tls: "starttls", port: lab.smtpStarttlsPort, user: user, client: "device", mechanism: "oauthbearer", lab: lab)
            + "[contract.lab]\ninbound_mailboxes = [\"in\"]\noutbound_mailbox = \"out\"\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try Self.authorizeWithDevice(config: config, mailbox: "in", user: user).status == 0)
        let store = TokenStore(stateDirectory: state, client: "device", user: user)
        let firstRefresh = try #require(store.load()?.refreshToken)
        let refreshesBefore = try Self.stats()["refresh_token"] ?? 0
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log",
                                       environment: ["CARTEIRO_LOG_LEVEL": "debug"])
        defer { _ = daemon.terminate() }
        // Messages keep arriving across several token lifetimes, and a reload in the middle.
        for i in 1...6 {
            try lab.deliver("From: c@example.com\r\nTo: \(user)@lab\r\nSubject: Rotation \(i)\r\nMessage-ID: <rot-\(user)-\(i)@example.com>\r\n\r\nbody\r\n", to: user)
            Thread.sleep(forTimeInterval: 1.2)
            if i == 3 { kill(daemon.process.processIdentifier, SIGHUP) }
        }
        #expect(daemon.waitForEvents(timeout: .seconds(20)) { events in (1...6).allSatisfy { i in events.contains { $0.messageID == "<rot-\(user)-\(i)@example.com>" } } },
                "\(daemon.log.suffix(3000))")
        let sent = try runCarteiro(["send", "--config", config, "--mailbox", "out", "--to", "x@example.com", "--subject", "Rotation out \(user)", "--text", "hi"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let delivered = waitUntil(timeout: .seconds(20)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: lab.smtpSpool)) ?? []).contains { name in
                name.hasSuffix(".json") && ((try? String(contentsOfFile: lab.smtpSpool + "/" + name, encoding: .utf8)) ?? "").contains("\"auth_user\": \"\(user)\"")
            }
        }
        #expect(delivered, "\(daemon.log.suffix(2000))")
        #expect(daemon.terminate() == 0)
        // Refreshed several times, each refresh rotating the refresh token, the last one on disk.
        let refreshes = (try Self.stats()["refresh_token"] ?? 0) - refreshesBefore
        #expect(refreshes >= 2, "\(refreshes) refreshes")
        let record = try #require(store.load())
        #expect(record.refreshToken != firstRefresh)
        #expect(record.needsAuthorization == nil)
        // No token reaches the log (the lab's tokens start with at- and rt-).
        let log = daemon.log
        #expect(log.range(of: "(at|rt)-[A-Za-z0-9_-]{16}", options: .regularExpression) == nil)
        #expect(!log.contains(record.refreshToken?.value ?? "never"))
    }

    @Test func sigkillDuringRefreshesLeavesATokenThatStillWorks() throws {
        let lab = try requireLab()
        try Self.resetServer()
        try Self.post("/test/settings", ["access_ttl": "1"])
        defer { try? Self.resetServer() }
        let directory = try TemporaryDirectory()
        let user = uniqueName("okill")
        try lab.addUser(user)
        let state = directory.path + "/state"
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\n\n" + Self.clients(lab, appID: "lab-app")
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "web", mechanism: "xoauth2", lab: lab)
            + Self.inbound("in2", provider: "pops", port: lab.pop3sPort, user: user, client: "web", mechanism: "oauthbearer", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
            + "[contract.lab]\ninbound_mailboxes = [\"in\", \"in2\"]\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try Self.authorizeWithBrowser(config: config, mailbox: "in").status == 0)
        var generator = SeededGenerator()
        print("oauth kill test: seed \(generator.seed) (CARTEIRO_TEST_SEED repeats it)")
        for round in 1...10 {
            let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon-\(round).log")
            Thread.sleep(forTimeInterval: Double.random(in: 0.3...2.0, using: &generator))
            daemon.kill()
        }
        // After every kill, whatever instant it struck, the stored refresh token works.
        let tested = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(tested.status == 0, "\(tested.stdout) \(tested.stderr)")
        let record = try #require(TokenStore(stateDirectory: state, client: "web", user: user).load())
        #expect(record.needsAuthorization == nil)
        try lab.deliver("From: c@example.com\r\nTo: \(user)@lab\r\nSubject: After kills\r\nMessage-ID: <kill-\(user)@example.com>\r\n\r\nbody\r\n", to: user)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon-last.log")
        defer { _ = daemon.terminate() }
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0.messageID == "<kill-\(user)@example.com>" } }, "\(daemon.log.suffix(2000))")
    }

    /// Against a provider that revokes the grant when a replaced refresh token is presented
    /// again (revoke_on_reuse, as the OAuth 2.0 Security BCP recommends), a save of a rotated
    /// refresh token is cut at each of its steps after the write (after the write, after its
    /// fsync, after the rename), as a kill there would leave it; then the next start: the
    /// complete temporary file takes the record's place under the account's lock, the old
    /// token is never presented again, and the grant lives. No temporary file is left.
    /// (Before, a kill between the fsync and the rename presented the old token: 4 of 4 revoked.)
    @Test func aRotatedRefreshTokenSurvivesACutAtEveryStepOfItsSave() throws {
        let lab = try requireLab()
        try Self.resetServer()
        try Self.post("/test/settings", ["access_ttl": "1", "revoke_on_reuse": "1"])
        defer { try? Self.resetServer() }
        let directory = try TemporaryDirectory()
        let user = uniqueName("ocut")
        try lab.addUser(user)
        let state = directory.path + "/state"
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\n\n" + Self.clients(lab, appID: "lab-app")
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "web", mechanism: "xoauth2", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
            + "[contract.lab]\ninbound_mailboxes = [\"in\"]\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try Self.authorizeWithBrowser(config: config, mailbox: "in").status == 0)
        let configuration = try #require(ConfigurationFile.load(path: config, environment: [:]).configuration)
        let secrets = SecretResolver(environment: [:], configurationFile: config)
        let reuseBefore = (try Self.stats()["reuse_revocations"]) ?? 0
        for step in ["fsync", "rename", "directory sync"] {
            Thread.sleep(forTimeInterval: 1.2) // the access token (1 s) has expired: a refresh, with rotation
            let cut = TokenBroker(stateDirectory: state, clients: configuration.oauthClients, secrets: secrets, storeFaults: { name throws(DurableFiles.Failure) in
                if name == step { throw DurableFiles.Failure(description: "killed before \(step)") }
            })
            let before = TokenStore(stateDirectory: state, client: "web", user: user).load()?.refreshToken
            _ = cut.accessToken(client: "web", user: user)
            // The next start, with what the cut left.
            Thread.sleep(forTimeInterval: 1.2)
            let events = Messages()
            let restarted = TokenBroker(stateDirectory: state, clients: configuration.oauthClients, secrets: secrets, onEvent: { _, message, _ in
                events.add(message)
            })
            let result = restarted.accessToken(client: "web", user: user)
            if case .failure(let failure) = result { Issue.record("after a cut before \(step): \(failure)") }
            let after = TokenStore(stateDirectory: state, client: "web", user: user).load()
            #expect(after?.refreshToken != before, "after a cut before \(step) the refresh token rotated")
            #expect(after?.needsAuthorization == nil)
            if step != "directory sync" { #expect(events.all.contains("oauth token file recovered"), "\(step): \(events.all)") }
        }
        let reuseAfter = (try Self.stats()["reuse_revocations"]) ?? 0
        #expect(reuseAfter == reuseBefore, "a replaced refresh token was presented again")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: state + "/oauth/web")) ?? []).filter { $0.hasSuffix(".tmp") }
        #expect(left.isEmpty, "\(left)")
        let tested = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(tested.status == 0, "\(tested.stdout) \(tested.stderr)")
    }

    /// A token file found readable by others (0644) is set to 0600, and said.
    @Test func aTokenFileWithLooseModesIsRepairedAndSaid() throws {
        let directory = try TemporaryDirectory()
        let store = TokenStore(stateDirectory: directory.path, client: "web", user: "u@x.example")
        var record = TokenRecord()
        record.refreshToken = Secret("r1")
        record.lastRefreshAt = 100
        try store.save(record)
        chmod(store.path, 0o644)
        // A stale temporary file (older than the record) and a broken one: removed.
        var older = record
        older.refreshToken = Secret("r0")
        older.lastRefreshAt = 50
        try Data(older.json()).write(to: URL(fileURLWithPath: store.path + ".111.tmp"))
        try Data("{\"refresh_tok".utf8).write(to: URL(fileURLWithPath: store.path + ".222.tmp"))
        let recovery = store.recover()
        #expect(recovery.repairedMode == 0o644)
        #expect(recovery.promoted == nil)
        #expect(recovery.removed.sorted() == ["u@x.example.json.111.tmp", "u@x.example.json.222.tmp"])
        var info = stat()
        #expect(stat(store.path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(store.load()?.refreshToken?.value == "r1")
        // A complete newer one wins.
        var newer = record
        newer.refreshToken = Secret("r2")
        newer.lastRefreshAt = 200
        try Data(newer.json()).write(to: URL(fileURLWithPath: store.path + ".333.tmp"))
        #expect(store.recover().promoted == "u@x.example.json.333.tmp")
        #expect(store.load()?.refreshToken?.value == "r2")
    }

    @Test func aRevokedGrantAsksForAuthorizationOnceThenRecovers() throws {
        let lab = try requireLab()
        try Self.resetServer()
        try Self.post("/test/settings", ["access_ttl": "2"])
        defer { try? Self.resetServer() }
        let directory = try TemporaryDirectory()
        let user = uniqueName("orev")
        try lab.addUser(user)
        let state = directory.path + "/state"
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\nalert_after = \"1h\"\n\n" + Self.clients(lab, appID: "lab-app")
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "device", mechanism: "xoauth2", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
            + "[contract.lab]\ninbound_mailboxes = [\"in\"]\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try Self.authorizeWithDevice(config: config, mailbox: "in", user: user).status == 0)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        Thread.sleep(forTimeInterval: 1.5)
        try Self.post("/test/revoke-user", ["user": user])
        // At the next refresh: invalid_grant. The desk hears at once (not after alert_after).
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { events in
            events.contains { $0["type"] as? String == "mailbox.failing" && (($0["error"] as? String) ?? "").contains("carteiro authorize in") }
        }, "\(daemon.log.suffix(2000))")
        let status = try runCarteiro(["status", "--config", config])
        #expect(status.stdout.contains("NEEDS AUTHORIZATION"), "\(status.stdout)")
        // The token endpoint is not asked again while it waits for a person.
        let asked = try Self.stats()["refresh_token"] ?? 0
        Thread.sleep(forTimeInterval: 3)
        #expect(try Self.stats()["refresh_token"] ?? 0 == asked)
        #expect(daemon.log.components(separatedBy: "oauth authorization needed").count - 1 == 1, "\(daemon.log.suffix(2000))")
        // A person signs in again: the mailbox recovers by itself.
        #expect(try Self.authorizeWithDevice(config: config, mailbox: "in", user: user).status == 0)
        #expect(daemon.waitForEvents(timeout: .seconds(15)) { $0.contains { $0["type"] as? String == "mailbox.recovered" } }, "\(daemon.log.suffix(2000))")
    }

    @Test func aTokenEndpointThatIsDownIsWaitedOutWhileTheTokenLasts() throws {
        let lab = try requireLab()
        try Self.resetServer()
        try Self.post("/test/settings", ["access_ttl": "8"])
        defer { try? Self.resetServer() }
        let directory = try TemporaryDirectory()
        let user = uniqueName("odown")
        try lab.addUser(user)
        let appID = uniqueName("appd")
        try Self.registerClient(appID, secret: appID + "-secret", appUser: user)
        let state = directory.path + "/state"
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\n\n" + Self.clients(lab, appID: appID)
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "app", mechanism: "xoauth2", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
            + "[contract.lab]\ninbound_mailboxes = [\"in\"]\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        let daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        Thread.sleep(forTimeInterval: 1.5)
        try Self.post("/test/fault", ["mode": "5xx", "count": "100000"])
        // The access token in hand (8 s) keeps the mailbox working.
        try lab.deliver("From: c@example.com\r\nTo: \(user)@lab\r\nSubject: During\r\nMessage-ID: <down-1-\(user)@example.com>\r\n\r\nbody\r\n", to: user)
        #expect(daemon.waitForEvents(timeout: .seconds(5)) { $0.contains { $0.messageID == "<down-1-\(user)@example.com>" } }, "\(daemon.log.suffix(2000))")
        // Then it expires, and the mailbox fails (transiently) until the endpoint returns.
        Thread.sleep(forTimeInterval: 8)
        let failing = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["status", "--config", config]))?.stdout ?? "").contains("FAILING") }
        #expect(failing)
        try lab.deliver("From: c@example.com\r\nTo: \(user)@lab\r\nSubject: After\r\nMessage-ID: <down-2-\(user)@example.com>\r\n\r\nbody\r\n", to: user)
        try Self.post("/test/fault", ["mode": "none", "count": "0"])
        #expect(daemon.waitForEvents(timeout: .seconds(40)) { $0.contains { $0.messageID == "<down-2-\(user)@example.com>" } }, "\(daemon.log.suffix(2000))")
        #expect(daemon.log.contains("oauth token request failed"))
    }

    @Test func anAuthorizationAboutToRunOutIsSaidAheadOnce() throws {
        let lab = try requireLab()
        try Self.resetServer()
        let directory = try TemporaryDirectory()
        let user = uniqueName("oexp")
        try lab.addUser(user)
        let state = directory.path + "/state"
        // A refresh token known to live 1 hour, warned of 2 hours ahead: at once.
        let clients = Self.clients(lab, appID: "lab-app").replacingOccurrences(of: "[oauth.web]\n", with: "[oauth.web]\nrefresh_token_lifetime = \"1h\"\nexpiry_warning = \"2h\"\n")
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(state)\"\npoll_interval = \"1s\"\n\n" + clients
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "web", mechanism: "xoauth2", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
            + "[contract.lab]\ninbound_mailboxes = [\"in\"]\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        #expect(try Self.authorizeWithBrowser(config: config, mailbox: "in").status == 0)
        let status = try runCarteiro(["status", "--config", config])
        #expect(status.stdout.contains("refresh token") && status.stdout.contains("runs out in"), "\(status.stdout)")
        var daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon.log")
        let expiring = { (events: [[String: Any]]) in events.filter { $0["type"] as? String == "mailbox.expiring" } }
        #expect(daemon.waitForEvents(timeout: .seconds(10)) { expiring($0).count == 1 }, "\(daemon.log.suffix(2000))")
        let event = try #require(expiring(daemon.events()).first)
        #expect((event["error"] as? String ?? "").contains("run `carteiro authorize in`"))
        #expect(daemon.log.contains("oauth access expiring"))
        // Once per refresh token: a restart does not say it again.
        #expect(daemon.terminate() == 0)
        daemon = try DaemonProcess(config: config, spool: state + "/events", logPath: directory.path + "/daemon-2.log")
        Thread.sleep(forTimeInterval: 5)
        #expect(expiring(daemon.events()).count == 1)
        #expect(!daemon.log.contains("oauth access expiring"))
        #expect(daemon.terminate() == 0)
    }

    @Test func aRefusedTokenShowsTheServersDecodedReason() throws {
        let lab = try requireLab()
        try Self.resetServer()
        let directory = try TemporaryDirectory()
        let owner = uniqueName("oown"), other = uniqueName("oother")
        try lab.addUser(owner)
        try lab.addUser(other)
        let appID = uniqueName("appr")
        // The token is for `owner`; the mailboxes log in as `other`.
        try Self.registerClient(appID, secret: appID + "-secret", appUser: owner)
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(directory.path)/state\"\n\n" + Self.clients(lab, appID: appID)
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: other, client: "app", mechanism: "xoauth2", lab: lab)
            + Self.outbound("out", tls: "starttls", port: lab.smtpStarttlsPort, user: other, client: "app", mechanism: "xoauth2", lab: lab)
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        for name in ["in", "out"] {
            let tested = try runCarteiro(["test-mailbox", "--config", config, name])
            #expect(tested.status != 0)
            let output = tested.stdout + tested.stderr
            #expect(output.contains("refused the OAuth token for user \"\(other)\" over XOAUTH2"), "\(name): \(output)")
            #expect(output.contains("the server said:") && output.contains("status") && output.contains("bearer"), "\(name): \(output)")
            #expect(output.range(of: "at-[A-Za-z0-9_-]{16}", options: .regularExpression) == nil)
        }
    }

    @Test func configurationMistakesAreNamedAtTheTokenEndpoint() throws {
        let lab = try requireLab()
        try Self.resetServer()
        let directory = try TemporaryDirectory()
        let user = uniqueName("ocfg")
        try lab.addUser(user)
        let text = "[daemon]\nsystem_outbound = \"out\"\nstate_dir = \"\(directory.path)/state\"\n\n"
            + "[oauth.bad]\nprovider = \"custom\"\ngrant = \"client_credentials\"\nclient_id = \"lab-app\"\nclient_secret = \"wrong\"\ntoken_url = \"\(lab.tokenURL)/token\"\n\n"
            + "[oauth.unauthorized]\nprovider = \"custom\"\nclient_id = \"lab-confidential\"\nclient_secret = \"lab-secret\"\nauthorization_url = \"\(lab.tokenURL)/authorize\"\ntoken_url = \"\(lab.tokenURL)/token\"\n\n"
            + Self.inbound("in", provider: "imaps", port: lab.imapsPort, user: user, client: "bad", mechanism: "xoauth2", lab: lab)
            + Self.inbound("never", provider: "imaps", port: lab.imapsPort, user: user, client: "unauthorized", mechanism: "xoauth2", lab: lab)
            + "[mailbox.out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\ntls = \"none\"\nsender = \"d@lab.test\"\n"
        let config = try directory.write("carteiro.conf", text, mode: 0o600)
        let bad = try runCarteiro(["test-mailbox", "--config", config, "in"])
        #expect(bad.status != 0)
        #expect((bad.stdout + bad.stderr).contains("failed at the token request: the authorization server refused [oauth.bad]: invalid_client"), "\(bad.stdout) \(bad.stderr)")
        let never = try runCarteiro(["test-mailbox", "--config", config, "never"])
        #expect((never.stdout + never.stderr).contains("failed at authorization: \(user) has not been authorized for [oauth.unauthorized] yet; run `carteiro authorize never`"), "\(never.stdout) \(never.stderr)")
    }
}

/// Messages gathered from another thread.
final class Messages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
}
