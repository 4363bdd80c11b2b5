import Foundation

/// The reason a server gives when it refuses an OAuth 2.0 token: XOAUTH2 and OAUTHBEARER send
/// a base64 JSON challenge (`+ eyJ…` in IMAP and POP3, `334 eyJ…` in SMTP), such as
/// `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`.
package enum SASLChallenge {
    package static func oauthError(in lines: [String]) -> String? {
        for line in lines.reversed() {
            let payload: Substring
            if line.hasPrefix("+ ") { payload = line.dropFirst(2) }
            else if line.hasPrefix("334 ") { payload = line.dropFirst(4) }
            else { continue }
            let text = payload.trimmingCharacters(in: .whitespaces)
            guard !text.isEmpty, text.count <= 4096, let data = Data(base64Encoded: text),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            let parts = object.keys.sorted().map { key -> String in
                let value = object[key].map { "\($0)" } ?? ""
                return "\(key) \(value.prefix(200))"
            }
            return parts.joined(separator: ", ")
        }
        return nil
    }
}
