/// POP3 and SMTP replies over an authenticated `MailSession`.
package final class POP3Client {
    package let session: MailSession

    package init(session: MailSession) {
        self.session = session
    }

    /// What a status line (`+OK …`) may hold; RFC 1939 allows 512 octets.
    package static let maximumStatusBytes = 64 << 10
    /// What a listing (UIDL, LIST, CAPA) may hold: a UIDL line is at most 80 bytes (usually
    /// 20), so this is a maildrop of 400,000 messages or more; more is a flood. Held as
    /// lines, about 3× this in memory at most.
    package static let maximumListingBytes = 32 << 20

    /// A single-line command: `+OK …` returns the text, `-ERR …` throws.
    package func run(_ command: String) throws(MailConnectionError) -> String {
        try session.sendLine(command)
        return try readStatus(command)
    }

    func readStatus(_ command: String) throws(MailConnectionError) -> String {
        let verb = command.split(separator: " ").first.map { $0.uppercased() } ?? command
        session.expectReply(to: verb, bytes: Self.maximumStatusBytes)
        let line = try session.readLine()
        if line.hasPrefix("+OK") { return String(line.dropFirst(3)).trimmingLeadingSpace }
        if line.hasPrefix("-ERR") {
            throw MailConnectionError(.commandRefused, endpoint: session.endpoint.description, message: "\(session.endpoint) refused \(verb)", serverReply: line)
        }
        throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) answered \(verb) with a line that is not POP3", serverReply: line)
    }

    /// A multi-line command (CAPA, UIDL, LIST): the lines up to the terminating ".", unstuffed.
    package func runMultiline(_ command: String) throws(MailConnectionError) -> [String] {
        _ = try run(command)
        session.expectReply(to: command, bytes: Self.maximumListingBytes)
        var lines: [String] = []
        while true {
            let line = try session.readLine()
            if line == "." { return lines }
            lines.append(line.hasPrefix("..") ? String(line.dropFirst()) : line)
        }
    }

    /// RETR or TOP: the message's bytes, dot-unstuffed, lines joined with CRLF (RFC 1939 §3).
    /// `bytes` bounds what the server may send for it.
    package func retrieve(_ command: String, bytes: Int) throws(MailConnectionError) -> [UInt8] {
        _ = try run(command)
        session.expectReply(to: command, bytes: bytes)
        return try readMessage()
    }

    /// The lines of a multi-line response up to the terminating ".", dot-unstuffed, as bytes.
    func readMessage() throws(MailConnectionError) -> [UInt8] {
        var message: [UInt8] = []
        while true {
            let line = try session.readLineBytes()
            if line.count == 1 && line[0] == UInt8(ascii: ".") { return message }
            message.append(contentsOf: line.first == UInt8(ascii: ".") ? line.dropFirst() : line[...])
            message.append(13)
            message.append(10)
        }
    }

    /// The first word of each CAPA line (RFC 2449), upper-cased; empty when CAPA is refused.
    package func capabilities() throws(MailConnectionError) -> Set<String> {
        do throws(MailConnectionError) {
            return Set(try runMultiline("CAPA").compactMap { $0.split(separator: " ").first.map { $0.uppercased() } })
        } catch {
            if error.kind == .commandRefused { return [] }
            throw error
        }
    }

    /// RETR or TOP for several messages. `pipelined` (the server lists PIPELINING in CAPA):
    /// every command goes out in one write and the responses are read in order, one round trip
    /// for the lot. Every response is read even after a refusal, so the session stays in step;
    /// then the first refusal is thrown.
    package func retrieve(_ commands: [(command: String, bytes: Int)], pipelined: Bool) throws(MailConnectionError) -> [[UInt8]] {
        guard pipelined, commands.count > 1 else {
            var messages: [[UInt8]] = []
            for (command, bytes) in commands { messages.append(try retrieve(command, bytes: bytes)) }
            return messages
        }
        try session.send(Array(commands.map { $0.command + "\r\n" }.joined().utf8))
        var messages: [[UInt8]] = []
        var refusal: MailConnectionError?
        for (command, bytes) in commands {
            session.expectReply(to: command, bytes: Self.maximumStatusBytes)
            let line = try session.readLine()
            if line.hasPrefix("+OK") {
                session.expectReply(to: command, bytes: bytes)
                messages.append(try readMessage())
            } else if line.hasPrefix("-ERR") {
                messages.append([])
                let verb = command.split(separator: " ").first.map(String.init) ?? command
                refusal = refusal ?? MailConnectionError(.commandRefused, endpoint: session.endpoint.description, message: "\(session.endpoint) refused \(verb)", serverReply: line)
            } else {
                throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) answered \(command) with a line that is not POP3", serverReply: line)
            }
        }
        if let refusal { throw refusal }
        return messages
    }

    package func quit() throws(MailConnectionError) {
        _ = try run("QUIT")
    }
}

