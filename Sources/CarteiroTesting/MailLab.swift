import Foundation

/// The mail lab's coordinates (`scripts/mail-lab start` writes them to `lab.env`).
/// Tests that need real servers ask for `MailLab.current`; it is nil when no lab runs.
package struct MailLab: Sendable {
    package let directory: String
    package let caFile: String
    package let imapPort: Int
    package let imapsPort: Int
    package let pop3Port: Int
    package let pop3sPort: Int
    package let smtpStarttlsPort: Int
    package let smtpTLSPort: Int
    package let smtpPlainPort: Int
    package let smtpSpool: String
    /// The OAuth 2.0 token server (scripts/lab/token_server.py), e.g. http://127.0.0.1:31080.
    package let tokenURL: String
    /// The Google-style service account key the token server trusts (JWT bearer).
    package let serviceAccount: String
    /// The Microsoft Graph mail service (scripts/lab/graph_server.py), HTTPS on this port.
    package var graphPort: Int = 31444

    /// The lab named by `CARTEIRO_LAB_DIR`, else `/tmp/carteiro-lab`, if its lab.env exists.
    package static let current: MailLab? = {
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
                       smtpPlainPort: port("SMTP_PLAIN_PORT"), smtpSpool: values["SMTP_SPOOL"] ?? directory + "/smtp/spool",
                       tokenURL: values["TOKEN_URL"] ?? "http://127.0.0.1:31080", serviceAccount: values["SERVICE_ACCOUNT"] ?? directory + "/oauth/service-account.json",
                       graphPort: port("GRAPH_PORT") == 0 ? 31444 : port("GRAPH_PORT"))
    }()

    /// True when tests must not skip the lab: `.ci/run` and `scripts/test` set it.
    package static var isRequired: Bool { ProcessInfo.processInfo.environment["CARTEIRO_LAB_REQUIRED"] == "1" }

    /// The password every lab user has: `NAME-secret`.
    package static func password(of user: String) -> String { "\(user)-secret" }

    /// The path of a file holding `user`'s password (mode 600).
    package func passwordFile(of user: String) -> String { "\(directory)/secrets/\(user).password" }

    /// A complete configuration with one mailbox table (plus what validation needs around it).
    /// `mailbox` is the body of `[mailbox.NAME]`.
    package static func configuration(name: String, mailbox: String) -> String {
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

extension MailLab {
    /// Mailbox files are owned by nobody:nogroup: Dovecot refuses to run mail as root.
    static let mailOwner: (uid: UInt32, gid: UInt32) = (65534, 65534)

    /// Adds a lab user with an empty Maildir (and a Processed folder); Dovecot re-reads its
    /// passwd-file by itself. Each test takes users of its own, so tests run in parallel.
    package func addUser(_ user: String) throws {
        let home = "\(directory)/mail/\(user)"
        for folder in ["", "/.Processed"] {
            for sub in ["cur", "new", "tmp"] {
                try FileManager.default.createDirectory(atPath: "\(home)/Maildir\(folder)/\(sub)", withIntermediateDirectories: true)
            }
        }
        for path in [home, "\(home)/Maildir", "\(home)/Maildir/.Processed"] + ["cur", "new", "tmp"].flatMap({ ["\(home)/Maildir/\($0)", "\(home)/Maildir/.Processed/\($0)"] }) {
            chown(path, Self.mailOwner.uid, Self.mailOwner.gid)
        }
        let line = "\(user):{PLAIN}\(Self.password(of: user)):\(Self.mailOwner.uid):\(Self.mailOwner.gid)::\(home)::\n"
        try MailLab.passwdLock.withLock {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: "\(directory)/dovecot/passwd"))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))
        }
        let secrets = "\(directory)/secrets"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: passwordFile(of: user), contents: Data((Self.password(of: user) + "\n").utf8), attributes: [.posixPermissions: 0o600])
    }

    static let passwdLock = NSLock()

    /// Drops a message into the user's inbox the way a delivery agent does (tmp, then new).
    package func deliver(_ message: String, to user: String) throws {
        let name = "\(UInt64(Date().timeIntervalSince1970 * 1_000_000)).\(UUID().uuidString).lab"
        let maildir = "\(directory)/mail/\(user)/Maildir"
        let text = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(maildir)/tmp/\(name)"))
        chown("\(maildir)/tmp/\(name)", Self.mailOwner.uid, Self.mailOwner.gid)
        rename("\(maildir)/tmp/\(name)", "\(maildir)/new/\(name)")
    }

    /// Files in a user's folder ("" for the inbox, "Processed" …), and how many carry \Seen.
    package func count(_ user: String, folder: String = "") -> (messages: Int, seen: Int) {
        let base = "\(directory)/mail/\(user)/Maildir" + (folder.isEmpty ? "" : "/.\(folder)")
        var messages = 0, seen = 0
        for sub in ["new", "cur"] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(base)/\(sub)")) ?? [] {
                messages += 1
                if let flags = name.split(separator: ",").last, name.contains(":2,"), flags.contains("S") { seen += 1 }
            }
        }
        return (messages, seen)
    }

    /// A short message with a unique Message-ID.
    package static func message(id: String, subject: String, from: String = "cliente@acme.example") -> String {
        """
        From: Cliente <\(from)>
        To: suporte@acme.example
        Subject: \(subject)
        Message-ID: <\(id)>
        Date: Wed, 25 Nov 2026 12:00:00 -0300
        Content-Type: text/plain; charset=utf-8

        Mensagem \(id): a impressora não imprime.
        """
    }
}

extension MailLab {
    /// Delivers a message that the user has already read (\Seen), as if it had been there before.
    package func deliverSeen(_ message: String, to user: String) throws {
        let name = "\(UInt64(Date().timeIntervalSince1970 * 1_000_000)).\(UUID().uuidString).lab:2,S"
        let path = "\(directory)/mail/\(user)/Maildir/cur/\(name)"
        let text = message.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chown(path, Self.mailOwner.uid, Self.mailOwner.gid)
    }

    /// Makes Dovecot forget the inbox's UIDs: at the next SELECT it numbers every message anew
    /// under a new UIDVALIDITY, as a server does after a restore or a migration.
    package func resetUIDValidity(of user: String) throws {
        let maildir = "\(directory)/mail/\(user)/Maildir"
        for name in try FileManager.default.contentsOfDirectory(atPath: maildir)
        where name.hasPrefix("dovecot-uidlist") || name.hasPrefix("dovecot-uidvalidity") || name.hasPrefix("dovecot.index") {
            try FileManager.default.removeItem(atPath: maildir + "/" + name)
        }
    }

    /// Ends every session of the user (`doveadm kick`), as a server restart does to its clients.
    package func kick(_ user: String) throws {
        let kick = Process()
        kick.executableURL = URL(fileURLWithPath: "/usr/bin/doveadm")
        kick.arguments = ["-c", directory + "/dovecot/dovecot.conf", "kick", user]
        kick.standardOutput = FileHandle.nullDevice
        kick.standardError = FileHandle.nullDevice
        try kick.run()
        kick.waitUntilExit()
    }

    /// How many IMAP logins of the user succeeded, from Dovecot's log.
    package func imapLogins(of user: String) -> Int {
        let log = (try? String(contentsOfFile: directory + "/dovecot/dovecot.log", encoding: .utf8)) ?? ""
        return log.components(separatedBy: "imap-login: Info: Login: user=<\(user)>").count - 1
    }
}
