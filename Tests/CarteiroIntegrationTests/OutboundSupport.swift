import Foundation
import Testing
import CarteiroTesting

/// What the lab's SMTP server received: the envelope of each accepted message, and its bytes.
struct ReceivedMail {
    var listener: String
    var mailFrom: String
    var recipients: [String]
    var authUser: String?
    var message: String

    static func all(in lab: MailLab, containing token: String) -> [ReceivedMail] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: lab.smtpSpool)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: lab.smtpSpool + "/" + name),
                  let envelope = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let recipients = envelope["rcpt_tos"] as? [String], recipients.contains(where: { $0.contains(token) }),
                  let message = try? String(contentsOfFile: lab.smtpSpool + "/" + name.replacingOccurrences(of: ".json", with: ".eml"), encoding: .utf8)
            else { return nil }
            return ReceivedMail(listener: envelope["listener"] as? String ?? "", mailFrom: envelope["mail_from"] as? String ?? "",
                                recipients: recipients, authUser: envelope["auth_user"] as? String, message: message)
        }
    }
}

/// A configuration whose outbound mailboxes are the lab's three SMTP listeners, with users and
/// a workflow whose steps exercise every resolution rule. Recipients carry `token`.
func outboundConfiguration(lab: MailLab, state: String, token: String, extraMailboxes: String = "") -> String {
    """
    [daemon]
    system_outbound = "desk-out"
    state_dir = "\(state)"
    hostname = "desk.lab.test"

    [mailbox.desk-out]
    type = "outbound"
    server = "127.0.0.1"
    port = \(lab.smtpTLSPort)
    tls = "tls"
    sender = "Service Desk <desk@desk.example>"
    auth = true
    user = "ana"
    password_file = "\(lab.passwordFile(of: "ana"))"
    ca_file = "\(lab.caFile)"
    timeout = "10s"

    [mailbox.acme-out]
    type = "outbound"
    server = "127.0.0.1"
    port = \(lab.smtpStarttlsPort)
    tls = "starttls"
    sender = "ACME Atendimento <suporte@acme.example>"
    auth = true
    user = "acme"
    password_file = "\(lab.passwordFile(of: "acme"))"
    ca_file = "\(lab.caFile)"
    timeout = "10s"

    [mailbox.audit-out]
    type = "outbound"
    server = "127.0.0.1"
    port = \(lab.smtpPlainPort)
    tls = "none"
    sender = "Audit <audit@desk.example>"
    timeout = "10s"

    \(extraMailboxes)
    [contract.acme]
    name = "ACME Corp"
    outbound_mailbox = "acme-out"

    [contract.beta]
    name = "Beta"

    [user.ana]
    name = "Ana Souza"
    email = "ana.\(token)@lab.test"

    [user.bruno]
    name = "Bruno Lima"
    email = "bruno.\(token)@lab.test"

    [group.desk]
    members = ["ana", "bruno"]

    [workflow.approval.step.notify]
    mailbox = "contract"
    to_groups = ["desk"]
    subject = "Aprovação: {{request.subject}}"
    body = "Olá {{recipient.name}}, a requisição {{request.id}} aguarda aprovação."

    [workflow.approval.step.audit]
    mailbox = "specific"
    specific_mailbox = "audit-out"
    to_users = ["bruno"]
    subject = "Audit {{request.id}}"
    body = "Auditoria."

    [workflow.approval.step.plain]
    to_users = ["ana"]
    subject = "Aviso {{request.id}}"
    body = "Aviso."
    """
}

/// Drops a submission in the outbox the way the desk does: temporary name, then rename.
func submit(_ json: String, name: String, state: String) throws {
    let outbox = state + "/outbox"
    try FileManager.default.createDirectory(atPath: outbox, withIntermediateDirectories: true)
    try Data(json.utf8).write(to: URL(fileURLWithPath: outbox + "/." + name + ".tmp"))
    rename(outbox + "/." + name + ".tmp", outbox + "/" + name + ".json")
}

func waitUntil(timeout: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return condition()
}