package final class SMTPClient {
    package struct Reply: Sendable {
        package var code: Int
        package var lines: [String]
        package var text: String { lines.joined(separator: " / ") }
    }

    package let session: MailSession
    /// How long one reply may take in all, however it trickles: by default the longest of RFC
    /// 5321 §4.5.3.2's timeouts (10 minutes, for the reply to the final dot).
    package let maximumReplyTime: Duration

    package init(session: MailSession, maximumReplyTime: Duration = .seconds(600)) {
        self.session = session
        self.maximumReplyTime = maximumReplyTime
    }

    /// What one reply may hold: RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets, and an
    /// EHLO reply lists a few dozen extensions.
    package static let maximumReplyBytes = 64 << 10

    /// Sends a command and reads its (possibly multi-line) reply.
    package func run(_ command: String) throws(MailConnectionError) -> Reply {
        try session.sendLine(command)
        return try readReply(to: command)
    }

    /// Whether the server offered PIPELINING (RFC 2920) in the EHLO reply libcurl read last:
    /// the capability lines after the last 220 (the greeting, or STARTTLS's go-ahead).
    package var offersPipelining: Bool { offers("PIPELINING") }

    /// Whether the EHLO reply libcurl read last lists `keyword` (PIPELINING, SMTPUTF8 …).
    package func offers(_ keyword: String) -> Bool {
        let lines = session.loginTranscript
        let start = lines.lastIndex { $0.hasPrefix("220") } ?? lines.startIndex
        return lines[start...].contains { line in
            (line.hasPrefix("250-") || line.hasPrefix("250 "))
                && line.dropFirst(4).split(separator: " ").first?.uppercased() == keyword
        }
    }

    /// RFC 2920: the commands go out in one write and their replies are read in order.
    package func runPipelined(_ commands: [String]) throws(MailConnectionError) -> [Reply] {
        try session.send(Self.pipelined(commands))
        return try readReplies(to: commands)
    }

    /// Commands as they go out together, each with its CRLF.
    package static func pipelined(_ commands: [String]) -> [UInt8] {
        Array(commands.map { $0 + "\r\n" }.joined().utf8)
    }

    /// The replies to commands sent together, in order.
    package func readReplies(to commands: [String]) throws(MailConnectionError) -> [Reply] {
        var replies: [Reply] = []
        for command in commands { replies.append(try readReply(to: command)) }
        return replies
    }

    /// QUIT at the end of a session: nothing on a broken connection, and no more than 10 s
    /// for the goodbye (a server that trickles it must not hold the lane).
    package func quit() {
        guard !session.isBroken, (try? session.sendLine("QUIT")) != nil else { return }
        _ = try? readReply(to: "QUIT", within: .seconds(10))
    }

    /// `command` names the reply in errors: its verb only, never its arguments.
    package func readReply(to command: String, within: Duration? = nil) throws(MailConnectionError) -> Reply {
        let verb = command.split(separator: " ").first.map { $0.uppercased() } ?? "the command"
        session.expectReply(to: verb == "." ? "the end of the message" : verb, bytes: Self.maximumReplyBytes, within: within ?? maximumReplyTime)
        var lines: [String] = []
        while true {
            let line = try session.readLine()
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)),
                  bytes.count == 3 || bytes[3] == 32 || bytes[3] == 45 else {
                throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) sent a line that is not an SMTP reply", serverReply: line)
            }
            lines.append(bytes.count > 4 ? String(line.dropFirst(4)) : "")
            if bytes.count == 3 || bytes[3] == 32 { return Reply(code: code, lines: lines) }
        }
    }
}

extension String {
    var trimmingLeadingSpace: String { String(drop { $0 == " " }) }
}
