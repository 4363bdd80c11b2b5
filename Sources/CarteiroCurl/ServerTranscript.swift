import CCurl
import Foundation

/// The last lines the server sent while libcurl drove the session (greeting, capabilities,
/// the reply to a login). Only server-to-client lines are kept: client lines carry credentials.
final class ServerTranscript {
    /// Enough to hold a greeting, a capability list and the failing reply.
    static let maximumLines = 40
    /// A server line longer than this is cut: it is for error messages, not for parsing.
    static let maximumLineLength = 400

    private(set) var lines: [String] = []
    /// The protocol the first line should speak (set by the session); nil: not checked.
    var expected: MailEndpoint.ServiceProtocol?
    /// The server's first line spoke another protocol than `expected`: which one, and the line.
    /// libcurl would wait for a greeting it understands until the timeout; the session stops
    /// at once instead (`shouldAbort`).
    private(set) var foreignGreeting: (speaks: String, line: String)?
    var shouldAbort: Bool { foreignGreeting != nil }

    /// What a greeting says the port speaks.
    static func speaker(of line: String) -> (name: String, protocol: MailEndpoint.ServiceProtocol?) {
        if line.hasPrefix("* OK") || line.hasPrefix("* PREAUTH") || line.hasPrefix("* BYE") { return ("IMAP", .imap) }
        if line.hasPrefix("+OK") || line.hasPrefix("-ERR") { return ("POP3", .pop3) }
        let bytes = Array(line.utf8)
        if bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }), bytes.count == 3 || bytes[3] == 32 || bytes[3] == 45 { return ("SMTP (or FTP)", .smtp) }
        if line.hasPrefix("SSH-") { return ("SSH", nil) }
        if line.hasPrefix("HTTP/") { return ("HTTP", nil) }
        return ("an unknown protocol", nil)
    }
    /// libcurl said the TCP connection was established (its "Connected to" note).
    private(set) var tcpConnected = false
    /// "TLSv1.3 / TLS_AES_256_GCM_SHA384", from libcurl's note after the handshake.
    private(set) var tlsDescription: String?

    /// libcurl offered the server a TLS session of an earlier connection ("SSL re-using session ID").
    private(set) var tlsSessionOffered = false
    /// The server sent its certificate: a full handshake (a resumed one sends none).
    private(set) var tlsCertificateReceived = false
    /// The handshake resumed an earlier session: offered, and the server skipped its certificate.
    var tlsResumed: Bool { tlsDescription != nil && tlsSessionOffered && !tlsCertificateReceived }

    /// libcurl's informational notes: only the facts above are kept.
    func note(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix("Connected to ") { tcpConnected = true }
        if text.hasPrefix("SSL re-using session ID") || text.hasPrefix("SSL reusing session ID") { tlsSessionOffered = true }
        if text.contains("(IN), TLS handshake, Certificate (11)") { tlsCertificateReceived = true }
        if text.hasPrefix("SSL connection using ") {
            tlsDescription = String(text.dropFirst("SSL connection using ".count)).trimmingCharacters(in: ["\n", "\r"])
        }
    }

    func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        for raw in text.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" || $0 == "\r" }) {
            var line = String(raw)
            if line.count > Self.maximumLineLength { line = String(line.prefix(Self.maximumLineLength)) + "…" }
            if lines.isEmpty, foreignGreeting == nil, let expected, !line.isEmpty {
                let speaker = Self.speaker(of: line)
                if speaker.protocol != expected { foreignGreeting = (speaker.name, line) }
            }
            lines.append(line)
        }
        if lines.count > Self.maximumLines { lines.removeFirst(lines.count - Self.maximumLines) }
    }

    /// The last line that reads like a refusal (`NO`, `BAD`, `-ERR`, a 4xx/5xx reply), else the last line.
    var lastRefusal: String? {
        let refusal = lines.last { line in
            let words = line.split(separator: " ", maxSplits: 2)
            if words.count >= 2, words[1] == "NO" || words[1] == "BAD" { return true }
            if line.hasPrefix("-ERR") { return true }
            if let code = Int(line.prefix(3)), code >= 400 { return true }
            return false
        }
        return refusal ?? lines.last
    }
}
