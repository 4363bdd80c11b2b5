import CarteiroConfig
import CarteiroCurl
import CarteiroEvents
import CarteiroJSON
import CarteiroMail
import CarteiroOutbound
import Foundation

/// What each fuzz target does with one input: the parsers that read what strangers write.
/// The libFuzzer entry points (`Fuzz/NAME.swift`, built by `scripts/fuzz`) call these, and the
/// test suite replays every input a fuzzer ever found (`Tests/CarteiroFuzzingTests`) through
/// the same functions, so a finding stays fixed. A target traps, hangs or leaks, or it is fine:
/// the functions return nothing.
package enum FuzzTargets {
    package static let all: [(name: String, run: @Sendable ([UInt8]) -> Void)] = [
        ("config", config), ("message", message), ("imap", imap), ("pop3", pop3), ("smtp", smtp), ("submission", submission),
        ("json", json), ("tnef", tnef), ("uuencode", uuencode), ("rules", rules),
    ]

    /// Routing rules: a pattern (up to the first NUL) and a header (the rest), as an operator and
    /// a stranger write them. The pattern is compiled as a regular expression, a glob and an
    /// address, and as a whole rule against the header; every match stays within its budget
    /// and agrees with an unbounded one, and the rules never report a rule that is not there.
    package static func rules(_ bytes: [UInt8]) {
        let split = bytes.firstIndex(of: 0) ?? bytes.count
        let pattern = String(decoding: bytes[..<split], as: UTF8.self)
        let text = String(decoding: bytes[min(split + 1, bytes.count)...], as: UTF8.self)
        for caseInsensitive in [false, true] {
            guard let regex = try? SafeRegex(pattern, caseInsensitive: caseInsensitive) else { continue }
            var budget = 200_000
            let bounded = regex.matches(text, budget: &budget)
            if let bounded {
                if budget < 0 { fatalError("a match went past its budget") }
                if bounded != regex.matches(text) { fatalError("a bounded match disagrees with an unbounded one") }
            }
        }
        var budget = 200_000
        let glob = Glob(pattern, caseInsensitive: true)
        if let matched = glob.matches(text.lowercased(), budget: &budget), budget < 0 || matched && glob.isLiteral && text.lowercased() != pattern.lowercased().replacingOccurrences(of: "\\", with: "") && !pattern.contains("\\") {
            fatalError("a literal glob matched another text")
        }
        _ = AddressPattern(pattern).matches(text, budget: &budget)
        // The pattern as a rule of a configuration, against the text as a header.
        guard !pattern.contains("'"), !pattern.contains("\n"), !pattern.contains("\r") else { return }
        let configuration = ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "o"
            [mailbox.o]
            type = "outbound"
            server = "h"
            sender = "a@b.c"
            [rule.regex]
            header = "Subject"
            regex = '\(pattern)'
            add_tags = ["r"]
            [rule.glob]
            header = "To"
            glob = '\(pattern)'
            [rule.address]
            from = '\(pattern)'
            stop = true
            [rule.drop]
            drop = "all"
            """, file: "fuzz.conf").configuration
        guard let rules = configuration?.rules else { return }
        let (header, _) = HeaderBlock.parse(Array(text.utf8)[...])
        let routing = RoutingRules(rules).route(header, mailbox: "in", contract: nil, verdict: "unknown", budget: 500_000)
        if routing.rules.contains(where: { name in !rules.contains { $0.name == name } }) { fatalError("a rule that is not there matched") }
        if routing.problem == nil, routing.dropped == nil, !routing.rules.contains("address") { fatalError("neither stopped nor dropped") }
    }

    /// An Outlook `winmail.dat` as a stranger may craft it: its attributes, MAPI properties,
    /// compressed RTF and the RTF inside, each read alone too. What comes out is never larger
    /// than what the format allows from this input.
    package static func tnef(_ bytes: [UInt8]) {
        if let content = TNEF.read(bytes) {
            let files = content.attachments.reduce(0) { $0 + $1.data.count }
            if files > bytes.count { fatalError("TNEF attachments larger than the stream") }
            if content.attachments.count > 500 { fatalError("TNEF attachments beyond the cap") }
        }
        if let rtf = CompressedRTF.decompress(bytes), rtf.count > MessageLimits.maximumDecodedBytes {
            fatalError("compressed RTF beyond the cap")
        }
        let document = RTFText.read(bytes)
        if (document.text?.utf8.count ?? 0) > bytes.count * 4 + 16 { fatalError("RTF text larger than its source allows") }
        // As the message parser meets it: a TNEF part of an Outlook message.
        let message = Array("Content-Type: application/ms-tnef\r\n\r\n".utf8) + bytes
        _ = MailMessage.parse(message)
    }

    /// Old encodings in text: uuencoded blocks (and a body in that transfer encoding) and BinHex.
    /// Decoding never grows past the input; the text loses only the blocks taken out.
    package static func uuencode(_ bytes: [UInt8]) {
        let (text, files) = UUEncode.extract(from: bytes)
        if text.count > bytes.count { fatalError("uuencode extraction grew the text") }
        if files.reduce(0, { $0 + $1.data.count }) > bytes.count { fatalError("uuencoded files larger than their text") }
        if files.isEmpty && text != bytes { fatalError("text changed without a block taken out") }
        if UUEncode.decodeBody(bytes).data.count > bytes.count { fatalError("a uuencoded body grew") }
        if let file = BinHex.decode(bytes), file.data.count > MessageLimits.maximumDecodedBytes { fatalError("BinHex beyond the cap") }
    }

    /// Carteiro's own files read back (a state file cut short, a control request planted by a
    /// member of the desk's group): parsed, and what parses renders and parses again the same.
    package static func json(_ bytes: [UInt8]) {
        guard let value = JSONValue.parse(bytes) else { return }
        guard JSONValue.parse(value.renderedBytes()) == value, JSONValue.parse(value.renderedCompact()) == value else {
            fatalError("JSON did not read back as it was written")
        }
    }

    /// The configuration language, then the whole configuration (schema, validation, summary).
    package static func config(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let outcome = ConfigurationFile.load(text: text, file: "fuzz.conf", directory: "/nonexistent", environment: [:])
        for diagnostic in outcome.diagnostics { _ = diagnostic.description }
        if let configuration = outcome.configuration { _ = ConfigSummary.render(configuration) }
    }

    static let builder = EventBuilder(threading: RequestThreading(secret: Array("fuzzing-secret-key-0123456789abcdef".utf8)),
                                      ownAddresses: ["desk@desk.example"])

    /// A message as a server hands it over: parsed, classified, threaded, rendered as an event.
    package static func message(_ bytes: [UInt8]) {
        var input = EventBuilder.Input(mailbox: "fuzz", contract: "c", origin: .imap(uidValidity: 1, uid: 1),
                                       receivedAt: 0, bytes: bytes, size: bytes.count, oversize: false)
        // A mailbox that trusts a server: whatever Authentication-Results a message carries is read.
        input.authservIDs = ["mx.fuzz.example", "a"]
        let (event, _) = builder.build(input)
        // The event as the ingest writes it must be the document `json()` describes, byte for byte.
        let written = event.renderedBytes()
        if written != event.json().renderedBytes() { fatalError("the event written differs from its JSON tree") }
        // The pieces alone too, on the first line, as headers quote them.
        let line = Array(bytes.prefix { $0 != 10 })
        _ = EncodedWords.decode(line)
        _ = MailDate.parse(String(decoding: line, as: UTF8.self)).map(MailDate.iso8601)
        _ = AddressList.parse(line)
        _ = AuthenticationResults.parse(line)
    }

    /// The first byte picks how the bytes arrive (chunk sizes), the rest is the server.
    static func session(_ bytes: [UInt8], _ service: MailEndpoint.ServiceProtocol) -> MailSession {
        let chunking = bytes.first.map { [Int($0 & 0x0F) + 1, Int($0 >> 4) * 97 + 1, 65_536] } ?? [65_536]
        let endpoint = MailEndpoint(serviceProtocol: service, host: "fuzz.example", port: 1, security: .plain, tls: TLSSettings(), timeout: .seconds(1))
        return MailSession(replaying: .init(bytes: Array(bytes.dropFirst()), chunkSizes: chunking), endpoint: endpoint)
    }

    /// An IMAP server's answers: to a plain command, to a listing of sizes, to a FETCH of bodies.
    package static func imap(_ bytes: [UInt8]) {
        let client = IMAPClient(session: session(bytes, .imap))
        client.maximumFetchLiteral = 1 << 20
        _ = try? client.run("EXAMINE INBOX")
        _ = try? client.fetch("UID FETCH 1:* (UID RFC822.SIZE FLAGS)", bytes: 4 << 20)
        if let (responses, _) = try? client.fetch("UID FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[])", bytes: 4 << 20) {
            for response in responses { _ = (response.uid, response.hasInvalidUID, response.items["RFC822.SIZE"]?.number) }
        }
        _ = try? client.run("UID SEARCH UNSEEN").untagged.compactMap(IMAPResponseText.searchResults)
    }

    /// A POP3 server's answers: a listing, a message, a pipelined batch.
    package static func pop3(_ bytes: [UInt8]) {
        let client = POP3Client(session: session(bytes, .pop3))
        _ = try? client.capabilities()
        _ = try? client.runMultiline("UIDL")
        _ = try? client.retrieve("RETR 1", bytes: 1 << 20)
        _ = try? client.retrieve([("RETR 2", 1 << 20), ("TOP 3 0", 1 << 20)], pipelined: true)
    }

    /// An SMTP server's replies, one command after another and pipelined.
    package static func smtp(_ bytes: [UInt8]) {
        let client = SMTPClient(session: session(bytes, .smtp))
        _ = try? client.run("EHLO fuzz.example")
        _ = try? client.runPipelined(["MAIL FROM:<a@b.example>", "RCPT TO:<c@d.example>", "DATA"])
        _ = try? client.readReply(to: ".")
    }

    static let submissionConfiguration: Configuration? = ConfigurationFile.load(text: """
        [daemon]
        system_outbound = "out"
        [mailbox.out]
        type = "outbound"
        server = "smtp.example"
        sender = "Desk <desk@desk.example>"
        [user.ana]
        name = "Ana"
        email = "ana@desk.example"
        [workflow.w.step.s]
        to_users = ["ana"]
        subject = "Pedido {{request.id}}: {{request.subject}}"
        body = "Olá {{recipient.name}}, {{#request.subject}}{{request.subject}}{{/request.subject}}."
        """, file: "fuzz.conf").configuration

    /// A submission as the desk drops it (JSON), resolved and built into messages; and the
    /// bytes as a step's template.
    package static func submission(_ bytes: [UInt8]) {
        guard let configuration = submissionConfiguration else { return }
        let resolver = SubmissionResolver(configuration: configuration, threading: RequestThreading(secret: Array("k".utf8)), hostname: "desk.example")
        if case .success(let submission) = Submission.decode(Data(bytes)) {
            _ = resolver.resolve(submission, queueID: "fuzz-1", now: Date(timeIntervalSince1970: 0))
        }
        let template = String(decoding: bytes, as: UTF8.self)
        let templated = ConfigurationFile.load(text: """
            [daemon]
            system_outbound = "out"
            [mailbox.out]
            type = "outbound"
            server = "smtp.example"
            sender = "desk@desk.example"
            [workflow.w.step.s]
            subject = "s"
            body = '''\(template.replacingOccurrences(of: "'''", with: ""))'''
            """, file: "t.conf").configuration
        if let templated {
            let templating = SubmissionResolver(configuration: templated, threading: RequestThreading(secret: Array("k".utf8)), hostname: "desk.example")
            _ = templating.resolve(Submission(workflow: "w", step: "s", to: ["a@b.example"], vars: ["x": "y", "a.b": "c"]), queueID: "fuzz-2",
                                   now: Date(timeIntervalSince1970: 0))
        }
    }
}
