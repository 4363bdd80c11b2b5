/// A value in an IMAP response (RFC 3501 §4): atoms and numbers, strings (quoted or literal,
/// as bytes), parenthesised lists, NIL.
package indirect enum IMAPValue: Sendable {
    case atom(String)
    case string([UInt8])
    case list([IMAPValue])
    case nil_

    package var number: UInt64? { if case .atom(let text) = self { return UInt64(text) } else { return nil } }
    package var bytes: [UInt8]? {
        switch self {
        case .string(let bytes): bytes
        case .atom(let text): Array(text.utf8)
        default: nil
        }
    }
}

/// One `* N FETCH (…)` response: its items by name (`UID`, `RFC822.SIZE`, `BODY[]` …).
package struct IMAPFetchResponse: Sendable {
    package var sequence: UInt32
    package var items: [String: IMAPValue]
    /// The UID, when the response carries one that can be a UID (RFC 3501 §2.3.1.1: a
    /// non-zero 32-bit number); anything else is not believed.
    package var uid: UInt32? { items["UID"]?.number.flatMap { UInt32(exactly: $0) }.flatMap { $0 == 0 ? nil : $0 } }
    /// A response whose UID item is present but not a valid UID: the server is broken or lying.
    package var hasInvalidUID: Bool { items["UID"] != nil && uid == nil }
}

extension IMAPClient {
    /// Sends `command` (a `UID FETCH`) and collects every FETCH response until the tagged reply.
    /// Message bodies arrive as literals and are read as bytes, never as text.
    /// `bytes` bounds everything the answer may hold (the server's word on sizes is only
    /// believed up to there).
    package func fetch(_ command: String, bytes: Int) throws(MailConnectionError) -> (responses: [IMAPFetchResponse], status: Response) {
        try finishFetch(tag: startFetch(command), bytes: bytes)
    }

    /// Sends a FETCH without waiting for its answer, so that the server streams it while the
    /// caller works on the previous one (RFC 3501 §5.5 pipelining). Read it with `finishFetch`.
    package func startFetch(_ command: String) throws(MailConnectionError) -> String {
        let tag = "C\(takeTag())"
        try session.sendLine("\(tag) \(command)")
        return tag
    }

