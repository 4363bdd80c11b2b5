import CarteiroMail
import Foundation

/// Carteiro's own Message-IDs carry the request they were sent for and a keyed hash, so that
/// a reply threads back to its request and a forged or foreign id does not.
///
/// Form: `<carteiro.R.NONCE.MAC@HOST>` with MAC = the first 20 hex digits of
/// HMAC-SHA-256(secret, "R.NONCE"). R is limited to letters, digits, `-` and `_`.
package struct RequestThreading: Sendable {
    package let secret: [UInt8]
    /// The subject tag's prefix: `[REQ#R]`.
    package let tagPrefix: String

    package init(secret: [UInt8], tagPrefix: String = "REQ#") {
        self.secret = secret
        self.tagPrefix = tagPrefix
    }

    package enum Match: String, Sendable {
        case messageID = "message-id"
        case subjectTag = "subject-tag"
    }

    static func isRequestID(_ text: Substring) -> Bool {
        !text.isEmpty && text.count <= 64 && text.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "-" || $0 == "_"
        }
    }

    func mac(request: Substring, nonce: Substring) -> String {
        String(Digest.hex(Digest.hmacSHA256(key: secret, data: Array("\(request).\(nonce)".utf8))).prefix(20))
    }

    /// A new Message-ID for a message about `request`.
    package func messageID(request: String, nonce: String, host: String) -> String? {
        guard Self.isRequestID(request[...]), Self.isRequestID(nonce[...]) else { return nil }
        return "<carteiro.\(request).\(nonce).\(mac(request: request[...], nonce: nonce[...]))@\(host)>"
    }

    /// The request a Message-ID was made for, if Carteiro made it with this secret.
    package func request(fromMessageID id: String) -> String? {
        var text = Substring(id)
        if text.hasPrefix("<") { text = text.dropFirst() }
        if text.hasSuffix(">") { text = text.dropLast() }
        guard let at = text.lastIndex(of: "@") else { return nil }
        let local = text[..<at].split(separator: ".", omittingEmptySubsequences: false)
        guard local.count == 4, local[0] == "carteiro", Self.isRequestID(local[1]), Self.isRequestID(local[2]) else { return nil }
        // Constant-time comparison: the MAC is the secret part.
        let expected = Array(mac(request: local[1], nonce: local[2]).utf8), given = Array(local[3].utf8)
        guard expected.count == given.count else { return nil }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0 ? String(local[1]) : nil
    }

    /// The request tag in a subject (`Re: [REQ#1234] Impressora`), if any.
    package func request(fromSubject subject: String) -> String? {
        // On bytes: Foundation's range(of:) went through ICU and showed in ingest profiles.
        let marker = Array(("[" + tagPrefix).utf8)
        let bytes = Array(subject.utf8)
        guard bytes.count > marker.count else { return nil }
        var i = 0
        while i + marker.count <= bytes.count {
            if bytes[i] == marker[0], bytes[i..<(i + marker.count)].elementsEqual(marker) {
                let start = i + marker.count
                if let close = bytes[start...].firstIndex(of: UInt8(ascii: "]")) {
                    let id = Substring(String(decoding: bytes[start..<close], as: UTF8.self))
                    if Self.isRequestID(id) { return String(id) }
                }
                i = start
            } else {
                i += 1
            }
        }
        return nil
    }

    /// Which request a message follows up, and by which rule: our Message-IDs in In-Reply-To or
    /// References first (verifiable), then the subject tag (weaker: anyone can type it).
    package func match(_ message: MailMessage) -> (request: String, rule: Match)? {
        for id in [message.inReplyTo].compactMap({ $0 }) + message.references.reversed() {
            if let request = request(fromMessageID: id) { return (request, .messageID) }
        }
        if let subject = message.subject, let request = request(fromSubject: subject) { return (request, .subjectTag) }
        return nil
    }
}

