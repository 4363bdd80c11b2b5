import CarteiroConfig

/// One message ready for SMTP: through which mailbox, from which envelope sender, to which
/// recipients, with its bytes. A submission becomes one of these per recipient (or one for all).
public struct OutboundMessage: Sendable {
    public var mailbox: String
    public var envelopeFrom: String
    public var recipients: [String]
    public var messageID: String
    public var request: String?
    public var contract: String?
    public var bytes: [UInt8]
    /// How the mailbox was chosen, for the journal.
    public var resolution: OutboundResolution
}
