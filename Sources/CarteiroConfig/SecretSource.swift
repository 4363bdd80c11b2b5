/// A password, which never prints: interpolating it in a log line shows `<redacted>`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

/// Where a mailbox's password comes from. Exactly one source per mailbox.
public enum SecretSource: Sendable, Hashable, CustomStringConvertible {
    case inline(Secret)
    case file(String)
    case environment(String)
    /// systemd's `LoadCredential=`: the file `$CREDENTIALS_DIRECTORY/NAME`.
    case credential(String)

    public var description: String {
        switch self {
        case .inline: "password in the configuration"
        case .file(let path): "password_file \(path)"
        case .environment(let name): "password_env \(name)"
        case .credential(let name): "password_credential \(name)"
        }
    }
}
