import CarteiroConfig

/// One message ready for SMTP: through which mailbox, from which envelope sender, to which
/// recipients, with its bytes. A submission becomes one of these per recipient (or one for all).
package struct OutboundMessage: Sendable {
    package var mailbox: String
    package var envelopeFrom: String
    package var recipients: [String]
    package var messageID: String
    package var request: String?
    package var contract: String?
    package var bytes: [UInt8]
    /// How the mailbox was chosen, for the journal.
    package var resolution: OutboundResolution
}
