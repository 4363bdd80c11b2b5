import Foundation

/// A password, which never prints: interpolating it in a log line shows `<redacted>`.
package struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    package let value: String
    package init(_ value: String) { self.value = value }
    package var description: String { "<redacted>" }
    package var debugDescription: String { "<redacted>" }

    /// Secrets shorter than this are not searched for in text: redacting every "p" of a
    /// message would destroy it, and so short a password protects nothing anyway.
    static let shortestRedacted = 4

    /// `text` with the secret, and the forms a server may echo back (base64 of it, and of
    /// SASL PLAIN's `\0user\0secret`), replaced by `<redacted>`: a server's reply goes into
    /// logs, status files and events, and a hostile or broken one may quote the login.
    package func redact(_ text: String, user: String? = nil) -> String {
        guard value.utf8.count >= Self.shortestRedacted else { return text }
        var forms = [value, Self.base64(Array(value.utf8))]
        if let user {
            forms.append(Self.base64([0] + Array(user.utf8) + [0] + Array(value.utf8)))
            // XOAUTH2's initial response: user=U^Aauth=Bearer TOKEN^A^A.
            forms.append(Self.base64(Array("user=\(user)\u{1}auth=Bearer \(value)\u{1}\u{1}".utf8)))
        }
        var result = text
        for form in forms where result.contains(form) {
            result = result.replacingAll(form, with: "<redacted>")
        }
        return result
    }

    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation in this module's core).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

/// Where a mailbox's password comes from. Exactly one source per mailbox.
package enum SecretSource: Sendable, Hashable, CustomStringConvertible {
    case inline(Secret)
    case file(String)
    case environment(String)
    /// systemd's `LoadCredential=`: the file `$CREDENTIALS_DIRECTORY/NAME`.
    case credential(String)

    package var description: String {
        switch self {
        case .inline: "password in the configuration"
        case .file(let path): "password_file \(path)"
        case .environment(let name): "password_env \(name)"
        case .credential(let name): "password_credential \(name)"
        }
    }
}
