import CarteiroMail

/// IMAP commands over an authenticated `MailSession`: one tagged command at a time, with the
/// untagged responses it produced. Literals (`{n}` at the end of a line) are read whole.
package final class IMAPClient {
    package struct Response: Sendable {
        package var tag: String
        /// OK, NO or BAD.
        package var status: String
        /// The tagged line's text after the status.
        package var text: String
        /// The untagged lines, literals replaced by their content.
        package var untagged: [String]
        package var isOK: Bool { status == "OK" }
    }

    /// An IMAP literal larger than this inside a status response is not a status response.
    package static let maximumLiteralInResponse = 1 << 20
    /// Everything a command other than a FETCH of bodies may bring back (untagged lines and
    /// literals together). A `UID SEARCH` of a million-message folder is about 8 MB; a server
    /// that sends more is flooding. Held as lines, this costs a poll at most about 4× this in
    /// memory (bench/floods: 16 MB of untagged lines peaked near 75 MB of RSS).
    package static let maximumResponseBytes = 16 << 20

    package let session: MailSession
    private var nextTag = 1
    /// The largest literal a FETCH may carry: a message body the server said was small enough.
    /// A server that announces more is lying or broken, and is not believed.
    package var maximumFetchLiteral = 64 << 20
    /// Tagged replies read while waiting for another pipelined command.
    var earlyCompletions: [String: Response] = [:]
    /// How many `* N EXISTS` the server has sent on this session: one that comes after a
    /// poll's SELECT announces a message the poll did not see.
    package private(set) var existsAnnouncements = 0

    private var announcementsWhenOpened = 0

    /// Called once the folder is (re)opened: `announcedMailSinceOpened` counts from here.
    package func markFolderOpened() { announcementsWhenOpened = existsAnnouncements }
    /// The server announced a message (`* N EXISTS`) after the folder was opened.
    package var announcedMailSinceOpened: Bool { existsAnnouncements > announcementsWhenOpened }

    /// The folder's message count as the server last told it (`* N EXISTS`, less one per
    /// `* N EXPUNGE` since); nil before the folder is opened.
    package private(set) var folderCount: Int?

    func noteUntagged(_ line: String) {
        // Most untagged lines are neither EXISTS nor EXPUNGE: their last byte says so before any split.
        guard let last = line.utf8.last else { return }
        if last == UInt8(ascii: "S") || last == UInt8(ascii: "s"), let count = IMAPResponseText.count(line, keyword: "EXISTS") {
            existsAnnouncements += 1
            folderCount = count
        } else if last == UInt8(ascii: "E") || last == UInt8(ascii: "e"), IMAPResponseText.count(line, keyword: "EXPUNGE") != nil, let count = folderCount {
            folderCount = max(count - 1, 0)
        }
    }

    package init(session: MailSession) {
        self.session = session
    }

    /// Sends `command` with a fresh tag and reads until the tagged reply.
    func takeTag() -> Int {
        defer { nextTag += 1 }
        return nextTag
    }

    package func run(_ command: String) throws(MailConnectionError) -> Response {
        try run(command, allowance: Self.maximumResponseBytes, within: nil)
    }

    /// A `UID SEARCH` in a folder of `exists` messages: its one result line may list them all
    /// (11 bytes a UID), so its allowance, and the length of that line, follow the folder's
    /// size as listings' do, up to four million messages (46 MB).
    package func search(_ command: String, exists: Int) throws(MailConnectionError) -> Response {
        let bytes = Self.searchAllowance(exists: exists)
        return try run(command, allowance: bytes, within: nil, lineLength: bytes)
    }

    package static func searchAllowance(exists: Int) -> Int {
        (1 << 20) + 11 * min(max(exists, 0), 1 << 22)
    }

    func run(_ command: String, allowance: Int, within: Duration?, lineLength: Int = MailSession.maximumLineLength) throws(MailConnectionError) -> Response {
        let tag = "C\(takeTag())"
        try session.sendLine("\(tag) \(command)")
        session.expectReply(to: Self.verb(command), bytes: allowance, within: within, lineLength: lineLength)
        var untagged: [String] = []
        while true {
            let line = try readResponse()
            if line.hasPrefix(tag + " ") {
                let rest = line.dropFirst(tag.count + 1)
                let parts = rest.split(separator: " ", maxSplits: 1)
                guard let status = parts.first.map({ $0.uppercased() }), ["OK", "NO", "BAD"].contains(status) else {
                    throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) answered `\(command.prefix(20))` with a line that is not IMAP", serverReply: line)
                }
                return Response(tag: tag, status: status, text: parts.count > 1 ? String(parts[1]) : "", untagged: untagged)
            }
            if line.hasPrefix("* BYE") {
                throw MailConnectionError(.connectionLost, endpoint: session.endpoint.description, message: "\(session.endpoint) ended the session", serverReply: line)
            }
            noteUntagged(line)
            untagged.append(line)
        }
    }

    /// One response line, with any literals it carries read and inlined.
    func readResponse() throws(MailConnectionError) -> String {
        var line = try session.readLine()
        while let size = Self.trailingLiteralSize(Array(line.utf8)), let open = line.lastIndex(of: "{") {
            guard size <= Self.maximumLiteralInResponse else {
                throw MailConnectionError(.protocolViolation, endpoint: session.endpoint.description, message: "\(session.endpoint) sent a \(size)-byte literal where a short reply was expected")
            }
            let literal = try session.readBytes(size)
            let text = String(decoding: literal, as: UTF8.self)
            line = String(line[..<open]) + (IMAPString.quoted(text) ?? "\"\"") + (try session.readLine())
        }
        return line
    }

    /// The command's name for messages: "UID FETCH", "SELECT" (never its arguments).
    static func verb(_ command: String) -> String {
        let words = command.split(separator: " ", maxSplits: 2)
        guard let first = words.first else { return "a command" }
        return first.uppercased() == "UID" && words.count > 1 ? "UID \(words[1].uppercased())" : first.uppercased()
    }

    /// LOGOUT, ignoring a server that hangs up first; nothing on a broken connection, and a
    /// server that answers LOGOUT with a flood or a trickle gets a small allowance.
    package func logout() {
        guard !session.isBroken else { return }
        _ = try? run("LOGOUT", allowance: 64 << 10, within: .seconds(10))
    }
}