    package func finishFetch(tag: String, bytes: Int) throws(MailConnectionError) -> (responses: [IMAPFetchResponse], status: Response) {
        // Pipelined commands may complete out of order: a reply read earlier is waiting here.
        if let early = earlyCompletions.removeValue(forKey: tag) { return ([], early) }
        session.expectReply(to: "UID FETCH", bytes: bytes)
        var responses: [IMAPFetchResponse] = []
        var other: [String] = []
        while true {
            let line = try session.readLineBytes()
            if let (lineTag, status, text) = Self.taggedReply(line), lineTag.hasPrefix("C") {
                let response = Response(tag: lineTag, status: status, text: text, untagged: lineTag == tag ? other : [])
                if lineTag == tag { return (responses, response) }
                earlyCompletions[lineTag] = response
                continue
            }
            if let fetch = try parseFetch(line) {
                responses.append(fetch)
            } else {
                // A response with a literal that is not a FETCH: read past the literal.
                var current = line
                while let size = Self.trailingLiteralSize(current) {
                    guard size <= maximumFetchLiteral else {
                        throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description,
                                                  message: "\(session.endpoint) announced a \(size)-byte literal, more than the \(maximumFetchLiteral) bytes allowed")
                    }
                    _ = try session.readBytes(size)
                    current = try session.readLineBytes()
                }
                let text = String(decoding: line, as: UTF8.self)
                noteUntagged(text)
                other.append(text)
            }
        }
    }

    /// `C12 OK done` → ("C12", "OK", "done"); nil for untagged and continuation lines.
    static func taggedReply(_ line: [UInt8]) -> (tag: String, status: String, text: String)? {
        guard let first = line.first, first != UInt8(ascii: "*"), first != UInt8(ascii: "+") else { return nil }
        let words = String(decoding: line, as: UTF8.self).split(separator: " ", maxSplits: 2)
        guard words.count >= 2 else { return nil }
        let status = words[1].uppercased()
        guard status == "OK" || status == "NO" || status == "BAD" else { return nil }
        return (String(words[0]), status, words.count > 2 ? String(words[2]) : "")
    }

    /// `{123}` or `{123+}` (RFC 7888) at the end of a line: the literal's size. Digits only (a
    /// `{-10}` is no literal), and a number beyond Int is none either.
    static func trailingLiteralSize(_ line: [UInt8]) -> Int? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = line[(open + 1)..<(line.count - 1)]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// Parses `* N FETCH (…)` starting with `line`, reading literals and continuation lines from
    /// the session as they come. nil when the line is not a FETCH response.
    func parseFetch(_ first: [UInt8]) throws(MailConnectionError) -> IMAPFetchResponse? {
        // "* 12 FETCH ("
        guard first.count > 10, first[0] == UInt8(ascii: "*"), first[1] == 32 else { return nil }
        var i = 2
        var sequence: UInt32 = 0
        while i < first.count, first[i] >= 48, first[i] <= 57 { sequence = sequence &* 10 &+ UInt32(first[i] - 48); i += 1 }
        let keyword = Array(" FETCH (".utf8)
        guard i > 2, first.count >= i + keyword.count, Array(first[i..<(i + keyword.count)]).map({ $0 | ($0 >= 65 && $0 <= 90 ? 0x20 : 0) }) == Array(" fetch (".utf8) else { return nil }
        var reader = ResponseReader(line: first, position: i + keyword.count, session: session, maximumLiteral: maximumFetchLiteral)
        let values = try reader.listBody()
        var items: [String: IMAPValue] = [:]
        var k = 0
        while k + 1 < values.count {
            // Item names come in capitals from every server seen; others are made so.
            if case .atom(let name) = values[k] { items[name.utf8.contains(where: { $0 >= 97 && $0 <= 122 }) ? name.uppercased() : name] = values[k + 1] }
            k += 2
        }
        return IMAPFetchResponse(sequence: sequence, items: items)
    }

    /// Reads IMAP values across lines and literals.
    struct ResponseReader {
        var line: [UInt8]
        var position: Int
        let session: MailSession
        let maximumLiteral: Int
        var depth = 0

        static let maximumDepth = 32

        mutating func listBody() throws(MailConnectionError) -> [IMAPValue] {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maximumDepth else {
                throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) sent lists nested too deeply")
            }
            var values: [IMAPValue] = []
            while true {
                while position < line.count, line[position] == 32 { position += 1 }
                guard position < line.count else {
                    throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) ended a FETCH response in the middle of a list")
                }
                let c = line[position]
                if c == UInt8(ascii: ")") { position += 1; return values }
                values.append(try value())
            }
        }

        mutating func value() throws(MailConnectionError) -> IMAPValue {
            let c = line[position]
            if c == UInt8(ascii: "(") {
                position += 1
                return .list(try listBody())
            }
            if c == UInt8(ascii: "\"") {
                position += 1
                var bytes: [UInt8] = []
                while position < line.count, line[position] != UInt8(ascii: "\"") {
                    if line[position] == UInt8(ascii: "\\"), position + 1 < line.count { position += 1 }
                    bytes.append(line[position])
                    position += 1
                }
                position += 1
                return .string(bytes)
            }
            if c == UInt8(ascii: "{"), let size = IMAPClient.trailingLiteralSize(Array(line[position...])) {
                guard size <= maximumLiteral else {
                    throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description,
                                              message: "\(session.endpoint) announced a \(size)-byte literal, more than the \(maximumLiteral) bytes this fetch allows")
                }
                let bytes = try session.readBytes(size)
                line = try session.readLineBytes()
                position = 0
                return .string(bytes)
            }
            // An atom; section brackets may hold spaces and parentheses: BODY[HEADER.FIELDS (A B)].
            let start = position
            var brackets = 0
            while position < line.count {
                let b = line[position]
                if b == UInt8(ascii: "[") { brackets += 1 } else if b == UInt8(ascii: "]") { brackets -= 1 }
                else if brackets == 0 && (b == 32 || b == UInt8(ascii: ")") || b == UInt8(ascii: "(")) { break }
                position += 1
            }
            let bytes = line[start..<position]
            // NIL in any case, told from the bytes (no uppercased copy of every atom).
            if bytes.count == 3, bytes.elementsEqual("NIL".utf8, by: { $0 & 0xDF == $1 }) { return .nil_ }
            return .atom(String(decoding: bytes, as: UTF8.self))
        }
    }
}

/// IMAP sequence sets: [3, 4, 5, 9] → "3:5,9".
package enum IMAPSequenceSet {
    package static func render(_ uids: [UInt32]) -> String {
        let sorted = uids.sorted()
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index]):\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}
