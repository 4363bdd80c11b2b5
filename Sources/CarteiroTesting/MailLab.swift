import Foundation

/// The mail lab's coordinates (`scripts/mail-lab start` writes them to `lab.env`).
/// Tests that need real servers ask for `MailLab.current`; it is nil when no lab runs.
public struct MailLab: Sendable {
    public let directory: String
    public let caFile: String
    public let imapPort: Int
    public let imapsPort: Int
    public let pop3Port: Int
    public let pop3sPort: Int
    public let smtpStarttlsPort: Int
    public let smtpTLSPort: Int
    public let smtpPlainPort: Int
    public let smtpSpool: String

    /// The lab named by `CARTEIRO_LAB_DIR`, else `/tmp/carteiro-lab`, if its lab.env exists.
    public static let current: MailLab? = {
        let directory = ProcessInfo.processInfo.environment["CARTEIRO_LAB_DIR"] ?? "/tmp/carteiro-lab"
        guard let text = try? String(contentsOfFile: directory + "/lab.env", encoding: .utf8) else { return nil }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        func port(_ key: String) -> Int { Int(values[key] ?? "") ?? 0 }
        return MailLab(directory: directory, caFile: values["CA_FILE"] ?? directory + "/tls/ca.pem",
                       imapPort: port("IMAP_PORT"), imapsPort: port("IMAPS_PORT"),
                       pop3Port: port("POP3_PORT"), pop3sPort: port("POP3S_PORT"),
                       smtpStarttlsPort: port("SMTP_STARTTLS_PORT"), smtpTLSPort: port("SMTP_TLS_PORT"),
                       smtpPlainPort: port("SMTP_PLAIN_PORT"), smtpSpool: values["SMTP_SPOOL"] ?? directory + "/smtp/spool")
    }()

    /// True when tests must not skip the lab: `.ci/run` and `scripts/test` set it.
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["CARTEIRO_LAB_REQUIRED"] == "1" }

    /// The password every lab user has: `NAME-secret`.
    public static func password(of user: String) -> String { "\(user)-secret" }

    /// The path of a file holding `user`'s password (mode 600).
    public func passwordFile(of user: String) -> String { "\(directory)/secrets/\(user).password" }

    /// A complete configuration with one mailbox table (plus what validation needs around it).
    /// `mailbox` is the body of `[mailbox.NAME]`.
    public static func configuration(name: String, mailbox: String) -> String {
        let isOutbound = mailbox.contains("type = \"outbound\"")
        var text = "[daemon]\nsystem_outbound = \"\(isOutbound ? name : "system-out")\"\nstate_dir = \"/tmp/carteiro-test-state\"\n\n"
        text += "[mailbox.\(name)]\n\(mailbox)\n\n"
        if !isOutbound {
            text += "[mailbox.system-out]\ntype = \"outbound\"\nserver = \"127.0.0.1\"\nsender = \"desk@lab.test\"\n\n"
            text += "[contract.lab]\ninbound_mailboxes = [\"\(name)\"]\n"
        }
        return text
    }
}
