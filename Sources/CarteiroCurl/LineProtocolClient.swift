/// POP3 and SMTP replies over an authenticated `MailSession`.
public final class POP3Client {
    public let session: MailSession

    public init(session: MailSession) {
        self.session = session
    }

    /// A single-line command: `+OK …` returns the text, `-ERR …` throws.
    public func run(_ command: String) throws(MailConnectionError) -> String {
        try session.sendLine(command)
        let line = try session.readLine()
        if line.hasPrefix("+OK") { return String(line.dropFirst(3)).trimmingLeadingSpace }
        let verb = command.split(separator: " ").first.map(String.init) ?? command
        if line.hasPrefix("-ERR") {
            throw MailConnectionError(.commandRefused, endpoint: session.endpoint.description, message: "\(session.endpoint) refused \(verb)", serverReply: line)
        }
        throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) answered \(verb) with a line that is not POP3", serverReply: line)
    }

    /// A multi-line command (CAPA, UIDL, LIST): the lines up to the terminating ".", unstuffed.
    public func runMultiline(_ command: String) throws(MailConnectionError) -> [String] {
        _ = try run(command)
        var lines: [String] = []
        while true {
            let line = try session.readLine()
            if line == "." { return lines }
            lines.append(line.hasPrefix("..") ? String(line.dropFirst()) : line)
        }
    }

    /// RETR or TOP: the message's bytes, dot-unstuffed, lines joined with CRLF (RFC 1939 §3).
    public func retrieve(_ command: String) throws(MailConnectionError) -> [UInt8] {
        _ = try run(command)
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
    public func capabilities() throws(MailConnectionError) -> Set<String> {
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
    public func retrieve(_ commands: [String], pipelined: Bool) throws(MailConnectionError) -> [[UInt8]] {
        guard pipelined, commands.count > 1 else {
            var messages: [[UInt8]] = []
            for command in commands { messages.append(try retrieve(command)) }
            return messages
        }
        try session.send(Array(commands.map { $0 + "\r\n" }.joined().utf8))
        var messages: [[UInt8]] = []
        var refusal: MailConnectionError?
        for command in commands {
            let line = try session.readLine()
            if line.hasPrefix("+OK") {
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

    public func quit() throws(MailConnectionError) {
        _ = try run("QUIT")
    }
}

public final class SMTPClient {
    public struct Reply: Sendable {
        public var code: Int
        public var lines: [String]
        public var text: String { lines.joined(separator: " / ") }
    }

    public let session: MailSession

    public init(session: MailSession) {
        self.session = session
    }

    /// Sends a command and reads its (possibly multi-line) reply.
    public func run(_ command: String) throws(MailConnectionError) -> Reply {
        try session.sendLine(command)
        return try readReply()
    }

    /// Whether the server offered PIPELINING (RFC 2920) in the EHLO reply libcurl read last:
    /// the capability lines after the last 220 (the greeting, or STARTTLS's go-ahead).
    public var offersPipelining: Bool {
        let lines = session.loginTranscript
        let start = lines.lastIndex { $0.hasPrefix("220") } ?? lines.startIndex
        return lines[start...].contains { line in
            (line.hasPrefix("250-") || line.hasPrefix("250 "))
                && line.dropFirst(4).split(separator: " ").first?.uppercased() == "PIPELINING"
        }
    }

    /// RFC 2920: the commands go out in one write and their replies are read in order.
    public func runPipelined(_ commands: [String]) throws(MailConnectionError) -> [Reply] {
        try session.send(Array(commands.map { $0 + "\r\n" }.joined().utf8))
        var replies: [Reply] = []
        for _ in commands { replies.append(try readReply()) }
        return replies
    }

    public func readReply() throws(MailConnectionError) -> Reply {
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
