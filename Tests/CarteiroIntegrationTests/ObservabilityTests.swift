import Foundation
import Testing
import CarteiroTesting

/// What an operator reads: one log line per message handed on, and a log level that is a level.
@Suite(.enabled(if: labIsAvailable, "needs the mail lab (scripts/mail-lab start)"))
struct ObservabilityTests {
    @Test func eachMessageHandedOnHasItsLogLine() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("obs")
        try lab.addUser(user)
        try lab.deliver(MailLab.message(id: "obs-\(user)@lab.test", subject: "Observed"), to: user)
        let text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("obs", provider: "imaps", port: lab.imapsPort, user: user, lab: lab),
                                       contractMailboxes: ["obs"])
        let config = try directory.write("carteiro.conf", text)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "obs"]))?.status ?? 1) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let line = run.stderr.split(separator: "\n").first { $0.contains("message handed on") }.map(String.init) ?? ""
        #expect(line.contains("message_id=<obs-\(user)@lab.test>") && line.contains("mailbox=obs") && line.contains("contract=lab")
                && line.contains("type=request.new") && line.contains("event=obs/"), "\(run.stderr)")
    }

    @Test func parsePrintsTheEventARawMessageWouldBecome() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: """
            [mailbox.in]
            type = "inbound"
            provider = "imaps"
            server = "127.0.0.1"
            user = "u"
            password = "p"

            """, contractMailboxes: ["in"]), mode: 0o600)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
        let parsed = try runCarteiro(["parse", "--config", config, root + "/Tests/CarteiroEventsTests/Fixtures/bounce-unmatched.eml"])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        #expect(event["type"] as? String == "delivery.failed")
        #expect(event["contract"] as? String == "lab")
        #expect((event["flags"] as? [String])?.contains("bounce") == true)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/state/events"), "parse writes nothing")
        let missing = try runCarteiro(["parse", "--config", config, directory.path + "/nope.eml"])
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("nope.eml does not exist"))
        // `raw` is the file read, not a path in a state directory where nothing was written.
        #expect(event["raw"] as? String == root + "/Tests/CarteiroEventsTests/Fixtures/bounce-unmatched.eml")
        // No state directory yet: said as it is (not "run as root").
        #expect(parsed.stderr.contains("no daemon has run on this state directory yet"), "\(parsed.stderr)")
        // No configuration at all (a support machine): still the event, without a contract.
        var environment = ProcessInfo.processInfo.environment
        environment["CONFIGURATION_DIRECTORY"] = directory.path + "/nothing-here"
        let bare = try runProgram(carteiroExecutable(), ["parse", root + "/Tests/CarteiroEventsTests/Fixtures/tnef-rich-text.eml"], environment: environment)
        #expect(bare.status == 0, "\(bare.stderr)")
        #expect(bare.stderr.contains("no configuration at"), "\(bare.stderr)")
        let plain = try #require(try JSONSerialization.jsonObject(with: Data(bare.stdout.utf8)) as? [String: Any])
        #expect(plain["contract"] is NSNull && (plain["message"] as? [String: Any])?["text"] as? String == "Bom dia,\n\nO relatório de março está anexo — veja.\nObrigado")
    }

    @Test func aDisabledMailboxIsNotPolledAndStatusSaysSo() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("off")
        try lab.addUser(user)
        try lab.deliver(MailLab.message(id: "off-\(user)@lab.test", subject: "Not yet"), to: user)
        let mailboxes = inboundMailbox("on", provider: "imaps", port: lab.imapsPort, user: user, lab: lab)
            + inboundMailbox("off", provider: "pops", port: lab.pop3sPort, user: user, lab: lab, extra: "enabled = false")
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: mailboxes, contractMailboxes: ["on", "off"]))
        let check = try runCarteiro(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.stderr)")
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "on"]))?.status ?? 1) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("mailbox=on") && !run.stderr.contains("mailbox=off"), "\(run.stderr)")
        let status = try runCarteiro(["status", "--config", config])
        #expect(status.stdout.contains("mailbox off: disabled (enabled = false): not polled"), "\(status.stdout)")
        #expect(check.stdout.contains("DISABLED (enabled = false): not polled") && !check.stdout.contains("every 2s"), "\(check.stdout)")
        // Asking for a poll of it is no failed poll: there is none to make.
        let poll = try runCarteiro(["poll", "--config", config, "off"])
        #expect(poll.status == 69 && poll.stderr.contains("is disabled (enabled = false)"), "\(poll.stderr)")
        // Two enabled mailboxes on one account and folder: warned.
        let twice = try directory.write("twice.conf", daemonConfiguration(state: directory.path + "/state2",
            mailboxes: inboundMailbox("a", provider: "imaps", port: lab.imapsPort, user: user, lab: lab) + inboundMailbox("b", provider: "imaps", port: lab.imapsPort, user: user, lab: lab),
            contractMailboxes: ["a", "b"]))
        let warned = try runCarteiro(["check-config", "--config", twice])
        #expect(warned.stderr.contains("mailboxes \"a\" and \"b\" read the same account and folder"), "\(warned.stderr)")
    }

    @Test func statusAsJSONAndWithABrokenConfiguration() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("stat")
        try lab.addUser(user)
        try lab.deliver(MailLab.message(id: "stat-\(user)@lab.test", subject: "Status"), to: user)
        var text = daemonConfiguration(state: directory.path + "/state",
                                       mailboxes: inboundMailbox("st", provider: "imaps", port: lab.imapsPort, user: user, lab: lab, extra: "description = \"Status inbox\""),
                                       contractMailboxes: ["st"])
        text = text.replacingOccurrences(of: "[mailbox.out]", with: "[events]\nwebhook = \"http://127.0.0.1:9/never\"\n\n[mailbox.out]")
        let config = try directory.write("carteiro.conf", text)
        _ = waitUntil(timeout: .seconds(10)) { ((try? runCarteiro(["test-mailbox", "--config", config, "st"]))?.status ?? 1) == 0 }
        let run = try runCarteiro(["run", "--once", "--config", config])
        #expect(run.status == 0, "\(run.stderr)")
        let status = try runCarteiro(["status", "--json", "--config", config])
        #expect(status.status == 3)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status.stdout)")
        #expect(document["running"] as? Bool == false)
        #expect(document["configuration"] as? String == "ok")
        let mailbox = try #require((document["mailboxes"] as? [[String: Any]])?.first)
        #expect(mailbox["name"] as? String == "st" && mailbox["contract"] as? String == "lab" && mailbox["description"] as? String == "Status inbox")
        #expect(mailbox["state"] as? String == "ok" && mailbox["handed_on"] as? Int == 1)
        let spool = try #require(document["spool"] as? [String: Any])
        #expect(spool["events"] as? Int == 1)
        #expect((document["webhook"] as? [String: Any])?["backlog"] as? Int == 1)
        #expect((document["lanes"] as? [[String: Any]])?.first?["name"] as? String == "out")
        // Every documented key is there, null when there is nothing to say; now and recorded_at too.
        for key in ["handed_on", "consecutive_failures", "last_poll", "last_success", "failing_since", "last_error", "next_poll"] {
            #expect(mailbox.keys.contains(key), "mailboxes[].\(key)")
        }
        #expect(mailbox["failing_since"] is NSNull && mailbox["last_error"] is NSNull)
        let lane = try #require((document["lanes"] as? [[String: Any]])?.first)
        for key in ["queued", "deferred", "failed", "last_error", "last_reply", "throttled_until"] { #expect(lane.keys.contains(key), "lanes[].\(key)") }
        let webhook = try #require(document["webhook"] as? [String: Any])
        for key in ["last_success", "failing_since", "last_error"] { #expect(webhook.keys.contains(key), "webhook.\(key)") }
        #expect(document["now"] is Int && document["recorded_at"] is Int)
        // A broken configuration still shows the last recorded state, and says so.
        try (text + "\nthis is = not [valid\n").write(toFile: config, atomically: true, encoding: .utf8)
        let broken = try runCarteiro(["status", "--config", config])
        #expect(broken.status == 3)
        #expect(broken.stdout.contains("the configuration is broken") && broken.stdout.contains("mailbox st: ok"), "\(broken.stdout) \(broken.stderr)")
        let brokenJSON = try runCarteiro(["status", "--json", "--config", config])
        let brokenDocument = try #require(try JSONSerialization.jsonObject(with: Data(brokenJSON.stdout.utf8)) as? [String: Any])
        #expect((brokenDocument["configuration"] as? String)?.hasPrefix("broken") == true)
        #expect((brokenDocument["mailboxes"] as? [[String: Any]])?.first?["handed_on"] as? Int == 1)
    }

    @Test func pollMakesTheRunningDaemonPollNow() throws {
        let lab = try requireLab()
        let directory = try TemporaryDirectory()
        let user = uniqueName("pollnow")
        try lab.addUser(user)
        let text = daemonConfiguration(state: directory.path + "/state", pollInterval: "1h",
                                       mailboxes: inboundMailbox("pn", provider: "imaps", port: lab.imapsPort, user: user, lab: lab)
                                           + inboundMailbox("pn2", provider: "pops", port: lab.pop3sPort, user: user, lab: lab),
                                       contractMailboxes: ["pn", "pn2"])
        let config = try directory.write("carteiro.conf", text)
        let idle = try runCarteiro(["poll", "--config", config])
        #expect(idle.status == 75 && idle.stderr.contains("the daemon is not running"), "\(idle.stderr)")
        let daemon = try DaemonProcess(config: config, spool: directory.path + "/state/events", logPath: directory.path + "/daemon.log")
        defer { _ = daemon.terminate() }
        Thread.sleep(forTimeInterval: 6) // the first polls (spread over 5 s) are done; the next is an hour away
        try lab.deliver(MailLab.message(id: "pollnow-\(user)@lab.test", subject: "Now"), to: user)
        let polled = try runCarteiro(["poll", "--config", config, "pn"])
        #expect(polled.status == 0, "\(polled.stderr) \(daemon.log.suffix(1500))")
        #expect(polled.stdout.contains("pn: 1 handed on"), "\(polled.stdout)")
        #expect(daemon.events().contains { $0.messageID == "<pollnow-\(user)@lab.test>" })
        let all = try runCarteiro(["poll", "--config", config])
        #expect(all.stdout.contains("pn: 0 handed on") && all.stdout.contains("pn2: "), "\(all.stdout)")
        let unknown = try runCarteiro(["poll", "--config", config, "pm"])
        #expect(unknown.status == 64 && unknown.stderr.contains("did you mean \"pn\"?"), "\(unknown.stderr)")
    }

    @Test func anInvalidLogLevelIsAnError() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("carteiro.conf", daemonConfiguration(state: directory.path + "/state", mailboxes: "", contractMailboxes: []))
        let run = try runCarteiro(["run", "--once", "--config", config], environment: ProcessInfo.processInfo.environment.merging(["CARTEIRO_LOG_LEVEL": "bogus"]) { $1 })
        #expect(run.status == 78)
        #expect(run.stderr.contains("CARTEIRO_LOG_LEVEL=bogus is not a level"))
    }
}
